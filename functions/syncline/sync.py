"""The sync worker's engine: fetch-on-notify for a batch of notices, ERP inventory -> a target.

For one batch: fetch the current ERP rows of every notified item in one query, map them to
``InventoryLevel``, drop what the state cache says is unchanged or older, write the rest to the
target (which guards against older versions itself), then commit the new state conditionally.
A record that can never sync (bad row, unmapped location) becomes a dead letter with its context
while the rest of the batch proceeds; a transient failure (ERP or target down) fails the messages
it touched so the queue retries them. Every step is idempotent, so a redelivery changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from syncline.config import Pair, SynclineConfig
from syncline.erp.sage300 import MappingError, row_context, to_inventory_level
from syncline.models import (
    ALL_LOCATIONS,
    ChangeNotice,
    DeadLetter,
    FailureStage,
    InventoryLevel,
    NoticeBatch,
    UnparsableMessage,
    split_inventory_key,
)
from syncline.ports import DeadLetterSink, InventoryTarget, KnownState, StateStore, StateWriter

if TYPE_CHECKING:
    from syncline.business_alerts import StockAlerts

ENTITY = "inventory_level"
# A stamp further ahead than this is a wrong clock: synced, it would outrank every later real change.
FUTURE_TOLERANCE = timedelta(minutes=5)


class InventorySource(Protocol):
    def fetch_items(self, items: Iterable[str]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class InboundMessage:
    """One queue message: its id (for partial batch failure) and the notices it carries."""

    message_id: str
    notices: tuple[ChangeNotice, ...]


class MalformedMessage(ValueError):
    """A message body that carries no valid notices."""


def decode_message(message_id: str, body: str, entity: str = ENTITY) -> InboundMessage:
    """Notices of one queue message: an EventBridge ``ChangeNotices`` event, or a dead letter being redriven."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, an int of over 4,300 digits, deep nesting
        raise MalformedMessage("body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("body is not a JSON object")
    try:
        if document.get("kind") == "syncline.dead-letter":
            notices: tuple[ChangeNotice, ...] = (DeadLetter.model_validate(document).notice,)
        else:
            notices = tuple(NoticeBatch.model_validate(document.get("detail")).notices)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedMessage(f"not a ChangeNotices event: {where}: {first['msg']}") from None
    for notice in notices:
        if notice.entity != entity:
            raise MalformedMessage(f"entity {notice.entity!r} is not handled by this worker")
        if entity != ENTITY:
            continue
        try:
            split_inventory_key(notice.key)
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from None
    return InboundMessage(message_id, notices)


@dataclass(frozen=True)
class SyncedRecord:
    key: str
    trace_id: str | None
    observed_at: datetime
    committed_at: datetime

    @property
    def latency_seconds(self) -> float:
        return (self.committed_at - self.observed_at).total_seconds()


@dataclass
class BatchResult:
    """What happened to a batch; ``failed_messages`` are the ones the queue must deliver again."""

    notices: int = 0
    synced: list[SyncedRecord] = field(default_factory=list)
    skipped_unchanged: int = 0
    skipped_stale: int = 0
    not_in_source: int = 0
    filtered: int = 0  # outside the pair's filters: not its business, not an error
    dead_letters: list[DeadLetter | UnparsableMessage] = field(default_factory=list)
    failed_messages: set[str] = field(default_factory=set)
    failure: str | None = None
    alert_failure: str | None = None  # stock alerts that could not go out (the sync itself committed)


@dataclass(frozen=True)
class PairContext:
    name: str
    source: str
    locations: Mapping[str, str]
    tz: tzinfo = UTC
    accepts: Callable[[str, str], bool] = lambda sku, location: True  # the pair's filters (SKU prefix, location)


def pair_context(config: SynclineConfig, pair: Pair) -> PairContext:
    """A declared one-way pair as the engine sees it (the source's clock for audit stamps, the pair's filters)."""
    return PairContext(
        pair.name, pair.source, pair.locations, ZoneInfo(config.systems[pair.source].timezone), pair.filters.accepts
    )


def sync_inventory_batch(
    records: Sequence[tuple[str, str]],
    *,
    pair: PairContext,
    source: InventorySource,
    state: StateStore,
    target: InventoryTarget,
    dead_letters: DeadLetterSink,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stock_alerts: StockAlerts | None = None,
) -> BatchResult:
    """Sync every notice of ``records`` ((message id, body) pairs) from the ERP into ``target``; the levels
    written go through ``stock_alerts`` (business alerts on crossing a reorder point or running out)."""
    messages: list[InboundMessage] = []
    letters: list[tuple[DeadLetter | UnparsableMessage, str]] = []
    for message_id, body in records:
        try:
            message = decode_message(message_id, body)
            foreign = {n.source_system for n in message.notices} - {pair.source}
            if foreign:
                raise MalformedMessage(
                    f"notices from {', '.join(sorted(foreign))}; pair {pair.name} syncs from {pair.source}"
                )
            messages.append(message)
        except MalformedMessage as exc:
            unparsable = UnparsableMessage(body=body, reason=str(exc), pair=pair.name, failed_at=clock())
            letters.append((unparsable, message_id))
    result = BatchResult(notices=sum(len(m.notices) for m in messages))
    all_ids = {m.message_id for m in messages}
    wanted = _wanted(messages)
    if wanted:
        _sync_wanted(wanted, result, letters, all_ids, pair, source, state, target, clock, stock_alerts)
    if letters:
        try:
            dead_letters.send([letter for letter, _ in letters])
        except Exception as exc:
            _fail(result, {message_id for _, message_id in letters}, f"dead-letter send failed: {exc}")
        else:
            result.dead_letters.extend(letter for letter, _ in letters)
    return result


def _sync_wanted(
    wanted: dict[tuple[str, str], list[tuple[ChangeNotice, str]]],
    result: BatchResult,
    letters: list[tuple[DeadLetter | UnparsableMessage, str]],
    all_ids: set[str],
    pair: PairContext,
    source: InventorySource,
    state: StateStore,
    target: InventoryTarget,
    clock: Callable[[], datetime],
    stock_alerts: StockAlerts | None = None,
) -> None:
    _park_unreadable(wanted, letters, pair, clock)
    try:
        rows = source.fetch_items({item for item, _ in wanted})
    except Exception as exc:
        _fail(result, all_ids, f"fetch from source failed: {exc}")
        return

    candidates: dict[str, tuple[InventoryLevel, ChangeNotice, str]] = {}
    matched: set[tuple[str, str]] = set()
    for row in rows:
        erp_key = (str(row["ITEMNO"]), str(row["LOCATION"]))
        requests = wanted.get(erp_key, []) + wanted.get((erp_key[0], ALL_LOCATIONS), [])
        if not requests:
            continue
        matched.add(erp_key)
        if not pair.accepts(*erp_key):
            result.filtered += 1
            continue
        notice, message_id = requests[0]
        try:
            level = _map_row(row, pair, clock)
        except (MappingError, ValueError) as exc:
            letters.append((_letter(notice, pair, str(exc), "map", row_context(row), clock), message_id))
            continue
        candidates[level.key] = (level, notice, message_id)
    result.not_in_source = sum(
        len(requests)
        for (item, location), requests in wanted.items()
        if location != ALL_LOCATIONS and (item, location) not in matched
    )

    known = state.get_many(pair.name, ENTITY, list(candidates))
    changed: list[tuple[InventoryLevel, ChangeNotice, str]] = []
    for key, (level, notice, message_id) in candidates.items():
        previous = known.get(key)
        if previous is not None and previous.content_hash == level.content_hash():
            result.skipped_unchanged += 1
        elif previous is not None and previous.version > level.source_version:
            result.skipped_stale += 1
        else:
            changed.append((level, notice, message_id))

    if changed:
        touched = {message_id for _, _, message_id in changed}
        try:
            accepted = write_levels([level for level, _, _ in changed], target=target, state=state, pair=pair.name)
            written = [(level, notice) for level, notice, _ in changed if level.key in accepted]
        except Exception as exc:
            _fail(result, touched, f"write failed: {exc}")
        else:
            committed_at = clock()
            parked = _park_refused(target, changed, accepted, letters, pair, clock)
            result.skipped_stale += len(changed) - len(written) - parked
            result.synced.extend(
                SyncedRecord(level.key, notice.trace_id, notice.observed_at, committed_at) for level, notice in written
            )
            _stock_alerts(stock_alerts, [level for level, _ in written], result)


def _park_refused(
    target: InventoryTarget,
    changed: list[tuple[InventoryLevel, ChangeNotice, str]],
    accepted: set[str],
    letters: list[tuple[DeadLetter | UnparsableMessage, str]],
    pair: PairContext,
    clock: Callable[[], datetime],
) -> int:
    """Dead-letter the levels a target reports it refused (``refused``: key -> reason, a 4xx no retry changes),
    each with the reason; how many."""
    refused: Mapping[str, str] = getattr(target, "refused", None) or {}
    parked = 0
    for level, notice, message_id in changed:
        if level.key in refused and level.key not in accepted:
            letters.append((_letter(notice, pair, refused[level.key], "write", None, clock), message_id))
            parked += 1
    return parked


def _stock_alerts(alerts: StockAlerts | None, levels: list[InventoryLevel], result: BatchResult) -> None:
    """Business alerts on the levels written. The sync has committed, and a redelivery would skip these records
    as unchanged, so a failure is reported on the result (the handler logs it), never raised."""
    if alerts is None or not levels:
        return
    try:
        alerts.observe(levels)
    except Exception as exc:
        result.alert_failure = f"stock alerts: {exc}"[:300]


def _map_row(row: Mapping[str, Any], pair: PairContext, clock: Callable[[], datetime]) -> InventoryLevel:
    level = to_inventory_level(row, pair.locations, pair.tz)
    if level.source_updated_at > clock() + FUTURE_TOLERANCE:
        raise MappingError(f"audit stamp {level.source_updated_at.isoformat()} is in the future")
    return level


def _park_unreadable(
    wanted: dict[tuple[str, str], list[tuple[ChangeNotice, str]]],
    letters: list[tuple[DeadLetter | UnparsableMessage, str]],
    pair: PairContext,
    clock: Callable[[], datetime],
) -> None:
    """Dead-letter the notices whose item no ERP query can take (a NUL): left in, they fail the batch's one query."""
    for erp_key in [key for key in wanted if "\x00" in key[0]]:
        for notice, message_id in wanted.pop(erp_key):
            reason = "item number contains a NUL character; no ERP query can look it up"
            letters.append((_letter(notice, pair, reason, "fetch", None, clock), message_id))


def write_levels(
    levels: Sequence[InventoryLevel], *, target: InventoryTarget, state: StateWriter, pair: str
) -> set[str]:
    """The one write path: upsert with the target's version guard, then commit state for what it accepted.

    Only what the target accepted becomes known state; the rest it already held newer. The worker,
    reconcile --apply and the file import all write through here.
    """
    accepted = target.upsert_inventory(levels)
    state.commit_many(
        pair,
        ENTITY,
        {
            level.key: KnownState(level.content_hash(), level.source_version)
            for level in levels
            if level.key in accepted
        },
    )
    return accepted


def _wanted(messages: Sequence[InboundMessage]) -> dict[tuple[str, str], list[tuple[ChangeNotice, str]]]:
    """(item, location) -> the notices asking for it, newest first."""
    wanted: dict[tuple[str, str], list[tuple[ChangeNotice, str]]] = {}
    for message in messages:
        for notice in message.notices:
            wanted.setdefault(split_inventory_key(notice.key), []).append((notice, message.message_id))
    for requests in wanted.values():
        requests.sort(key=lambda request: request[0].source_version or 0, reverse=True)
    return wanted


def _fail(result: BatchResult, message_ids: set[str], reason: str) -> BatchResult:
    result.failed_messages |= message_ids
    result.failure = reason
    return result


def _letter(
    notice: ChangeNotice,
    pair: PairContext,
    reason: str,
    stage: FailureStage,
    fetched: dict[str, Any] | None,
    clock: Callable[[], datetime],
) -> DeadLetter:
    return DeadLetter(notice=notice, reason=reason, stage=stage, pair=pair.name, fetched=fetched, failed_at=clock())
