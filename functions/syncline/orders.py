"""One-way order sync: a queue batch of order notices -> each order fetched fresh from its source -> the target.

Notices are hints (a Shopify ``orders/create`` or ``orders/updated`` webhook): the worker reads the order as it
is now and writes it through the target's guarded upsert, which never replaces a newer version and never
moves a status backwards (``syncline.connectors.oms_pg``). Per order:
- fetched and written (or skipped by the target as stale / unchanged);
- gone from the source: counted, nothing written;
- a transient failure (timeout, 5xx, throttling): the message comes back through SQS (then the DLQ);
- a permanent failure (the source or target refused the request, an order that does not map): a dead letter
  with the notice and the reason, to be fixed and redriven.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError

from syncline.canonical.entities import Order
from syncline.models import ChangeNotice, DeadLetter, FailureStage, UnparsableMessage
from syncline.ports import DeadLetterSink
from syncline.sync import MalformedMessage, decode_message

ENTITY = "order"


class OrderTarget(Protocol):
    def upsert_orders(self, orders: Sequence[Order]) -> object:
        """Write orders, never replacing a newer one; return what was written and skipped."""


@dataclass
class OrderBatchResult:
    notices: int = 0
    fetched: int = 0
    written: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    not_in_source: int = 0
    dead_letters: list[DeadLetter | UnparsableMessage] = field(default_factory=list)
    failed_messages: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def sync_orders_batch(
    messages: Sequence[tuple[str, str]],
    *,
    pair: str,
    source: Callable[[str], Order | None],
    target: OrderTarget,
    dead_letters: DeadLetterSink,
    is_permanent: Callable[[Exception], bool] = lambda exc: getattr(exc, "retryable", None) is False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> OrderBatchResult:
    result = OrderBatchResult()
    by_key: dict[str, list[tuple[str, ChangeNotice]]] = {}
    for message_id, body in messages:
        try:
            inbound = decode_message(message_id, body, ENTITY)
        except MalformedMessage as exc:
            result.dead_letters.append(UnparsableMessage(body=body, reason=str(exc), pair=pair, failed_at=clock()))
            continue
        for notice in inbound.notices:
            result.notices += 1
            by_key.setdefault(notice.key, []).append((message_id, notice))

    orders: list[Order] = []
    for key, notices in by_key.items():
        try:
            order = source(key)
        except (ValidationError, ValueError) as exc:
            _park(result, notices, f"order {key} cannot be mapped: {exc}"[:500], "map", pair, clock)
            continue
        except Exception as exc:
            _fail_or_park(result, notices, exc, "fetch", pair, clock, is_permanent)
            continue
        if order is None:
            result.not_in_source += 1
            continue
        result.fetched += 1
        orders.append(order)

    if orders:
        try:
            outcome = target.upsert_orders(orders)
        except Exception as exc:
            every = [pair_ for key in by_key for pair_ in by_key[key]]
            _fail_or_park(result, every, exc, "write", pair, clock, is_permanent)
        else:
            result.written = list(getattr(outcome, "written", []))
            result.skipped = {k: str(v) for k, v in dict(getattr(outcome, "skipped", {})).items()}
    if result.dead_letters:
        dead_letters.send(result.dead_letters)
    return result


def _park(
    result: OrderBatchResult,
    notices: list[tuple[str, ChangeNotice]],
    reason: str,
    stage: FailureStage,
    pair: str,
    clock: Callable[[], datetime],
) -> None:
    result.dead_letters += [
        DeadLetter(notice=notice, reason=reason, stage=stage, pair=pair, failed_at=clock()) for _, notice in notices
    ]


def _fail_or_park(
    result: OrderBatchResult,
    notices: list[tuple[str, ChangeNotice]],
    exc: Exception,
    stage: FailureStage,
    pair: str,
    clock: Callable[[], datetime],
    is_permanent: Callable[[Exception], bool],
) -> None:
    reason = f"{type(exc).__name__}: {exc}"[:500]
    if is_permanent(exc):
        _park(result, notices, reason, stage, pair, clock)
    else:
        result.failed_messages |= {message_id for message_id, _ in notices}
        result.failures.append(reason)
