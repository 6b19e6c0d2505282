"""Business alerts on stock: below the reorder point, out of stock, back in stock; on crossing only.

Each inventory level (SKU at a location, in the target's codes) is in one band:

    out  available <= 0
    low  0 < available <= the SKU's reorder point       ([monitoring.stock] reorder_points / default)
    ok   above it (or no reorder point for the SKU)

An alert is raised when a level *moves* between bands, never on every change inside one:

    ok  -> low        below_reorder_point
    ok | low -> out   out_of_stock
    out -> low | ok   back_in_stock
    low -> ok         (restocked above the point: nothing to say)

A level seen for the first time has no band to move from, so it raises nothing (a backfill of 500,000
rows must not page anyone); its band is remembered for the next change.

Two ways in. ``detect`` is the pure rule, for callers that know each level's previous available
(``LevelChange``). ``StockAlerts.observe`` is for the sync's write path, which knows only what it
wrote: it remembers each level's band in a ``StockBandStore`` and compares against that. A crossing
becomes a canonical ``StockLevelCrossed`` event (its id is derived from the level's version, so a
redelivered notice yields the same id and the notifier's dedupe sends it once) and an ``Alert`` for a
channel. With ``disable_listing_when_out``, a SKU out of stock at every listing location is deactivated
through ``ListingControl`` (the Shopify connector's product status) and activated again when it is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from syncline.canonical.events import CrossingKind, StockCrossing, StockLevelCrossed
from syncline.canonical.events import StockBand as Band
from syncline.connectors.alerts import Alert
from syncline.models import InventoryLevel, inventory_key
from syncline.monitoring_config import StockAlertsConfig


def band(available: Decimal, reorder_point: Decimal | None) -> Band:
    if available <= 0:
        return "out"
    if reorder_point is not None and available <= reorder_point:
        return "low"
    return "ok"


def crossing(previous: Band | None, current: Band) -> CrossingKind | None:
    """The alert a move from ``previous`` to ``current`` raises (see the module docstring)."""
    if previous is None or previous == current:
        return None
    if current == "out":
        return "out_of_stock"
    if previous == "out":
        return "back_in_stock"
    if current == "low":
        return "below_reorder_point"
    return None  # low -> ok


@dataclass(frozen=True)
class LevelChange:
    """A level as written, and its available quantity before (None: not known)."""

    level: InventoryLevel
    previous_available: Decimal | None


def detect(pair: str, changes: Iterable[LevelChange], config: StockAlertsConfig) -> list[StockCrossing]:
    """The crossings among ``changes`` (pure: the reorder points from ``config``, no state)."""
    found = []
    for change in changes:
        point = config.reorder_point(change.level.sku)
        previous = None if change.previous_available is None else band(change.previous_available, point)
        found_one = _crossing(pair, change.level, previous, point, change.previous_available)
        if found_one is not None:
            found.append(found_one)
    return found


def _crossing(
    pair: str,
    level: InventoryLevel,
    previous: Band | None,
    point: Decimal | None,
    previous_available: Decimal | None = None,
) -> StockCrossing | None:
    current = band(level.available, point)
    kind = crossing(previous, current)
    if kind is None or previous is None:
        return None
    return StockCrossing(
        kind=kind,
        pair=pair,
        sku=level.sku,
        location=level.location,
        previous_band=previous,
        band=current,
        available=level.available,
        previous_available=previous_available,
        reorder_point=point,
        source_version=level.source_version,
        changed_at=level.source_updated_at,
    )


# --- what a crossing becomes ------------------------------------------------------------------------------

_TITLES: Mapping[CrossingKind, str] = {
    "below_reorder_point": "Stock at or below reorder point",
    "out_of_stock": "Out of stock",
    "back_in_stock": "Back in stock",
}


def to_event(crossing: StockCrossing, *, source_system: str, trace_id: str | None = None) -> StockLevelCrossed:
    """The canonical event; the same crossing of the same version always gets the same id."""
    return StockLevelCrossed(
        event_id=f"stock:{crossing.pair}:{crossing.key}:{crossing.kind}:{crossing.source_version}",
        occurred_at=crossing.changed_at,
        source_system=source_system,
        key=crossing.key,
        trace_id=trace_id,
        data=crossing,
    )


def to_alert(crossing: StockCrossing) -> Alert:
    """A message for a channel. Back in stock resolves the out-of-stock incident (same dedup key)."""
    point = "" if crossing.reorder_point is None else f" (reorder point {crossing.reorder_point.normalize():f})"
    summary = {
        "below_reorder_point": f"{crossing.sku} at {crossing.location}: {crossing.available.normalize():f} "
        f"available, at or below its reorder point{point}",
        "out_of_stock": f"{crossing.sku} at {crossing.location} is out of stock",
        "back_in_stock": f"{crossing.sku} at {crossing.location} is back in stock: "
        f"{crossing.available.normalize():f} available",
    }[crossing.kind]
    return Alert(
        summary=summary,
        title=_TITLES[crossing.kind],
        severity="info" if crossing.kind == "back_in_stock" else "warning",
        source=f"syncline/{crossing.pair}",
        component="stock",
        details={
            "sku": crossing.sku,
            "location": crossing.location,
            "available": str(crossing.available),
            "reorder point": "-" if crossing.reorder_point is None else str(crossing.reorder_point),
            "pair": crossing.pair,
        },
        dedup_key=f"stock:{crossing.pair}:{crossing.key}",
        action="resolve" if crossing.kind == "back_in_stock" else "trigger",
    )


# --- ports ------------------------------------------------------------------------------------------------


class StockBandStore(Protocol):
    """The band each level was last seen in, per pair (``SB#{pair}#{key}`` items in the state table)."""

    def get_many(self, pair: str, keys: Sequence[str]) -> Mapping[str, Band]: ...

    def put_many(self, pair: str, bands: Mapping[str, Band]) -> None: ...


class ListingControl(Protocol):
    """Activates or deactivates a SKU's listing on a store (Shopify: the product's status)."""

    def set_listing(self, sku: str, active: bool) -> None: ...


@dataclass
class MemoryStockBands:
    """``StockBandStore`` in memory, for tests and the engine's own checks."""

    items: dict[tuple[str, str], Band] = field(default_factory=dict)

    def get_many(self, pair: str, keys: Sequence[str]) -> Mapping[str, Band]:
        return {key: self.items[(pair, key)] for key in keys if (pair, key) in self.items}

    def put_many(self, pair: str, bands: Mapping[str, Band]) -> None:
        self.items.update({(pair, key): value for key, value in bands.items()})


@dataclass
class MemoryListingControl:
    """``ListingControl`` in memory: the listings' state and every call made."""

    active: dict[str, bool] = field(default_factory=dict)
    calls: list[tuple[str, bool]] = field(default_factory=list)

    def set_listing(self, sku: str, active: bool) -> None:
        self.calls.append((sku, active))
        self.active[sku] = active


# --- the engine on the write path -------------------------------------------------------------------------


@dataclass
class StockAlertOutcome:
    crossings: list[StockCrossing] = field(default_factory=list)
    listings: list[tuple[str, bool]] = field(default_factory=list)  # (sku, active) set through ListingControl


@dataclass
class StockAlerts:
    """Business alerts for one pair's written levels (see the module docstring).

    ``publish`` receives each crossing's canonical event (a ``Notifier.handle``, a bus publisher, or a
    function sending ``to_alert(event.data)`` to a channel). Bands are stored only after every event
    was published, so a failed publish is raised and the same crossing is found again next time.
    """

    pair: str
    source_system: str
    config: StockAlertsConfig
    bands: StockBandStore
    publish: Callable[[StockLevelCrossed], object]
    listing: ListingControl | None = None
    locations: Sequence[str] = ()  # the pair's target location codes (listing_locations when not configured)

    def observe(self, levels: Sequence[InventoryLevel], *, trace_id: str | None = None) -> StockAlertOutcome:
        """Compare each written level's band with the one remembered; publish crossings; act on listings."""
        outcome = StockAlertOutcome()
        if not self.config.enabled or not levels:
            return outcome
        latest = {level.key: level for level in levels}  # one batch may carry a key once; be safe anyway
        known = self.bands.get_many(self.pair, list(latest))
        current: dict[str, Band] = {}
        for key, level in latest.items():
            point = self.config.reorder_point(level.sku)
            current[key] = band(level.available, point)
            found = _crossing(self.pair, level, known.get(key), point)
            if found is not None:
                outcome.crossings.append(found)
        for found in outcome.crossings:
            self.publish(to_event(found, source_system=self.source_system, trace_id=trace_id))
        if self.listing is not None and self.config.disable_listing_when_out:
            outcome.listings = self._listings(self.listing, outcome.crossings, current)
        changed = {key: value for key, value in current.items() if known.get(key) != value}
        if changed:
            self.bands.put_many(self.pair, changed)
        return outcome

    def _listings(
        self, listing: ListingControl, crossings: Sequence[StockCrossing], current: Mapping[str, Band]
    ) -> list[tuple[str, bool]]:
        where = list(self.config.listing_locations or self.locations)
        decided: dict[str, bool] = {}
        for found in crossings:
            if where and found.location not in where:
                continue
            if found.kind == "back_in_stock":
                decided[found.sku] = True
            elif found.kind == "out_of_stock" and found.sku not in decided:
                keys = [inventory_key(found.sku, location) for location in where] or [found.key]
                stored = self.bands.get_many(self.pair, [key for key in keys if key not in current])
                if all({**stored, **current}.get(key) == "out" for key in keys):
                    decided[found.sku] = False
        for sku, active in decided.items():
            listing.set_listing(sku, active)
        return list(decided.items())
