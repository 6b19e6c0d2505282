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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from syncline.canonical.entities import Shipment
from syncline.ports import DeadLetterSink
from syncline.records import WRITTEN, RecordSync

ENTITY = "shipment"
CREATED = "created"


class FulfillmentTarget(Protocol):
    def fulfill(self, shipment: Shipment) -> str:
        """Fulfil the shipment's order lines once; ``CREATED``, or why nothing was needed."""


def shipment_sync(
    pair: str, source: Callable[[str], Shipment | None], target: FulfillmentTarget, dead_letters: DeadLetterSink
) -> RecordSync[Shipment]:
    def write(records: Sequence[tuple[str, Shipment]]) -> Mapping[str, str]:
        outcomes = {key: target.fulfill(shipment) for key, shipment in records}
        return {key: WRITTEN if outcome == CREATED else outcome for key, outcome in outcomes.items()}

    # One fulfilment per call: a store refusing one shipment does not fail the others.
    return RecordSync(pair, ENTITY, source, write, dead_letters, batch_writes=False)
