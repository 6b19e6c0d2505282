"""The price worker's engine: fetch-on-notify for a batch of price notices, ERP prices -> a store.

A notice names an item whose ICPRICP rows changed (on any list). For one batch: fetch the current base
prices of every notified item on the pair's price list (and compare-at list) in its currency, in one query;
map them to the canonical ``Price``; drop what the state cache says is unchanged or older; write the rest
to the target (which guards against older versions, or compares with what the store shows); then commit
the new state conditionally. A row no store can take (a negative price, an item missing from the item
master) becomes a dead letter with the fetched rows; a transient failure fails the messages it touched so
the queue retries them. Every step is idempotent: a redelivered notice finds its price unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from syncline.canonical.entities import Price
from syncline.config import Pair
from syncline.erp.sage300 import MappingError, PriceSelection, row_context, to_price
from syncline.models import ChangeNotice, DeadLetter, FailureStage, UnparsableMessage
from syncline.ports import DeadLetterSink, KnownState, PriceTarget, StateStore, StateWriter
from syncline.sync import FUTURE_TOLERANCE, BatchResult, MalformedMessage, SyncedRecord, decode_message

ENTITY = "price"


class PriceSource(Protocol):
    def fetch_prices(
        self, items: Iterable[str], *, currency: str, price_lists: Sequence[str]
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PricePair:
    """A one-way price pair as the worker needs it: its name, source, price selection and filters."""

    name: str
    source: str
    selection: PriceSelection
    tz: tzinfo = UTC
    accepts: Callable[[str], bool] = lambda sku: True

    @classmethod
    def of(cls, pair: Pair, tz: tzinfo = UTC) -> PricePair:
        if pair.prices is None:
            raise ValueError(f"pair {pair.name!r} names no prices (price_list, currency)")
        selection = PriceSelection(pair.prices.price_list, pair.prices.currency, pair.prices.compare_at_price_list)
        return cls(pair.name, pair.source, selection, tz, pair.filters.accepts)


def content_hash(price: Price) -> str:
    """Hash of what a store shows, not of its version: a re-stamped but unchanged price is skipped."""
    content = price.model_dump(mode="json", exclude={"source_version", "updated_at"})
    return hashlib.blake2b(json.dumps(content, sort_keys=True).encode(), digest_size=16).hexdigest()


def sync_price_batch(
    records: Sequence[tuple[str, str]],
    *,
    pair: PricePair,
    source: PriceSource,
    state: StateStore,
    target: PriceTarget,
    dead_letters: DeadLetterSink,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchResult:
    """Sync the items named by ``records`` ((message id, body) pairs) from the ERP's prices into ``target``."""
    letters: list[tuple[DeadLetter | UnparsableMessage, str]] = []
    wanted: dict[str, list[tuple[ChangeNotice, str]]] = {}
    result = BatchResult()
    for message_id, body in records:
        try:
            message = decode_message(message_id, body, ENTITY)
            foreign = {n.source_system for n in message.notices} - {pair.source}
            if foreign:
                raise MalformedMessage(
                    f"notices from {', '.join(sorted(foreign))}; pair {pair.name} syncs from {pair.source}"
                )
        except MalformedMessage as exc:
            letters.append(
                (UnparsableMessage(body=body, reason=str(exc), pair=pair.name, failed_at=clock()), message_id)
            )
            continue
        result.notices += len(message.notices)
        for notice in message.notices:
            wanted.setdefault(notice.key, []).append((notice, message_id))
    for requests in wanted.values():
        requests.sort(key=lambda request: request[0].source_version or 0, reverse=True)
    for sku in [sku for sku in wanted if not pair.accepts(sku)]:
        result.filtered += len(wanted.pop(sku))
    for sku in [sku for sku in wanted if "\x00" in sku]:
        reason = "item number contains a NUL character; no ERP query can look it up"
        letters += [(_letter(n, pair, reason, "fetch", None, clock), m) for n, m in wanted.pop(sku)]
    if wanted:
        _sync_wanted(wanted, result, letters, pair, source, state, target, clock)
    if letters:
        try:
            dead_letters.send([letter for letter, _ in letters])
        except Exception as exc:
            result.failed_messages |= {message_id for _, message_id in letters}
            result.failure = f"dead-letter send failed: {exc}"
        else:
            result.dead_letters.extend(letter for letter, _ in letters)
    return result


