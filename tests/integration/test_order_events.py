"""The order worker's sync against a real PostgreSQL OMS: OrderReceived for a new order, OrderStatusChanged (previous
and new status) for a status that moved, nothing for a duplicate notice, a replay, a change that leaves the status
where it was or a late, older status; events published before the write commits, with ids that name the change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from syncline.canonical.entities import Order, OrderLine, OrderStatus
from syncline.canonical.events import CanonicalEvent, OrderReceived, OrderStatusChanged
from syncline.connectors.oms_pg import OmsDatabase, ensure_schema
from syncline.models import ChangeNotice, NoticeBatch
from syncline.orders import order_sync
from tests.fakes import ListDeadLetters

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DATABASE = "oms_order_events"
SOURCE = "store_a"


@pytest.fixture
def oms(services: tuple[Any, Any]) -> Iterator[OmsDatabase]:
    postgres = services[1]
    postgres.recreate_database(DATABASE)
    connection: psycopg.Connection[Any] = postgres.connect(DATABASE)
    ensure_schema(connection)
    yield OmsDatabase(lambda: connection)
    connection.close()


class Store:
    """The source: each order as it is now (the worker fetches on every notice)."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.minutes = 0

    def put(self, order_id: str, status: OrderStatus, financial_status: str = "paid") -> None:
        self.minutes += 1
        self.orders[order_id] = Order(
            order_id=order_id,
            number=f"#{order_id}",
            status=status,
            financial_status=financial_status,  # type: ignore[arg-type]
            currency="EUR",
            lines=[OrderLine(line_id="L1", sku="SKU-1", quantity=Decimal(1), unit_price=Decimal(5))],
            total=Decimal(5),
            placed_at=T0,
            source_version=self.minutes,
            updated_at=T0 + timedelta(minutes=self.minutes),
        )


def _message(*order_ids: str) -> list[tuple[str, str]]:
    notices = [ChangeNotice(source_system=SOURCE, entity="order", key=key, observed_at=T0) for key in order_ids]
    detail = NoticeBatch(source_system=SOURCE, entity="order", notices=notices).model_dump(mode="json")
    return [(f"m-{'-'.join(order_ids)}", json.dumps({"detail": detail}))]


def _worker(
    oms: OmsDatabase, store: Store, published: list[CanonicalEvent[Any]], publish: Callable[[Any], object] | None = None
) -> Callable[[list[tuple[str, str]]], Any]:
    return order_sync(
        "store-a-orders",
        store.orders.get,
        oms,
        ListDeadLetters(),
        source_system=SOURCE,
        publish=publish or published.append,
    )


def _summary(events: list[CanonicalEvent[Any]]) -> list[tuple[str, str, Any]]:
    return [
        (event.event_type, event.key, (event.data.previous, event.data.current))
        if isinstance(event, OrderStatusChanged)
        else (event.event_type, event.key, event.data.status)
        for event in events
    ]


def test_each_real_change_publishes_one_event_and_nothing_else_does(oms: OmsDatabase) -> None:
    store, published = Store(), []
    sync = _worker(oms, store, published)

    store.put("O-1", OrderStatus.CONFIRMED)
    store.put("O-2", OrderStatus.PENDING)
    assert sync(_message("O-1", "O-2")).written == ["O-1", "O-2"]
    assert _summary(published) == [
        ("OrderReceived", "O-1", OrderStatus.CONFIRMED),
        ("OrderReceived", "O-2", OrderStatus.PENDING),
    ]
    received = published[0]
    assert isinstance(received, OrderReceived) and received.source_system == SOURCE
    assert received.data == store.orders["O-1"]

    # The same notices again (a duplicate delivery, or a replay of the bus archive): nothing written, nothing new.
    sync(_message("O-1", "O-2"))
    assert len(published) == 2

    # O-1 moves forward; O-2 only changes its financial status: one status change, with both statuses.
    store.put("O-1", OrderStatus.PARTIALLY_FULFILLED)
    store.put("O-2", OrderStatus.PENDING, financial_status="refunded")
    assert sorted(sync(_message("O-1", "O-2")).written) == ["O-1", "O-2"]
    assert _summary(published[2:]) == [
        ("OrderStatusChanged", "O-1", (OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_FULFILLED))
    ]
    changed = published[2]
    assert isinstance(changed, OrderStatusChanged)
    assert changed.data.changed_at == store.orders["O-1"].updated_at

    # A late, older status is held by the OMS (never backwards): written fields, but no status change.
    store.put("O-1", OrderStatus.CONFIRMED)
    sync(_message("O-1"))
    assert len(published) == 3
    assert oms.get_order("O-1").status == OrderStatus.PARTIALLY_FULFILLED  # type: ignore[union-attr]


def test_a_change_is_published_before_it_commits_and_again_with_the_same_id_after_a_failure(
    oms: OmsDatabase,
) -> None:
    store, published = Store(), []
    store.put("O-1", OrderStatus.CONFIRMED)
    calls = []

    def bus_down(event: CanonicalEvent[Any]) -> None:
        calls.append(event)
        raise RuntimeError("EventBridge is unavailable")

    failed = _worker(oms, store, published, publish=bus_down)(_message("O-1"))
    assert failed.failed_messages == {"m-O-1"}  # SQS delivers it again
    assert oms.get_order("O-1") is None  # not committed without its event
    assert calls

    _worker(oms, store, published)(_message("O-1"))
    assert _summary(published) == [("OrderReceived", "O-1", OrderStatus.CONFIRMED)]
    assert published[0].event_id == calls[0].event_id  # the notifier's dedupe recognises a re-publish
    assert oms.get_order("O-1") is not None
