"""ERP change detection: turn rows changed since the checkpoint into ChangeNotices.

Per change stream (ICILOC, ICITEM; ICPRICP when a pair syncs prices) one run:
1. starts at the checkpoint: exactly after its position when the last run stopped at its row
   budget or between rescans; and, every ``rescan_every``, a whole ``lookback`` earlier, so a row committed late with an earlier stamp is still seen without
   re-reading the whole window on every run;
2. reads keyset pages (bounded page size and row budget, so the ERP is never overloaded);
3. skips rows it already emitted at the same version (remembered for the lookback window);
4. publishes notices, then advances the checkpoint with a conditional write, so two concurrent
   pollers cannot both advance it, and a crash between the two only re-publishes (harmless).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from syncline.erp.sage300 import ICILOC_STREAM, ICITEM_STREAM, ChangeStream, StampedKey
from syncline.models import ChangeNotice
from syncline.ports import Checkpoint, CheckpointMoved, CheckpointStore, NoticePublisher
from syncline.stamps import StampError, parse_stamp, shift_stamp, stamp_of, version_of

ENTITY = "inventory_level"
# A DynamoDB item holds 400 KB; at 8 bytes per remembered row 40,000 rows keep the checkpoint below it.
MAX_REMEMBERED = 40_000
_MINUTE = 10_000  # version // _MINUTE = yyyymmddhhmm: the bucket markers are pruned by


class ChangeScanner(Protocol):
    def scan_changes(
        self,
        stream: ChangeStream,
        *,
        from_stamp: tuple[int, int] | None,
        after: tuple[object, ...] | None,
        page_size: int,
    ) -> list[StampedKey]: ...


@dataclass(frozen=True)
class PollLimits:
    page_size: int = 500
    max_rows_per_run: int = 20_000
    lookback: timedelta = timedelta(minutes=5)
    rescan_every: timedelta = timedelta(minutes=1)
    tz: tzinfo = UTC


@dataclass
class StreamReport:
    stream: str
    scanned: int = 0
    emitted: int = 0
    already_seen: int = 0
    caught_up: bool = True
    checkpoint_moved: bool = False


def poll(
    *,
    source: str,
    scanner: ChangeScanner,
    checkpoints: CheckpointStore,
    publisher: NoticePublisher,
    limits: PollLimits,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    trace_id: str | None = None,
    streams: Sequence[ChangeStream] = (ICILOC_STREAM, ICITEM_STREAM),
) -> list[StreamReport]:
    """Run one poll over every change stream of the ERP ``source``."""
    return [
        _poll_stream(source, stream, scanner, checkpoints, publisher, limits, clock, trace_id) for stream in streams
    ]


def _poll_stream(
    source: str,
    stream: ChangeStream,
    scanner: ChangeScanner,
    checkpoints: CheckpointStore,
    publisher: NoticePublisher,
    limits: PollLimits,
    clock: Callable[[], datetime],
    trace_id: str | None,
) -> StreamReport:
    report = StreamReport(stream.name)
    checkpoint = checkpoints.load(source, stream.name)
    recent = set(checkpoint.recent)
    started_at = clock()
    after, from_stamp, full_rescan = _start(checkpoint, limits, started_at)
    position = checkpoint.position
    while report.scanned < limits.max_rows_per_run:
        page_size = min(limits.page_size, limits.max_rows_per_run - report.scanned)
        rows = scanner.scan_changes(stream, from_stamp=from_stamp, after=after, page_size=page_size)
        observed_at = clock()
        horizon = version_of(*stamp_of(observed_at, limits.tz))
        notices = []
        for row in rows:
            if _trustworthy(row, horizon, limits):
                # The checkpoint only moves over real, past stamps: a row stamped in the future or with
                # a broken stamp sorts after today's changes and would otherwise hide them for good.
                position = row.position
            marker = (row.version // _MINUTE, _row_hash(row.key, row.version))
            if marker in recent:
                report.already_seen += 1
                continue
            recent.add(marker)
            notices.append(_notice(source, stream, row, observed_at, trace_id))
        if notices:
            publisher.publish(notices)
        report.scanned += len(rows)
        report.emitted += len(notices)
        if rows:
            after = rows[-1].position
        if len(rows) < page_size:
            break
    else:
        report.caught_up = False
    if report.scanned:
        advanced = Checkpoint(
            position=position,
            caught_up=report.caught_up,
            recent=_prune(recent, position, limits),
            revision=checkpoint.revision + 1,
            rescanned_at=started_at.timestamp() if full_rescan else checkpoint.rescanned_at,
        )
        try:
            checkpoints.save(source, stream.name, advanced, expected_revision=checkpoint.revision)
        except CheckpointMoved:
            report.checkpoint_moved = True
    return report


def _trustworthy(row: StampedKey, horizon: int, limits: PollLimits) -> bool:
    if row.version > horizon:
        return False
    try:
        parse_stamp(row.audit_date, row.audit_time, limits.tz)
    except StampError:
        return False
    return True


def _start(
    checkpoint: Checkpoint, limits: PollLimits, now: datetime
) -> tuple[tuple[object, ...] | None, tuple[int, int] | None, bool]:
    """(after, from_stamp, full_rescan) for the first page of a run."""
    if checkpoint.position is None:
        return None, (0, 0), True
    audit_date, audit_time = int(str(checkpoint.position[0])), int(str(checkpoint.position[1]))
    if not checkpoint.caught_up or not limits.lookback:
        return checkpoint.position, None, False
    due = (
        checkpoint.rescanned_at is None
        or now.timestamp() - checkpoint.rescanned_at >= limits.rescan_every.total_seconds()
    )
    if not due:
        # Between rescans, resume after the position; a late commit waits for the next rescan.
        return checkpoint.position, None, False
    try:
        return None, shift_stamp(audit_date, audit_time, -limits.lookback, limits.tz), True
    except StampError:
        # The last row had a broken stamp: no window can be computed around it, resume after it.
        return checkpoint.position, None, False


def _prune(
    recent: set[tuple[int, int]], position: tuple[object, ...] | None, limits: PollLimits
) -> frozenset[tuple[int, int]]:
    """Keep only what the next rescan can meet again: rows inside the lookback window."""
    if position is None:
        # Nothing trustworthy seen yet: remember everything emitted, or the next run re-emits it.
        return frozenset(sorted(recent, reverse=True)[:MAX_REMEMBERED])
    audit_date, audit_time = int(str(position[0])), int(str(position[1]))
    try:
        floor = version_of(*shift_stamp(audit_date, audit_time, -limits.lookback, limits.tz))
    except StampError:
        floor = version_of(audit_date, audit_time)
    kept = sorted((marker for marker in recent if marker[0] >= floor // _MINUTE), reverse=True)
    # Past the cap the oldest are forgotten: at worst they are re-emitted, and the worker skips them.
    return frozenset(kept[:MAX_REMEMBERED])


def _row_hash(key: tuple[str, ...], version: int) -> int:
    """64 bits identifying (key, version): a collision could only hide one change until the next one."""
    digest = hashlib.blake2b(f"{version}\x1f{chr(31).join(key)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _notice(
    source: str, stream: ChangeStream, row: StampedKey, observed_at: datetime, trace_id: str | None
) -> ChangeNotice:
    key = stream.notice_key(row.key)
    # The delivery id names the row (a price's key is only its item: several rows may share it).
    row_key = key if stream.entity == ENTITY else "|".join(row.key)
    return ChangeNotice(
        source_system=source,
        entity=stream.entity,
        key=key,
        observed_at=observed_at,
        source_version=row.version,
        delivery_id=f"{source}:{stream.name}:{row_key}:{row.version}",
        trace_id=trace_id,
    )
