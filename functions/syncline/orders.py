"""One-way order sync: order notices (a Shopify ``orders/create`` / ``orders/updated`` webhook) -> each order
read fresh from its store -> the target's guarded upsert (the OMS: never replaces a newer version, never moves
a status backwards). The batch mechanics are ``syncline.records``.

Each real change also becomes a canonical event for notification rules and other consumers: ``OrderReceived``
for an order the target did not have, ``OrderStatusChanged`` (previous and new status) for an order whose stored
status moved. The target reports both from its guarded write, so a duplicate notice or a replay, which writes
nothing, publishes nothing. Events are published before the write commits (``before_commit``): a change is never
committed without its events. A worker that dies between the two publishes them again on the retry with the same
event ids (derived from the change, not the delivery), which the notifier's dedupe recognises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from syncline.canonical.entities import Order, OrderStatus
from syncline.canonical.events import (
    CanonicalEvent,
    OrderReceived,
    OrderStatusChange,
    OrderStatusChanged,
    change_event_id,
)
from syncline.ports import DeadLetterSink
from syncline.records import WRITTEN, RecordSync

ENTITY = "order"


class OrderWriteResult(Protocol):
    written: list[str]
    skipped: Mapping[str, str]
    held_status: Mapping[str, OrderStatus]  # the status kept when the incoming one would move backwards
    inserted: list[str]  # orders the target did not have
    previous_status: Mapping[str, OrderStatus]  # of the other written orders: the status the write replaced


class OrderTarget(Protocol):
    def upsert_orders(self, orders: Sequence[Order], *, before_commit: Callable[[Any], None] | None = None) -> Any:
        """Write orders, never replacing a newer one; an ``OrderWriteResult``. ``before_commit(result)`` runs
        before the write commits; if it raises, nothing is written."""


def order_events(
    result: OrderWriteResult, orders: Mapping[str, Order], *, source_system: str
) -> list[CanonicalEvent[BaseModel]]:
    """The events of one guarded write: ``OrderReceived`` per inserted order, ``OrderStatusChanged`` per written
    order whose stored status moved. Ids name the change (an order is received once; a status never moves
    backwards, so each transition happens once), so the same change always has the same id."""
    events: list[CanonicalEvent[Any]] = []
    for order_id in result.inserted:
        order = orders[order_id]
        events.append(
            OrderReceived(
                event_id=change_event_id("OrderReceived", source_system, order_id),
                occurred_at=order.placed_at,
                source_system=source_system,
                key=order_id,
                data=order,
            )
        )
    for order_id, previous in result.previous_status.items():
        order = orders[order_id]
        current = result.held_status.get(order_id, order.status)
        if current == previous:
            continue
        events.append(
            OrderStatusChanged(
                event_id=change_event_id("OrderStatusChanged", source_system, order_id, previous.value, current.value),
                occurred_at=order.updated_at,
                source_system=source_system,
                key=order_id,
                data=OrderStatusChange(
                    order_id=order_id, previous=previous, current=current, changed_at=order.updated_at
                ),
            )
        )
    return events


def order_sync(
    pair: str,
    source: Callable[[str], Order | None],
    target: OrderTarget,
    dead_letters: DeadLetterSink,
    *,
    source_system: str,
    publish: Callable[[CanonicalEvent[Any]], object] | None = None,
) -> RecordSync[Order]:
    """The worker's sync for ``pair``; ``publish`` puts each change's event on the bus (None: no events)."""

    def write(records: Sequence[tuple[str, Order]]) -> Mapping[str, str]:
        key_of = {order.order_id: key for key, order in records}
        by_id = {order.order_id: order for _, order in records}

        before_commit = None
        if publish is not None:
            emit: Callable[[CanonicalEvent[Any]], object] = publish

            def before_commit(result: OrderWriteResult) -> None:
                for event in order_events(result, by_id, source_system=source_system):
                    emit(event)

        outcome = target.upsert_orders([order for _, order in records], before_commit=before_commit)
        written = {key_of[order_id]: WRITTEN for order_id in outcome.written}
        return written | {key_of[order_id]: str(reason) for order_id, reason in dict(outcome.skipped).items()}

    return RecordSync(pair, ENTITY, source, write, dead_letters, batch_writes=True)
