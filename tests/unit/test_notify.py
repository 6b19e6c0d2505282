"""Notification rules: load-time checks, conditions, templates and once-only delivery (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.canonical.entities import Order, OrderLine, OrderStatus, Shipment, ShipmentLine
from syncline.canonical.events import (
    OrderReceived,
    OrderStatusChange,
    OrderStatusChanged,
    ShipmentCreated,
    StockUpdated,
)
from syncline.connectors.alerts import Alert, Delivery
from syncline.connectors.http import ApiError
from syncline.models import InventoryLevel
from syncline.notify import InMemoryDedupe, NotificationFailed, Notifier, RuleError, load_rules

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class RecordingChannel:
    def __init__(self, name: str, *, failures: list[Exception] | None = None) -> None:
        self.name = name
        self.sent: list[Alert] = []
        self.failures = list(failures or [])

    def send(self, alert: Alert) -> Delivery:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(alert)
        return Delivery(self.name, f"ref-{len(self.sent)}")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def stock(available: str, *, reserved: str = "0", event_id: str = "evt-1") -> StockUpdated:
    level = InventoryLevel(
        sku="SKU-1",
        location="MAIN",
        on_hand=Decimal(available) + Decimal(reserved),
        reserved=Decimal(reserved),
        available=Decimal(available),
        on_order=Decimal(0),
        source_version=1,
        source_updated_at=NOW,
    )
    return StockUpdated(event_id=event_id, occurred_at=NOW, source_system="sage300", key="SKU-1|MAIN", data=level)


def status_changed(current: OrderStatus, event_id: str = "evt-s") -> OrderStatusChanged:
    change = OrderStatusChange(order_id="O-1", previous=OrderStatus.CONFIRMED, current=current, changed_at=NOW)
    return OrderStatusChanged(event_id=event_id, occurred_at=NOW, source_system="shopify", key="O-1", data=change)


def shipment(tracking: str | None) -> ShipmentCreated:
    data = Shipment(
        shipment_id="S-1",
        order_id="O-1",
        carrier="UPS",
        tracking_number=tracking,
        lines=[ShipmentLine(sku="SKU-1", quantity=Decimal(1))],
        updated_at=NOW,
    )
    return ShipmentCreated(event_id="evt-sh", occurred_at=NOW, source_system="oms", key="S-1", data=data)


LOW_STOCK = {
    "name": "low-stock",
    "event": "StockUpdated",
    "when": [{"field": "available", "below": 5}],
    "channels": ["slack"],
    "message": "{sku} at {location}: only {available} left (from {source_system})",
}


def notifier(rules: list[dict[str, Any]], *channels: RecordingChannel, clock: Clock | None = None) -> Notifier:
    return Notifier(load_rules(rules), {c.name: c for c in channels}, InMemoryDedupe(), clock=clock or Clock())


# --- loading ---------------------------------------------------------------------------------------------


def test_a_placeholder_that_is_not_a_field_fails_at_load_naming_rule_field_and_known_fields() -> None:
    with pytest.raises(RuleError) as raised:
        load_rules([{**LOW_STOCK, "message": "{sku}: {availible} left"}])
    message = str(raised.value)
    assert "'low-stock'" in message
    assert "{availible}" in message
    assert "known: active, available" in message


def test_nested_placeholders_and_conditions_are_checked_through_the_models() -> None:
    ok = {
        "name": "big-order",
        "event": "OrderReceived",
        "when": [{"field": "shipping_address.country", "in": ["FR", "BE"]}],
        "channels": ["slack"],
        "message": "{number} to {shipping_address.city}: {lines[0][sku]} and more",
    }
    assert load_rules([ok])[0].name == "big-order"
    with pytest.raises(RuleError, match=r"'town' is not a field of shipping_address \(Address\)"):
        load_rules([{**ok, "message": "{shipping_address.town}"}])
    with pytest.raises(RuleError, match=r"lines is a list: use an index"):
        load_rules([{**ok, "message": "{lines.sku}"}])
    with pytest.raises(RuleError, match=r"condition field 'shipping_adress.country'"):
        load_rules([{**ok, "when": [{"field": "shipping_adress.country", "equals": "FR"}]}])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event": "OrderShipped"}, "unknown event type 'OrderShipped'"),
        ({"when": [{"field": "available", "below": 5, "equals": 3}]}, "needs exactly one of"),
        ({"when": [{"field": "available"}]}, "needs exactly one of"),
        ({"message": "{} left"}, "positional placeholder"),
        ({"message": "{sku"}, "template is not valid"),
        ({"channels": []}, "at least 1 item"),
        ({"name": "low stock!"}, "should match pattern"),
    ],
)
def test_invalid_rules_are_refused_with_the_reason(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(RuleError, match=expected):
        load_rules([{**LOW_STOCK, **change}])


def test_rule_names_are_unique_and_channels_must_exist() -> None:
    with pytest.raises(RuleError, match="unique: low-stock"):
        load_rules([LOW_STOCK, LOW_STOCK])
    with pytest.raises(RuleError, match=r"low-stock: pager.*configured: slack"):
        notifier([{**LOW_STOCK, "channels": ["slack", "pager"]}], RecordingChannel("slack"))


# --- conditions and messages -----------------------------------------------------------------------------


def test_stock_below_the_threshold_alerts_with_the_rendered_message() -> None:
    slack = RecordingChannel("slack")
    rules = notifier([LOW_STOCK], slack)
    assert rules.handle(stock("7")) == []
    assert rules.handle(stock("5", event_id="evt-2")) == []  # below is strict
    sent = rules.handle(stock("4.5", event_id="evt-3"))
    assert [(s.rule, s.channel, s.event_id, s.reference) for s in sent] == [("low-stock", "slack", "evt-3", "ref-1")]
    alert = slack.sent[0]
    assert alert.summary == "SKU-1 at MAIN: only 4.5 left (from sage300)"
    assert (alert.title, alert.severity, alert.dedup_key) == ("low-stock", "warning", "low-stock:SKU-1|MAIN")
    assert alert.details["event_id"] == "evt-3"


def test_below_another_field_compares_the_two_values() -> None:
    slack = RecordingChannel("slack")
    rules = notifier([{**LOW_STOCK, "when": [{"field": "available", "below_field": "reserved"}]}], slack)
    assert rules.handle(stock("3", reserved="2")) == []
    assert len(rules.handle(stock("3", reserved="4", event_id="evt-2"))) == 1


def test_status_in_a_set_and_equals_match_enum_values() -> None:
    slack = RecordingChannel("slack")
    rules = notifier(
        [
            {
                "name": "order-stopped",
                "event": "OrderStatusChanged",
                "when": [{"field": "current", "in": ["cancelled"]}, {"field": "previous", "equals": "confirmed"}],
                "channels": ["slack"],
                "message": "Order {order_id}: {previous} -> {current}",
                "severity": "error",
            }
        ],
        slack,
    )
    assert rules.handle(status_changed(OrderStatus.FULFILLED)) == []
    assert len(rules.handle(status_changed(OrderStatus.CANCELLED, "evt-c"))) == 1
    assert slack.sent[0].summary == "Order O-1: confirmed -> cancelled"
    assert slack.sent[0].severity == "error"


def test_shipment_with_tracking_only_and_absent_values_render_as_a_dash() -> None:
    slack = RecordingChannel("slack")
    rule = {
        "name": "shipped",
        "event": "ShipmentCreated",
        "when": [{"field": "tracking_number", "present": True}],
        "channels": ["slack"],
        "message": "{shipment_id} via {carrier}: {tracking_number} from {location}",
    }
    rules = notifier([rule], slack)
    assert rules.handle(shipment(None)) == []
    assert len(rules.handle(shipment("1Z999"))) == 1
    assert slack.sent[0].summary == "S-1 via UPS: 1Z999 from -"


def test_an_event_as_json_is_parsed_and_other_event_types_do_not_match() -> None:
    slack = RecordingChannel("slack")
    rules = notifier([LOW_STOCK], slack)
    assert len(rules.handle(stock("1").model_dump(mode="json"))) == 1
    order = Order(
        order_id="O-1",
        currency="EUR",
        lines=[OrderLine(line_id="1", sku="SKU-1", quantity=Decimal(1), unit_price=Decimal(1))],
        total=Decimal(1),
        placed_at=NOW,
        updated_at=NOW,
    )
    received = OrderReceived(event_id="evt-o", occurred_at=NOW, source_system="shopify", key="O-1", data=order)
    assert rules.handle(received) == []
    with pytest.raises(ValueError, match="not a canonical event type"):
        rules.handle({"event_type": "Nope"})


# --- once-only delivery ----------------------------------------------------------------------------------


def test_a_redelivered_event_does_not_alert_twice() -> None:
    slack, pager = RecordingChannel("slack"), RecordingChannel("pager")
    rules = notifier([{**LOW_STOCK, "channels": ["slack", "pager"]}], slack, pager)
    assert len(rules.handle(stock("1"))) == 2
    assert rules.handle(stock("1")) == []
    assert (len(slack.sent), len(pager.sent)) == (1, 1)
    assert len(rules.handle(stock("1", event_id="evt-other"))) == 2  # a new event does alert


def test_a_failed_channel_is_retried_alone_on_redelivery() -> None:
    slack = RecordingChannel("slack")
    pager = RecordingChannel("pager", failures=[ApiError("pagerduty", 503, "down", retryable=True)])
    rules = notifier([{**LOW_STOCK, "channels": ["slack", "pager"]}], slack, pager)
    with pytest.raises(NotificationFailed) as raised:
        rules.handle(stock("1"))
    assert raised.value.retryable
    assert [(f.channel, f.retryable) for f in raised.value.failures] == [("pager", True)]
    assert [s.channel for s in raised.value.sent] == ["slack"]
    retried = rules.handle(stock("1"))
    assert [s.channel for s in retried] == ["pager"]
    assert (len(slack.sent), len(pager.sent)) == (1, 1)


def test_a_permanent_failure_is_reported_as_not_retryable() -> None:
    slack = RecordingChannel("slack", failures=[ApiError("slack", 404, "no_service", retryable=False)])
    with pytest.raises(NotificationFailed, match="low-stock -> slack: slack: HTTP 404: no_service") as raised:
        notifier([LOW_STOCK], slack).handle(stock("1"))
    assert raised.value.retryable is False


def test_dedupe_forgets_after_its_window_and_a_dead_workers_claim_expires() -> None:
    clock = Clock()
    slack = RecordingChannel("slack")
    rules = notifier([{**LOW_STOCK, "dedupe_hours": 1}], slack, clock=clock)
    rules.handle(stock("1"))
    clock.now += 3599
    assert rules.handle(stock("1")) == []
    clock.now += 2
    assert len(rules.handle(stock("1"))) == 1

    store = InMemoryDedupe(lease_seconds=60)
    token = store.claim("r#e#c", now=0, ttl_seconds=3600)  # a worker claims, then dies before sending
    assert token is not None
    assert store.claim("r#e#c", now=30, ttl_seconds=3600) is None  # its lease still runs
    taken = store.claim("r#e#c", now=61, ttl_seconds=3600)
    assert taken is not None
    store.release("r#e#c", token)  # the dead worker's late release does not drop the new claim
    store.complete("r#e#c", taken, now=62)
    assert store.claim("r#e#c", now=63, ttl_seconds=3600) is None
