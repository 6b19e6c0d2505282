"""One-way, fetch-on-notify record sync for a queue batch: the shared core of the order and shipment workers.

Notices are hints: for each record a batch names (several notices about one record cost one fetch) the worker
reads the record as it is now from its source and hands it to the target, which decides what to write (a
guarded upsert, a fulfilment created once). Per record:
- written, or skipped by the target with its reason (stale, unchanged, nothing left to do);
- gone from the source: counted, nothing written;
- a record that cannot be mapped: a dead letter at stage ``map``;
- a transient failure (timeout, 5xx, throttling): its messages come back through SQS (then the DLQ);
- a permanent failure (the source or target refused the request itself): a dead letter with the notice and
  the reason, to be fixed and redriven.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import ValidationError

from syncline.models import ChangeNotice, DeadLetter, FailureStage, UnparsableMessage
from syncline.ports import DeadLetterSink
from syncline.sync import MalformedMessage, decode_message

T = TypeVar("T")
WRITTEN = "written"


@dataclass
class RecordBatchResult:
    notices: int = 0
    fetched: int = 0
    written: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why the target wrote nothing
    not_in_source: int = 0
    dead_letters: list[DeadLetter | UnparsableMessage] = field(default_factory=list)
    failed_messages: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


@dataclass
class RecordSync(Generic[T]):
    """``fetch(key)`` reads one record fresh (None: gone); ``write(records)`` returns, per key, ``WRITTEN`` or
    why nothing was written. ``batch_writes``: one ``write`` call for the batch (a guarded bulk upsert) or one
    per record (so one refusal does not fail the others)."""

    pair: str
    entity: str
    fetch: Callable[[str], T | None]
    write: Callable[[Sequence[tuple[str, T]]], Mapping[str, str]]
    dead_letters: DeadLetterSink
    batch_writes: bool = True
    is_permanent: Callable[[Exception], bool] = lambda exc: getattr(exc, "retryable", None) is False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __call__(self, messages: Sequence[tuple[str, str]]) -> RecordBatchResult:
        result = RecordBatchResult()
        by_key = self._group(messages, result)
        fetched: list[tuple[str, T]] = []
        for key, notices in by_key.items():
            try:
                record = self.fetch(key)
            except (ValidationError, ValueError) as exc:
                self._park(result, notices, f"{self.entity} {key} cannot be mapped: {exc}"[:500], "map")
                continue
            except Exception as exc:
                self._fail_or_park(result, notices, exc, "fetch")
                continue
            if record is None:
                result.not_in_source += 1
                continue
            result.fetched += 1
            fetched.append((key, record))
        groups = [fetched] if self.batch_writes else [[item] for item in fetched]
        for group in (g for g in groups if g):
            self._write(group, by_key, result)
        if result.dead_letters:
            self.dead_letters.send(result.dead_letters)
        return result

    def _group(
        self, messages: Sequence[tuple[str, str]], result: RecordBatchResult
    ) -> dict[str, list[tuple[str, ChangeNotice]]]:
        """The batch's notices by record key (a message that carries none is kept as an unparsable letter)."""
        by_key: dict[str, list[tuple[str, ChangeNotice]]] = {}
        for message_id, body in messages:
            try:
                inbound = decode_message(message_id, body, self.entity)
            except MalformedMessage as exc:
                result.dead_letters.append(
                    UnparsableMessage(body=body, reason=str(exc), pair=self.pair, failed_at=self.clock())
                )
                continue
            for notice in inbound.notices:
                result.notices += 1
                by_key.setdefault(notice.key, []).append((message_id, notice))
        return by_key

    def _write(
        self,
        group: list[tuple[str, T]],
        by_key: Mapping[str, list[tuple[str, ChangeNotice]]],
        result: RecordBatchResult,
    ) -> None:
        try:
            outcomes = self.write(group)
        except Exception as exc:
            self._fail_or_park(result, [n for key, _ in group for n in by_key[key]], exc, "write")
            return
        for key, outcome in outcomes.items():
            if outcome == WRITTEN:
                result.written.append(key)
            else:
                result.skipped[key] = outcome

    def _park(
        self, result: RecordBatchResult, notices: list[tuple[str, ChangeNotice]], reason: str, stage: FailureStage
    ) -> None:
        result.dead_letters += [
            DeadLetter(notice=notice, reason=reason, stage=stage, pair=self.pair, failed_at=self.clock())
            for _, notice in notices
        ]

    def _fail_or_park(
        self, result: RecordBatchResult, notices: list[tuple[str, ChangeNotice]], exc: Exception, stage: FailureStage
    ) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        if self.is_permanent(exc):
            self._park(result, notices, reason, stage)
        else:
            result.failed_messages |= {message_id for message_id, _ in notices}
            result.failures.append(reason)
