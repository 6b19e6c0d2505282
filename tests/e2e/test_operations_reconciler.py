"""The scheduled reconciler on the local stack: the consistency ratio as EMF metrics, the summary stored, no repair."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3

from syncline.local.emf import MetricLog
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.conftest import load_event
from tests.e2e.helpers import storefront_levels

PAIR = "erp-storefront-inventory"


def test_the_reconciler_publishes_the_consistency_ratio_and_repairs_nothing(stack: LocalStack) -> None:
    # Given a synced pair of 10 items x 3 locations, then one hand-edited and one lost storefront row
    erp = stack.erp()
    erp.add_items([(f"SKU{i:04d}", f"Item {i}") for i in range(10)])
    erp.set_stock([Stock(f"SKU{i:04d}", loc, Decimal(i + 1)) for i in range(10) for loc in "123"])
    stack.poll_erp()
    stack.drain()
    store = stack.storefront()
    store.execute("UPDATE inventory_levels SET on_hand = 999 WHERE sku = 'SKU0001' AND location = 'main'")
    store.execute("DELETE FROM inventory_levels WHERE sku = 'SKU0002' AND location = 'east'")
    before = storefront_levels(stack)
    log = MetricLog(stack.functions["reconciler"].log_file)

    # When the schedule fires
    invocation = stack.functions["reconciler"].invoke(load_event("reconcile_scheduled.json"))

    # Then 28 of 30 records agree, and the metrics say so per pair and per kind
    assert invocation.error is None
    (summary,) = invocation.response["pairs"]
    assert (summary["compared"], summary["in_agreement"]) == (30, 28)
    published = log.read()
    assert published["ConsistencyRatio"] == [28 / 30]
    assert published["RecordsCompared"] == [30]
    assert sorted(published["Discrepancies"]) == [0, 0, 1, 1]  # mismatch 1, missing in target 1
    stored = boto3.client("dynamodb").get_item(TableName=stack.resources.table, Key={"pk": {"S": f"RECONCILE#{PAIR}"}})
    assert json.loads(stored["Item"]["report"]["S"]) == summary
    # ...and nothing was repaired: that stays an operator's decision
    assert storefront_levels(stack) == before


def test_the_reconcile_schedule_is_in_the_topology(stack: LocalStack) -> None:
    schedule = next(s for s in stack.topology.schedules if s.id == "reconcile")
    assert schedule.function == "reconciler"
    assert set(stack.topology.function("reconciler").secrets) == {"sage300", "storefront"}
