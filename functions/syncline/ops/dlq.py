"""Dead-letter queues from the operator's side: list without consuming, show, redrive, purge.

Two kinds of message land in a DLQ: a ``DeadLetter`` the worker parked itself (a record that can
never sync as is: the reason, stage and fetched row are in the body), and the original EventBridge
event that SQS moved after ``maxReceiveCount`` failed deliveries (a transient failure that outlasted
the retries: ERP or target unreachable). Both go back to the source queue unchanged on redrive: the
worker accepts either, and it is idempotent, so a message delivered twice is harmless.

Redrive one by one *sends before it deletes*: a crash between the two leaves the message in both
queues (a harmless duplicate), never in neither.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from syncline.models import DeadLetter, NoticeBatch, UnparsableMessage

MessageKind = Literal["dead-letter", "retries-exhausted", "unparsable", "unknown"]


@dataclass(frozen=True)
class RawMessage:
    """A DLQ message as the queue gives it; ``handle`` is the receipt handle of this receive."""

    id: str
    body: str
    attributes: dict[str, str]
    sent_at: datetime
    receive_count: int
    handle: str = ""


class MoveTaskUnsupported(RuntimeError):
    """The queue service cannot move messages server-side (moto, or no permission); move one by one."""


@dataclass(frozen=True)
class MoveTask:
    handle: str
    approximate_messages: int | None


class DeadLetterQueue(Protocol):
    """One DLQ and the source queue its messages go back to."""

    queue_id: str

    def receive(self, max_messages: int, hold_seconds: int) -> list[RawMessage]:
        """Up to ``max_messages`` messages, hidden from other readers for ``hold_seconds``."""

    def release(self, messages: Sequence[RawMessage]) -> None:
        """Make held messages visible again at once."""

    def send_back(self, message: RawMessage) -> None:
        """Send the message's body and attributes to the source queue, or raise."""

    def delete(self, message: RawMessage) -> None: ...

    def start_move_task(self, max_per_second: int | None) -> MoveTask:
        """Move every message back server-side, or raise ``MoveTaskUnsupported``."""

    def depth(self) -> int: ...

    def purge(self) -> None: ...


@dataclass(frozen=True)
class DlqMessage:
    """A DLQ message explained: what it is, why it is there, what it would sync."""

    queue: str
    id: str
    kind: MessageKind
    reason: str
    stage: str | None
    pair: str | None
    source: str | None
    entity: str | None
    keys: tuple[str, ...]
    failed_at: datetime | None
    sent_at: datetime
    receive_count: int
    body: Any
    attributes: dict[str, str]

    @property
    def when(self) -> datetime:
        """When it failed (the dead letter's own time, else when SQS got it)."""
        return self.failed_at or self.sent_at

    def age_seconds(self, now: datetime) -> float:
        return (now - self.when).total_seconds()

    @property
    def redrivable(self) -> bool:
        # An unparsable body can never sync; sending it back only sends it here again.
        return self.kind != "unparsable"

    def summary(self, now: datetime) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "id": self.id,
            "kind": self.kind,
            "reason": self.reason,
            "stage": self.stage,
            "pair": self.pair,
            "source": self.source,
            "entity": self.entity,
            "keys": list(self.keys),
            "failed_at": self.when.isoformat(),
            "age_seconds": round(self.age_seconds(now), 1),
            "receive_count": self.receive_count,
        }

    def detail(self, now: datetime) -> dict[str, Any]:
        return {
            **self.summary(now),
            "sent_at": self.sent_at.isoformat(),
            "attributes": self.attributes,
            "body": self.body,
        }


