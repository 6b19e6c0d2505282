"""A queue batch of ChangeNotices for one two-way pair: each record synced once, under its lease.

Notices are hints: several about one record in a batch cost one sync. Per record:
- ``settled`` / ``echo``: done (echoes cost no write);
- ``review``: the conflict is recorded on the review list, and the notice is done (the sweeper and a
  person take it from there; nothing is overwritten meanwhile);
- ``busy`` (another worker holds the record) or a transient failure: the message comes back after the
  visibility timeout, and after ``maxReceiveCount`` tries goes to the dead-letter queue;
- a permanent failure (a system refused the write, the record has no identity there): a dead letter with
  the notice and the reason, so it can be fixed and redriven.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from syncline.models import ChangeNotice, DeadLetter, UnparsableMessage
from syncline.ports import DeadLetterSink
from syncline.review import ConflictReview
from syncline.sync import MalformedMessage, decode_message
from syncline.twoway import Outcome, TwoWaySync


class PermanentFailure(RuntimeError):
    """A record that will fail the same way on every retry (a refused write, an unknown identity)."""


@dataclass
class TwoWayBatchResult:
    notices: int = 0
    records: int = 0
    settled: int = 0
    writes: int = 0
    echoes: int = 0
    conflicts: list[str] = field(default_factory=list)  # conflict ids recorded for review
    settled_by_policy: int = 0  # records two systems changed differently, settled by the pair's policy
    busy: int = 0
    dead_letters: list[DeadLetter | UnparsableMessage] = field(default_factory=list)
    failed_messages: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def sync_twoway_batch(
    messages: Sequence[tuple[str, str]],
    *,
    pair: str,
    entity: str,
    sync: TwoWaySync,
    review: ConflictReview,
    dead_letters: DeadLetterSink,
    record_key: Callable[[ChangeNotice], str] = lambda notice: notice.key,
    is_permanent: Callable[[Exception], bool] = lambda exc: isinstance(exc, PermanentFailure),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TwoWayBatchResult:
    """Sync every record the batch's notices name; ``record_key`` maps a notice to the pair's record key
    (raising ``PermanentFailure`` when the record has no identity in the pair)."""
    result = TwoWayBatchResult()
    by_key: dict[str, list[tuple[str, ChangeNotice]]] = {}
    for message_id, body in messages:
        try:
            inbound = decode_message(message_id, body, entity)
        except MalformedMessage as exc:
            result.dead_letters.append(UnparsableMessage(body=body, reason=str(exc), pair=pair, failed_at=clock()))
            continue
        for notice in inbound.notices:
            result.notices += 1
            try:
                key = record_key(notice)
            except Exception as exc:
                if not is_permanent(exc):
                    result.failed_messages.add(message_id)
                    result.failures.append(f"{notice.key}: {exc}")
                    continue
                result.dead_letters.append(
                    DeadLetter(notice=notice, reason=str(exc), stage="map", pair=pair, failed_at=clock())
                )
                continue
            by_key.setdefault(key, []).append((message_id, notice))
    for key, notices in by_key.items():
        result.records += 1
        try:
            outcome = sync.sync(key)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
            if is_permanent(exc):
                result.dead_letters += [
                    DeadLetter(notice=notice, reason=reason, stage="write", pair=pair, failed_at=clock())
                    for _, notice in notices
                ]
            else:
                result.failed_messages |= {message_id for message_id, _ in notices}
                result.failures.append(f"{key}: {reason}")
            continue
        _count(result, outcome, notices, pair, entity, review)
    if result.dead_letters:
        dead_letters.send(result.dead_letters)
    return result


def _count(
    result: TwoWayBatchResult,
    outcome: Outcome,
    notices: list[tuple[str, ChangeNotice]],
    pair: str,
    entity: str,
    review: ConflictReview,
) -> None:
    if outcome.status == "settled":
        result.settled += 1
        result.writes += len(outcome.writes)
        result.settled_by_policy += outcome.contested
    elif outcome.status == "echo":
        result.echoes += 1
    elif outcome.status == "review":
        result.conflicts.append(review.record(pair, entity, outcome).id)
    else:  # busy: another worker holds the record; this notice comes back after the visibility timeout
        result.busy += 1
        result.failed_messages |= {message_id for message_id, _ in notices}
