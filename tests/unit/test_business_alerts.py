"""Business alerts on stock: alerts on crossing a band only, canonical events, listing control."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from syncline.business_alerts import (
    LevelChange,
    MemoryListingControl,
    MemoryStockBands,
    StockAlerts,
    StockLevelCrossed,
    band,
    crossing,
    detect,
    to_alert,
    to_event,
)
from syncline.models import InventoryLevel
from syncline.monitoring_config import StockAlertsConfig

AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
PAIR = "erp-storefront-inventory"
CONFIG = StockAlertsConfig(enabled=True, default_reorder_point=Decimal(5), reorder_points={"BOLT": Decimal(100)})


def _level(sku: str, available: int | str, location: str = "main", version: int = 1) -> InventoryLevel:
    quantity = Decimal(available)
    return InventoryLevel(
        sku=sku,
        location=location,
        on_hand=quantity,
        reserved=Decimal(0),
        available=quantity,
        on_order=Decimal(0),
        source_version=version,
        source_updated_at=AT,
    )


@pytest.mark.parametrize(
    ("available", "point", "expected"),
    [(0, 5, "out"), (-1, None, "out"), (5, 5, "low"), (1, 5, "low"), (6, 5, "ok"), (1, None, "ok")],
)
def test_bands(available: int, point: int | None, expected: str) -> None:
    assert band(Decimal(available), None if point is None else Decimal(point)) == expected


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ("ok", "low", "below_reorder_point"),
        ("ok", "out", "out_of_stock"),
        ("low", "out", "out_of_stock"),
        ("out", "low", "back_in_stock"),
        ("out", "ok", "back_in_stock"),
        ("low", "ok", None),
        ("low", "low", None),
        ("out", "out", None),
        (None, "out", None),  # first sight: nothing to cross from
    ],
)
def test_only_a_move_between_bands_alerts(previous: str | None, current: str, expected: str | None) -> None:
    assert crossing(previous, current) == expected  # type: ignore[arg-type]


def test_detect_with_known_previous_quantities_uses_each_skus_reorder_point() -> None:
    found = detect(
        PAIR,
        [
            LevelChange(_level("BOLT", 90), Decimal(120)),  # its own point 100: crossed
            LevelChange(_level("NUT", 90), Decimal(120)),  # default point 5: still ok
            LevelChange(_level("NUT", 4, "east"), Decimal(3)),  # low -> low: no alert on every change below
            LevelChange(_level("WASHER", 0), Decimal(2)),
            LevelChange(_level("SCREW", 0), None),  # previous unknown
        ],
        CONFIG,
    )
    assert [(c.sku, c.location, c.kind, c.reorder_point, c.previous_available) for c in found] == [
        ("BOLT", "main", "below_reorder_point", Decimal(100), Decimal(120)),
        ("WASHER", "main", "out_of_stock", Decimal(5), Decimal(2)),
    ]


def test_without_a_reorder_point_only_out_and_back_in_stock_alert() -> None:
    config = StockAlertsConfig(enabled=True)
    changes = [LevelChange(_level("A", 1), Decimal(50)), LevelChange(_level("B", 0), Decimal(1))]
    assert [c.kind for c in detect(PAIR, changes, config)] == ["out_of_stock"]


def _engine(**options: object) -> tuple[StockAlerts, list[StockLevelCrossed], MemoryListingControl]:
    published: list[StockLevelCrossed] = []
    listing = MemoryListingControl()
    config = CONFIG.model_copy(update=options)
    engine = StockAlerts(
        PAIR, "sage300", config, MemoryStockBands(), published.append, listing, locations=("main", "east")
    )
    return engine, published, listing


def test_the_write_path_alerts_once_per_crossing_and_remembers_bands() -> None:
    engine, published, _ = _engine()
    assert engine.observe([_level("NUT", 50)]).crossings == []  # first sight: remembered, not alerted
    assert engine.observe([_level("NUT", 4, version=2)]).crossings[0].kind == "below_reorder_point"
    assert engine.observe([_level("NUT", 3, version=3)]).crossings == []  # still low
    assert engine.observe([_level("NUT", 2, version=4)]).crossings == []
    assert engine.observe([_level("NUT", 0, version=5)]).crossings[0].kind == "out_of_stock"
    assert engine.observe([_level("NUT", 0, version=6)]).crossings == []
    assert engine.observe([_level("NUT", 30, version=7)]).crossings[0].kind == "back_in_stock"
    assert [(e.data.kind, e.data.source_version) for e in published] == [
        ("below_reorder_point", 2),
        ("out_of_stock", 5),
        ("back_in_stock", 7),
    ]


def test_a_failed_publish_keeps_the_old_band_so_the_crossing_is_found_again() -> None:
    bands = MemoryStockBands()
    calls: list[StockLevelCrossed] = []

    def flaky(event: StockLevelCrossed) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise ConnectionError("bus unreachable")

    engine = StockAlerts(PAIR, "sage300", CONFIG, bands, flaky)
    engine.observe([_level("NUT", 50)])
    with pytest.raises(ConnectionError):
        engine.observe([_level("NUT", 0, version=2)])
    assert engine.observe([_level("NUT", 0, version=2)]).crossings[0].kind == "out_of_stock"
    assert [event.event_id for event in calls] == [calls[0].event_id] * 2  # same id: the notifier sends it once


def test_disabled_alerts_do_nothing() -> None:
    engine, published, _ = _engine(enabled=False)
    engine.observe([_level("NUT", 50)])
    assert engine.observe([_level("NUT", 0, version=2)]).crossings == []
    assert published == []


def test_a_listing_is_disabled_only_when_out_at_every_listing_location_and_enabled_when_back() -> None:
    engine, _, listing = _engine(disable_listing_when_out=True)
    engine.observe([_level("NUT", 10, "main"), _level("NUT", 10, "east"), _level("NUT", 10, "west")])
    assert engine.observe([_level("NUT", 0, "main", 2)]).listings == []  # east still sells it
    assert engine.observe([_level("NUT", 0, "west", 2)]).listings == []  # west is not a listing location
    outcome = engine.observe([_level("NUT", 0, "east", 2)])
    assert (outcome.listings, listing.active) == ([("NUT", False)], {"NUT": False})
    assert engine.observe([_level("NUT", 3, "east", 3)]).listings == [("NUT", True)]
    assert listing.calls == [("NUT", False), ("NUT", True)]


def test_listing_locations_from_the_configuration_win_over_the_pairs() -> None:
    engine, _, listing = _engine(disable_listing_when_out=True, listing_locations=["main"])
    engine.observe([_level("NUT", 10, "main"), _level("NUT", 10, "east")])
    engine.observe([_level("NUT", 0, "main", 2)])
    assert listing.active == {"NUT": False}


def test_listing_is_left_alone_unless_configured() -> None:
    engine, _, listing = _engine()
    engine.observe([_level("NUT", 10)])
    engine.observe([_level("NUT", 0, version=2)])
    assert listing.calls == []


def test_the_event_and_the_alert_say_what_happened() -> None:
    (found,) = detect(PAIR, [LevelChange(_level("BOLT", "12.50"), Decimal(101))], CONFIG)
    event = to_event(found, source_system="sage300", trace_id="t-1")
    assert (event.event_type, event.key, event.trace_id, event.occurred_at) == (
        "StockLevelCrossed",
        "BOLT|main",
        "t-1",
        AT,
    )
    assert event.event_id == f"stock:{PAIR}:BOLT|main:below_reorder_point:1"
    assert StockLevelCrossed.model_validate(event.model_dump(mode="json")) == event
    alert = to_alert(found)
    assert alert.summary == "BOLT at main: 12.5 available, at or below its reorder point (reorder point 100)"
    assert (alert.severity, alert.action, alert.dedup_key) == ("warning", "trigger", f"stock:{PAIR}:BOLT|main")
    (back,) = detect(PAIR, [LevelChange(_level("BOLT", 7), Decimal(0))], CONFIG)
    resolved = to_alert(back)
    assert (resolved.action, resolved.dedup_key, resolved.severity) == ("resolve", alert.dedup_key, "info")