def _sync_wanted(
    wanted: dict[str, list[tuple[ChangeNotice, str]]],
    result: BatchResult,
    letters: list[tuple[DeadLetter | UnparsableMessage, str]],
    pair: PricePair,
    source: PriceSource,
    state: StateStore,
    target: PriceTarget,
    clock: Callable[[], datetime],
) -> None:
    selection = pair.selection
    try:
        rows = source.fetch_prices(wanted, currency=selection.currency, price_lists=selection.price_lists)
    except Exception as exc:
        result.failed_messages |= {message_id for requests in wanted.values() for _, message_id in requests}
        result.failure = f"fetch from source failed: {exc}"
        return
    candidates = _map_items(wanted, rows, result, letters, pair, clock)
    known = state.get_many(pair.name, ENTITY, list(candidates))
    changed: list[tuple[Price, ChangeNotice, str]] = []
    for sku, (price, notice, message_id) in candidates.items():
        previous = known.get(sku)
        if previous is not None and previous.content_hash == content_hash(price):
            result.skipped_unchanged += 1
        elif previous is not None and previous.version > (price.source_version or 0):
            result.skipped_stale += 1
        else:
            changed.append((price, notice, message_id))
    if not changed:
        return
    try:
        accepted = write_prices([price for price, _, _ in changed], target=target, state=state, pair=pair.name)
    except Exception as exc:
        result.failed_messages |= {message_id for _, _, message_id in changed}
        result.failure = f"write failed: {exc}"
        return
    committed_at = clock()
    written = [(price, notice) for price, notice, _ in changed if price.sku in accepted]
    result.skipped_stale += len(changed) - len(written)
    result.synced.extend(
        SyncedRecord(price.sku, notice.trace_id, notice.observed_at, committed_at) for price, notice in written
    )


def _map_items(
    wanted: Mapping[str, list[tuple[ChangeNotice, str]]],
    rows: Sequence[dict[str, Any]],
    result: BatchResult,
    letters: list[tuple[DeadLetter | UnparsableMessage, str]],
    pair: PricePair,
    clock: Callable[[], datetime],
) -> dict[str, tuple[Price, ChangeNotice, str]]:
    """Each wanted item's canonical price (newest notice and its message); bad rows become dead letters."""
    selection = pair.selection
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(str(row["ITEMNO"]), []).append(row)

    candidates: dict[str, tuple[Price, ChangeNotice, str]] = {}
    for sku, requests in wanted.items():
        notice, message_id = requests[0]
        item_rows = by_item.get(sku)
        if not item_rows:
            result.not_in_source += len(requests)  # not on the pair's lists (or removed): nothing to write
            continue
        try:
            price = to_price(item_rows, selection, pair.tz)
            if price is not None and price.updated_at > clock() + FUTURE_TOLERANCE:
                raise MappingError(f"audit stamp {price.updated_at.isoformat()} is in the future")
        except (MappingError, ValueError) as exc:
            fetched = {"ICPRICP": [row_context(row) for row in item_rows]}
            letters += [(_letter(n, pair, str(exc), "map", fetched, clock), m) for n, m in requests]
            continue
        if price is None:
            result.not_in_source += len(requests)
            continue
        candidates[sku] = (price, notice, message_id)

    return candidates


def write_prices(prices: Sequence[Price], *, target: PriceTarget, state: StateWriter, pair: str) -> set[str]:
    """Write with the target's guard, then commit state for what the target now agrees with."""
    accepted = target.upsert_prices(prices)
    state.commit_many(
        pair,
        ENTITY,
        {
            price.sku: KnownState(content_hash(price), price.source_version or 0)
            for price in prices
            if price.sku in accepted
        },
    )
    return accepted


def _letter(
    notice: ChangeNotice,
    pair: PricePair,
    reason: str,
    stage: FailureStage,
    fetched: Mapping[str, Any] | None,
    clock: Callable[[], datetime],
) -> DeadLetter:
    return DeadLetter(
        notice=notice,
        reason=reason,
        stage=stage,
        pair=pair.name,
        fetched=dict(fetched) if fetched else None,
        failed_at=clock(),
    )
