"""Order events on the local stack: a Shopify order reaching the OMS puts one OrderReceived on the bus, its status
moving forward one OrderStatusChanged (previous and new status); the notifier's rules on "order created" and
"order status changed" post each once to Slack (the alerts sandbox, over real HTTP). A duplicate notice, a
change that does not move the status, and a replay of the bus publish nothing new and alert no one."""

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
from tests.e2e.test_shipments import ORDERS as STORE_ORDERS

ORDERS = (
    STORE_ORDERS
    + """[alert_channels.sales-slack]
kind = "slack"
secret = "syncline/alerts/sales-slack"

[[notifications]]
name = "order-created"
event = "OrderReceived"
channels = ["sales-slack"]
title = "Order created"
message = "Order {number} received: {total} {currency}"

[[notifications]]
name = "order-status-changed"
event = "OrderStatusChanged"
channels = ["sales-slack"]
title = "Order status changed"
message = "Order {order_id}: {previous} -> {current}"
"""
)
ORDER_EVENTS = ["OrderReceived", "OrderStatusChanged"]


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, ORDERS) as local:
        yield local


def _texts(alerts: AlertsSandbox) -> list[str]:
    return [message["text"] for message in alerts.slack_messages]


def test_order_created_and_status_changed_alert_once_each(stack: LocalStack) -> None:
    alerts = stack.alerts
    assert isinstance(alerts, AlertsSandbox)
    take = bus_tap(stack, "order-events", ORDER_EVENTS)
    stack.seed_shopify("store_a", ["SKU100"], available=10)
    shop = stack.sandboxes["store_a"]
    variant = next(v for v, data in shop.variants.items() if data["sku"] == "SKU100")

    # 1. A new order: OrderReceived on the bus, "order created" in Slack.
    order_id = shop.add_order([(variant, 2)])
    stack.settle()
    [received] = take()
    assert received["detail-type"] == "OrderReceived"
    assert (received["detail"]["key"], received["detail"]["data"]["status"]) == (order_id, "confirmed")
    number = received["detail"]["data"]["number"]
    assert _texts(alerts) == [f"[warning] Order {number} received: 20.00 USD"]

    # 2. The same order notified again (a duplicate webhook), and a change that leaves the status where it was:
    # the OMS is written for the second, but neither is a new order or a status change.
    shop.deliver("orders/updated", shop._order_payload(shop.orders[order_id]))
    stack.settle()
    shop.update_order(order_id, financial_status="PARTIALLY_REFUNDED")
    stack.settle()
    assert take() == []
    assert len(alerts.slack_messages) == 1

    # 3. The status moves forward: one OrderStatusChanged with the previous and the new status.
    shop.update_order(order_id, fulfillment_status="FULFILLED")
    stack.settle()
    [changed] = take()
    assert changed["detail-type"] == "OrderStatusChanged"
    assert changed["detail"]["data"] | {"changed_at": None} == {
        "order_id": order_id,
        "previous": "confirmed",
        "current": "fulfilled",
        "changed_at": None,
    }
    assert _texts(alerts)[1:] == [f"[warning] Order {order_id}: confirmed -> fulfilled"]

    # 4. A replay of the bus (both events put on it again): the notifier alerts no one twice.
    boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.resources.bus,
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
            for event in (received, changed)
        ]
    )
    assert stack.settle() >= 2
    assert len(alerts.slack_messages) == 2
    assert stack.dead_letters("sync_oms_order") == [] and stack.dead_letters("notify") == []
    assert stack.functions["notifier"].errors == 0