def explain(queue: str, raw: RawMessage) -> DlqMessage:
    """Classify one raw message and pull out its reason, source, entity and keys."""
    try:
        document: Any = json.loads(raw.body)
    except json.JSONDecodeError:
        document = raw.body
    common: dict[str, Any] = {"queue": queue, "id": raw.id, "sent_at": raw.sent_at}
    common |= {"receive_count": raw.receive_count, "body": document, "attributes": dict(raw.attributes)}
    kind = document.get("kind") if isinstance(document, dict) else None
    try:
        if kind == "syncline.dead-letter":
            letter = DeadLetter.model_validate(document)
            notice = letter.notice
            return DlqMessage(
                kind="dead-letter",
                reason=letter.reason,
                stage=letter.stage,
                pair=letter.pair,
                source=notice.source_system,
                entity=notice.entity,
                keys=(notice.key,),
                failed_at=letter.failed_at,
                **common,
            )
        if kind == "syncline.unparsable":
            unparsable = UnparsableMessage.model_validate(document)
            return DlqMessage(
                kind="unparsable",
                reason=unparsable.reason,
                stage="parse",
                pair=unparsable.pair,
                source=None,
                entity=None,
                keys=(),
                failed_at=unparsable.failed_at,
                **common,
            )
        if isinstance(document, dict) and isinstance(document.get("detail"), dict):
            batch = NoticeBatch.model_validate(document["detail"])
            return DlqMessage(
                kind="retries-exhausted",
                reason="delivery kept failing until SQS moved it here (transient: the ERP or the target "
                "was unreachable; the worker's log has the error)",
                stage=None,
                pair=None,
                source=batch.source_system,
                entity=batch.entity,
                keys=tuple(notice.key for notice in batch.notices),
                failed_at=None,
                **common,
            )
    except ValidationError as exc:
        reason = f"not a Syncline message: {exc.errors()[0]['msg']}"
    else:
        reason = "not a Syncline message"
    return DlqMessage(
        kind="unknown",
        reason=reason,
        stage=None,
        pair=None,
        source=raw.attributes.get("syncline-source"),
        entity=raw.attributes.get("syncline-entity"),
        keys=(),
        failed_at=None,
        **common,
    )


@dataclass(frozen=True)
class DlqFilter:
    """Which messages a command applies to; empty means every message."""

    source: str | None = None
    error: str | None = None
    since: datetime | None = None
    key: str | None = None
    ids: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return not (self.source or self.error or self.since or self.key or self.ids)

    def matches(self, message: DlqMessage) -> bool:
        if self.ids and not any(message.id.startswith(wanted) for wanted in self.ids):
            return False
        if self.source and message.source != self.source:
            return False
        if self.error and self.error.lower() not in message.reason.lower():
            return False
        if self.key and not any(self.key in key for key in message.keys):
            return False
        return not (self.since and message.when < self.since)


def peek(queue: DeadLetterQueue, *, limit: int = 1000, hold_seconds: int = 30) -> list[DlqMessage]:
    """Up to ``limit`` messages, read without consuming: every message read is made visible again."""
    held: list[RawMessage] = []
    try:
        held.extend(_receive_all(queue, hold_seconds, limit))
    finally:
        queue.release(held)
    return [explain(queue.queue_id, raw) for raw in held]


def _receive_all(queue: DeadLetterQueue, hold_seconds: int, limit: int) -> Iterator[RawMessage]:
    """Each message once, until the queue has nothing more to show (or ``limit``)."""
    seen: set[str] = set()
    while len(seen) < limit:
        batch = queue.receive(min(10, limit - len(seen)), hold_seconds)
        fresh = [raw for raw in batch if raw.id not in seen]
        if not fresh:
            return  # empty, or only messages whose hold expired: everything has been seen
        for raw in fresh:
            seen.add(raw.id)
            yield raw


@dataclass
class RedriveReport:
    queue: str
    method: Literal["one-by-one", "move-task", "dry-run"]
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    not_deleted: int = 0
    task: str | None = None
    note: str | None = None
    moved_ids: list[str] = field(default_factory=list)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "method": self.method,
            "moved": self.moved,
            "skipped": self.skipped,
            "failed": self.failed,
            "not_deleted": self.not_deleted,
            "task": self.task,
            "note": self.note,
            "skipped_reasons": self.skipped_reasons,
            "failures": self.failures[:20],
        }


