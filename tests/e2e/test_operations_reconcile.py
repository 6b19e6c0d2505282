"""`syncline reconcile` on the local stack: planted discrepancies are found exactly and --apply converges them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import boto3

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import expected_levels, storefront_levels
from tests.e2e.helpers import run_cli as run

PAIR = "erp-storefront-inventory"
AHEAD_VERSION = 99_991_231_23595999


def _synced_stack(stack: LocalStack, items: int = 30) -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i:04d}", f"Item {i}") for i in range(items)])
    erp.set_stock(
        [Stock(f"SKU{i:04d}", loc, Decimal(i + 1), committed=Decimal(1)) for i in range(items) for loc in "123"]
    )
    stack.poll_erp()
    stack.drain()
    assert storefront_levels(stack) == expected_levels(stack)


def _plant(stack: LocalStack) -> None:
    """One of each discrepancy, plus an unmappable ERP row and a re-stamped but unchanged one."""
    store, erp = stack.storefront(), stack.erp()
    store.execute("UPDATE inventory_levels SET on_hand = 999 WHERE sku = 'SKU0001' AND location = 'main'")
    store.execute("DELETE FROM inventory_levels WHERE sku = 'SKU0002' AND location = 'east'")
    with stack.postgres.connect("sage300") as admin:
        admin.execute("DELETE FROM ICILOC WHERE ITEMNO = 'SKU0003' AND LOCATION = '3'")
    erp.set_stock([Stock("SKU0004", "1", Decimal(40), committed=Decimal(1))])  # changed, never polled
    store.execute(
        "UPDATE inventory_levels SET on_hand = 1, source_version = %s WHERE sku = 'SKU0005' AND location = 'main'",
        [AHEAD_VERSION],
    )
    erp.set_stock([Stock("SKU0006", "1", Decimal(7), committed=Decimal(1))])  # same content, new stamp
    erp.set_stock([Stock("SKU0007", "QC", Decimal(3))])  # a location no storefront takes
    erp.set_stock([Stock("SKU0008", "1", Decimal(-2))])  # still in the ERP, unmappable: not a delete


def test_reconcile_finds_planted_discrepancies_exactly_and_apply_converges(stack: LocalStack, tmp_path: Path) -> None:
    _synced_stack(stack)
    _plant(stack)
    before_rows = storefront_levels(stack)

    report_path = tmp_path / "dry.json"
    code, dry = run(stack, "reconcile", PAIR, "--json", "--report", str(report_path))
    assert code == 4
    found = {(d["kind"], d["key"]) for d in dry["before"]["discrepancies"]}
    assert found == {
        ("mismatch", "SKU0001|main"),
        ("missing_in_target", "SKU0002|east"),
        ("missing_in_source", "SKU0003|west"),
        ("mismatch", "SKU0004|main"),
        ("target_ahead", "SKU0005|main"),
    }
    mismatch = next(d for d in dry["before"]["discrepancies"] if d["key"] == "SKU0001|main")
    assert mismatch["fields"]["on_hand"] == ["2.0000", "999.0000"]
    assert (dry["before"]["stale_versions"], dry["before"]["unmappable"]) == (1, 2)
    assert (dry["before"]["compared"], dry["before"]["in_agreement"]) == (89, 84)
    assert json.loads(report_path.read_text()) == dry
    assert storefront_levels(stack) == before_rows  # a dry run writes nothing

    code, applied = run(stack, "reconcile", PAIR, "--apply", "--json", "--report", str(tmp_path / "apply.json"))
    assert code == 4  # the target-ahead row is reported, never overwritten
    assert applied["applied"] | {"rejected": []} == {
        "upserted": 3,
        "deleted": 1,
        "unchanged": 0,
        "kept": 0,
        "left": 1,
        "resynced": 0,
        "review": [],
        "busy": 0,
        "rejected": [],
    }
    assert {(d["kind"], d["key"]) for d in applied["after"]["discrepancies"]} == {("target_ahead", "SKU0005|main")}
    expected = expected_levels(stack)
    expected[("SKU0005", "main")] = (Decimal(1), Decimal(5))  # on hand 1 as planted, available untouched
    expected[("SKU0008", "main")] = (Decimal(9), Decimal(8))  # kept as last synced until the ERP row is fixed
    assert storefront_levels(stack) == expected

    # The deleted row's state is forgotten; the repaired rows' state is committed like the worker's.
    dynamodb = boto3.client("dynamodb")
    table = stack.resources.table
    state = f"ST#{PAIR}#inventory_level#"
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"pk": {"S": state + "SKU0003|west"}})
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": state + "SKU0004|main"}})["Item"]
    assert (
        int(item["version"]["N"])
        == stack.storefront()
        .execute("SELECT source_version FROM inventory_levels WHERE sku = 'SKU0004' AND location = 'main'")
        .fetchone()[0]
    )


def test_reconcile_of_an_agreeing_pair_exits_0_and_unknown_pairs_exit_3(stack: LocalStack, tmp_path: Path) -> None:
    _synced_stack(stack, items=5)
    code, text = run(stack, "reconcile", PAIR, "--report", str(tmp_path / "r.json"))
    assert code == 0
    assert "consistency 100.0000%" in text
    assert run(stack, "reconcile", "no-such-pair", "--report", str(tmp_path / "x.json"))[0] == 3
    assert run(stack, "reconcile", PAIR, "--entity", "order", "--report", str(tmp_path / "y.json"))[0] == 3
