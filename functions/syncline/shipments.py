"""One-way shipment sync: a queue batch of OMS shipment notices -> each shipment read fresh from the OMS -> the
store's fulfilment of its order, created once.

Notices are hints (the OMS outbox): the worker reads the shipment as it is now and asks the target to fulfil it.
The target decides from the order's own state whether anything is left to do (an order already fulfilled, a
fulfilment already carrying the shipment's tracking number), so a redelivered notice creates nothing twice. Per
shipment:
- fulfilled, or skipped with the reason (already fulfilled, not shipped yet...);
- gone from the OMS: counted, nothing written;
- a transient failure (timeout, 5xx, throttling): the message comes back through SQS (then the DLQ);
- a permanent failure (the order is not in the store, the store refused the fulfilment): a dead letter with the
  notice and the reason, to be fixed and redriven.

A fulfilment the worker creates is also a canonical ``ShipmentCreated`` event (the shipment with its carrier and
tracking number) for notification rules. The store's write and the bus are not one transaction, and once the
fulfilment exists the store cannot say who created it (a retry and a duplicate notice both plan "already
recorded"). So the event is published when the plan says a fulfilment is needed, just before it is created
(``before_create``): a fulfilment is never created without its event. A worker that dies between the two, or
whose create fails, publishes again on the retry with the same event id (``ShipmentCreated:<pair>:<shipment>``),
which the notifier's dedupe recognises; a duplicate notice, a redelivery or a replay, which plan nothing,
publish nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from syncline.canonical.entities import Shipment
from syncline.canonical.events import CanonicalEvent, ShipmentCreated, change_event_id
from syncline.ports import DeadLetterSink
from syncline.records import WRITTEN, RecordSync

ENTITY = "shipment"
CREATED = "created"


class FulfillmentTarget(Protocol):
    def fulfill(self, shipment: Shipment, *, before_create: Callable[[], None] | None = None) -> str:
        """Fulfil the shipment's order lines once; ``CREATED``, or why nothing was needed. ``before_create()`` runs
        just before a fulfilment is created (not when nothing is needed); if it raises, nothing is created."""


def shipment_created(pair: str, shipment: Shipment, *, source_system: str) -> ShipmentCreated:
    """The event of the shipment's fulfilment; its id names the pair and the shipment (fulfilled once), so every
    attempt at the same fulfilment carries the same id."""
    return ShipmentCreated(
        event_id=change_event_id("ShipmentCreated", pair, shipment.shipment_id),
        occurred_at=shipment.shipped_at or shipment.updated_at,
        source_system=source_system,
        key=shipment.shipment_id,
        data=shipment,
    )


def shipment_sync(
    pair: str,
    source: Callable[[str], Shipment | None],
    target: FulfillmentTarget,
    dead_letters: DeadLetterSink,
    *,
    source_system: str,
    publish: Callable[[CanonicalEvent[Any]], object] | None = None,
) -> RecordSync[Shipment]:
    """The worker's sync for ``pair``; ``publish`` puts a ``ShipmentCreated`` on the bus for each fulfilment it
    creates (None: no events), from ``source_system`` (the OMS)."""

    def fulfill(shipment: Shipment) -> str:
        if publish is None:
            return target.fulfill(shipment)
        emit: Callable[[CanonicalEvent[Any]], object] = publish

        def announce() -> None:
            emit(shipment_created(pair, shipment, source_system=source_system))

        return target.fulfill(shipment, before_create=announce)

    def write(records: Sequence[tuple[str, Shipment]]) -> Mapping[str, str]:
        outcomes = {key: fulfill(shipment) for key, shipment in records}
        return {key: WRITTEN if outcome == CREATED else outcome for key, outcome in outcomes.items()}

    # One fulfilment per call: a store refusing one shipment does not fail the others.
    return RecordSync(pair, ENTITY, source, write, dead_letters, batch_writes=False)