class Pacer:
    """At most ``rate`` calls per second (None: unlimited); sleep and clock injectable for tests."""

    def __init__(
        self,
        rate: float | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._sleep, self._clock = sleep, clock
        self._next: float | None = None

    def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


def redrive(
    queue: DeadLetterQueue,
    selection: DlqFilter,
    *,
    dry_run: bool = False,
    rate: float | None = None,
    hold_seconds: int = 900,
    limit: int = 100_000,
    use_move_task: bool = True,
    pacer: Pacer | None = None,
    on_progress: Callable[[DlqMessage, str], None] | None = None,
) -> RedriveReport:
    """Send matching messages back to the source queue; see the module docstring.

    The whole queue (no filter) goes with ``StartMessageMoveTask`` when the service supports it;
    otherwise, and for any filter, message by message: send, then delete. Unparsable messages are
    skipped (they can never sync) and so are messages that do not match the filter.
    """
    if dry_run:
        return _redrive_one_by_one(queue, selection, True, hold_seconds, limit, Pacer(None), on_progress)
    note = None
    if selection.everything and use_move_task:
        try:
            task = queue.start_move_task(int(rate) if rate else None)
        except MoveTaskUnsupported as exc:
            note = f"StartMessageMoveTask unavailable ({exc}); moved one by one instead"
        else:
            report = RedriveReport(queue.queue_id, "move-task", task=task.handle)
            report.moved = task.approximate_messages or 0
            report.note = "moving server-side; `syncline dlq list` shows what is left"
            return report
    report = _redrive_one_by_one(queue, selection, False, hold_seconds, limit, pacer or Pacer(rate), on_progress)
    report.note = note
    return report


def _redrive_one_by_one(
    queue: DeadLetterQueue,
    selection: DlqFilter,
    dry_run: bool,
    hold_seconds: int,
    limit: int,
    pacer: Pacer,
    on_progress: Callable[[DlqMessage, str], None] | None,
) -> RedriveReport:
    report = RedriveReport(queue.queue_id, "dry-run" if dry_run else "one-by-one")
    kept: list[RawMessage] = []  # skipped or failed: made visible again at the end
    # A message that fails again while the redrive runs comes back with a new id: leave it for next time.
    started = now_utc()

    def outcome(message: DlqMessage, what: str) -> None:
        if on_progress:
            on_progress(message, what)

    try:
        for raw in _receive_all(queue, hold_seconds, limit):
            message = explain(queue.queue_id, raw)
            why = _skip_reason(message, selection, started)
            if why:
                report.skipped += 1
                report.skipped_reasons[why] = report.skipped_reasons.get(why, 0) + 1
                kept.append(raw)
                outcome(message, "skipped")
                continue
            if dry_run:
                report.moved += 1
                report.moved_ids.append(raw.id)
                kept.append(raw)
                outcome(message, "would move")
                continue
            pacer.wait()
            try:
                queue.send_back(raw)
            except Exception as exc:
                report.failed += 1
                report.failures.append(f"{raw.id}: send failed: {exc}")
                kept.append(raw)
                outcome(message, "failed")
                continue
            report.moved += 1
            report.moved_ids.append(raw.id)
            try:
                queue.delete(raw)
            except Exception as exc:
                # Sent but still here: it reappears after its hold and a later redrive sends a duplicate.
                report.not_deleted += 1
                report.failures.append(f"{raw.id}: sent back, but not deleted from the DLQ: {exc}")
            outcome(message, "moved")
    finally:
        queue.release(kept)
    return report


def _skip_reason(message: DlqMessage, selection: DlqFilter, started: datetime) -> str | None:
    if not selection.matches(message):
        return "no match"
    if not message.redrivable:
        return f"{message.kind}: can never sync"
    if message.sent_at > started:
        return "arrived during this redrive"
    return None


def purge(queues: Iterable[DeadLetterQueue]) -> dict[str, int]:
    """Delete every message of each queue; returns the approximate depth each had."""
    purged = {}
    for queue in queues:
        purged[queue.queue_id] = queue.depth()
        queue.purge()
    return purged


def now_utc() -> datetime:
    return datetime.now(UTC)
