"""One-way order sync: order notices (a Shopify ``orders/create`` / ``orders/updated`` webhook) -> each order
read fresh from its store -> the target's guarded upsert (the OMS: never replaces a newer version, never moves
a status backwards). The batch mechanics are ``syncline.records``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from syncline.canonical.entities import Order
from syncline.ports import DeadLetterSink
from syncline.records import WRITTEN, RecordSync

ENTITY = "order"


class OrderTarget(Protocol):
    def upsert_orders(self, orders: Sequence[Order]) -> Any:
        """Write orders, never replacing a newer one; ``written`` ids and ``skipped`` id -> reason."""


def order_sync(
    pair: str, source: Callable[[str], Order | None], target: OrderTarget, dead_letters: DeadLetterSink
) -> RecordSync[Order]:
    def write(records: Sequence[tuple[str, Order]]) -> Mapping[str, str]:
        key_of = {order.order_id: key for key, order in records}
        outcome = target.upsert_orders([order for _, order in records])
        written = {key_of[order_id]: WRITTEN for order_id in outcome.written}
        return written | {key_of[order_id]: str(reason) for order_id, reason in dict(outcome.skipped).items()}

    return RecordSync(pair, ENTITY, source, write, dead_letters, batch_writes=True)
