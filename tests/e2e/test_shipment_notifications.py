"""Shipment events on the local stack: a shipment the OMS records is fulfilled in the store by the shipment worker,
which puts one ShipmentCreated (carrier, tracking number) on the bus; the notifier's rule on "shipment created with
tracking" posts it once to Slack (the alerts sandbox, over real HTTP). The OMS touching the shipment again, a
shipment without tracking (announced, but the rule wants tracking) and a replay of the bus alert no one again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.local.sandboxes.alerts import AlertsSandbox
from syncline.local.stack import LocalStack
from tests.e2e.helpers import bus_tap, stack_with
from tests.e2e.test_shipments import STORE as SHIPMENTS

STORE = (
    SHIPMENTS
    + """
[alert_channels.ops-slack]
kind = "slack"
secret = "syncline/alerts/ops-slack"

[[notifications]]
name = "shipment-created"
event = "ShipmentCreated"
when = [{ field = "tracking_number", present = true }]
channels = ["ops-slack"]
title = "Shipment created"
message = "Order {order_id} shipped with {carrier}: tracking {tracking_number}"
"""
)


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, STORE) as local:
        yield local


def _ship(
    stack: LocalStack, shipment_id: str, order_id: str, lines: list[tuple[str, int]], tracking: str | None
) -> None:
    """The OMS's own application records a shipment (its outbox row is a change for the drainer to publish)."""
    oms = stack.oms()
    with oms.transaction():
        oms.execute(
            "INSERT INTO shipments (shipment_id, order_id, status, carrier, tracking_number, updated_at) "
            "VALUES (%s, %s, 'shipped', 'UPS', %s, now())",
            [shipment_id, order_id, tracking],
        )
        for number, (sku, quantity) in enumerate(lines, start=1):
            oms.execute(
                "INSERT INTO shipment_lines (shipment_id, line_no, sku, quantity) VALUES (%s, %s, %s, %s)",
                [shipment_id, number, sku, quantity],
            )


def test_a_shipment_fulfilled_with_tracking_alerts_once(stack: LocalStack) -> None:
    alerts = stack.alerts
    assert isinstance(alerts, AlertsSandbox)
    take = bus_tap(stack, "shipment-events", ["ShipmentCreated"])
    stack.seed_shopify("store_a", ["SKU-1", "SKU-2"], available=10)
    store = stack.sandboxes["store_a"]
    variant = {data["sku"]: gid for gid, data in store.variants.items()}
    order_id = store.add_order([(variant["SKU-1"], 2), (variant["SKU-2"], 1)])
    stack.settle()

    # 1. A parcel with tracking: fulfilled in the store, one ShipmentCreated on the bus, one Slack message.
    _ship(stack, "SH-1", order_id, [("SKU-1", 2)], "1Z-FIRST")
    stack.settle()
    assert store.applied["fulfillmentCreate"] == 1
    [created] = take()
    assert (created["detail-type"], created["source"]) == ("ShipmentCreated", "syncline.oms")
    detail = created["detail"]
    assert (detail["event_id"], detail["key"]) == ("ShipmentCreated:oms-shipments:SH-1", "SH-1")
    assert (detail["data"]["order_id"], detail["data"]["carrier"], detail["data"]["tracking_number"]) == (
        order_id,
        "UPS",
        "1Z-FIRST",
    )
    assert [m["text"] for m in alerts.slack_messages] == [
        f"[warning] Order {order_id} shipped with UPS: tracking 1Z-FIRST"
    ]

    # 2. The OMS touches the shipment again (delivered): a notice, nothing to fulfil, nothing announced.
    stack.oms().execute("UPDATE shipments SET status = 'delivered' WHERE shipment_id = 'SH-1'")
    stack.settle()
    assert store.applied["fulfillmentCreate"] == 1
    assert take() == []

    # 3. The rest ships without tracking: fulfilled and announced, but the rule wants a tracking number.
    _ship(stack, "SH-2", order_id, [("SKU-2", 1)], None)
    stack.settle()
    assert store.applied["fulfillmentCreate"] == 2
    [untracked] = take()
    assert (untracked["detail"]["key"], untracked["detail"]["data"]["tracking_number"]) == ("SH-2", None)
    assert len(alerts.slack_messages) == 1

    # 4. A replay of the bus (the first event put on it again): the notifier alerts no one twice.
    boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.resources.bus,
                "Source": created["source"],
                "DetailType": created["detail-type"],
                "Detail": json.dumps(created["detail"]),
            }
        ]
    )
    assert stack.settle() >= 1
    assert len(alerts.slack_messages) == 1
    for queue in stack.topology.queues:
        assert stack.dead_letters(queue.id) == [], queue.id
    assert stack.functions["notifier"].errors == 0
