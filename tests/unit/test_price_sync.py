"""ERP prices -> a store: the ICPRICP mapping to the canonical Price, the price engine with in-memory fakes
(fetch-on-notify, state cache, dead letters), and the poller's price notices."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.canonical.entities import Price
from syncline.erp.sage300 import (
    ICILOC_STREAM,
    ICITEM_STREAM,
    ICPRICP_STREAM,
    MappingError,
    PriceSelection,
    StampedKey,
    streams_for,
    to_price,
)
from syncline.models import ChangeNotice, DeadLetter, NoticeBatch, UnparsableMessage
from syncline.poller import PollLimits, poll
from syncline.prices import PricePair, content_hash, sync_price_batch
from tests.fakes import ListDeadLetters, ListPublisher, MemoryCheckpoints, MemoryState

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEB = PriceSelection("WEB", "USD", "MSRP")


def _row(
    item: str, price_list: str, price: Any, *, unit: str = "EA", stock_unit: str | None = "EA", **extra: Any
) -> dict[str, Any]:
    row = {
        "ITEMNO": item,
        "CURRENCY": "USD",
        "PRICELIST": price_list,
        "QTYUNIT": unit,
        "UNITPRICE": price,
        "AUDTDATE": 20261123,
        "AUDTTIME": 10000000,
        "STOCKUNIT": stock_unit,
    }
    return row | extra


# --- mapping -------------------------------------------------------------------------------------------------


def test_the_web_base_price_of_the_stock_unit_with_a_higher_msrp_as_compare_at() -> None:
    rows = [
        _row("A", "WEB", Decimal("12.5"), AUDTTIME=11000000),
        _row("A", "WEB", Decimal("120"), unit="BOX"),  # another unit: not what a store sells
        _row("A", "MSRP", Decimal("15.000000"), AUDTDATE=20261124, AUDTTIME=0),
    ]
    price = to_price(rows, WEB)
    assert price == Price(
        sku="A",
        currency="USD",
        base=Decimal("12.500000"),
        compare_at=Decimal("15.000000"),
        price_list="WEB",
        source_version=20261124_00000000,  # the newest stamp of the rows used: an MSRP change syncs too
        updated_at=datetime(2026, 11, 24, tzinfo=UTC),
    )
    assert str(price.base) == "12.500000"  # one scale, so 12.5 and 12.500000 hash the same


def test_a_compare_at_not_above_the_price_is_dropped_and_a_missing_list_is_no_price() -> None:
    lower = to_price([_row("A", "WEB", Decimal(10)), _row("A", "MSRP", Decimal(9))], WEB)
    assert lower is not None and lower.compare_at is None
    equal = to_price([_row("A", "WEB", Decimal(10)), _row("A", "MSRP", Decimal(10))], WEB)
    assert equal is not None and equal.compare_at is None
    assert to_price([_row("A", "MSRP", Decimal(10))], WEB) is None  # only the compare-at list: no web price


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([_row("A", "WEB", Decimal("-0.01"))], "negative price: UNITPRICE of WEB = -0.01"),
        ([_row("A", "WEB", Decimal(1)), _row("A", "MSRP", Decimal(-3))], "negative price: UNITPRICE of MSRP"),
        ([_row("GHOST", "WEB", Decimal(5), stock_unit=None)], "item 'GHOST' has prices but is not in the item master"),
        ([_row("A", "WEB", Decimal(5), unit="BOX")], "no WEB price for the stock unit 'EA' (priced: WEB/BOX)"),
        ([_row("A", "WEB", None)], "UNITPRICE of WEB is empty"),
        ([_row("A", "WEB", "abc")], "UNITPRICE of WEB is not a number"),
        ([_row("A", "WEB", Decimal("NaN"))], "UNITPRICE of WEB is not a number"),
        ([_row("A", "WEB", Decimal(10) ** 13)], "price out of range"),
        ([_row("A", "WEB", Decimal(1), AUDTDATE=20261131)], "unparsable audit stamp"),
        ([_row("A\x00B", "WEB", Decimal(1))], "ITEMNO contains a NUL character"),
    ],
)
def test_a_row_no_store_can_take_is_a_mapping_error_saying_why(rows: list[dict[str, Any]], reason: str) -> None:
    with pytest.raises(MappingError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        to_price(rows, WEB)


# --- engine --------------------------------------------------------------------------------------------------


class MemoryPrices:
    """ICPRICP rows as ``Sage300Reader.fetch_prices`` returns them; counts the queries."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.queries = 0
        self.down = False

    def fetch_prices(self, items: Iterable[str], *, currency: str, price_lists: Sequence[str]) -> list[dict[str, Any]]:
        if self.down:
            raise ConnectionError("ERP unreachable")
        self.queries += 1
        wanted = set(items)
        return [
            r
            for r in self.rows
            if r["ITEMNO"] in wanted and r["CURRENCY"] == currency and r["PRICELIST"] in price_lists
        ]


class MemoryPriceTarget:
    def __init__(self) -> None:
        self.prices: dict[str, Price] = {}
        self.writes = 0

    def upsert_prices(self, prices: Sequence[Price]) -> set[str]:
        self.writes += 1
        written = set()
        for price in prices:
            held = self.prices.get(price.sku)
            if held is None or (held.source_version or 0) <= (price.source_version or 0):
                self.prices[price.sku] = price
                written.add(price.sku)
        return written


def _event(*skus: str, version: int = 1, entity: str = "price", source: str = "sage300") -> str:
    notices = [
        ChangeNotice(source_system=source, entity=entity, key=sku, observed_at=NOW, source_version=version)
        for sku in skus
    ]
    detail = NoticeBatch(source_system=source, entity=entity, notices=notices).model_dump(mode="json")
    return json.dumps({"detail-type": "ChangeNotices", "source": f"syncline.{source}", "detail": detail})


class World:
    def __init__(self, accepts: Any = lambda sku: True) -> None:
        self.erp, self.state, self.target, self.dlq = (
            MemoryPrices(),
            MemoryState(),
            MemoryPriceTarget(),
            ListDeadLetters(),
        )
        self.pair = PricePair("erp-web", "sage300", WEB, accepts=accepts)

    def sync(self, *records: tuple[str, str]):  # type: ignore[no-untyped-def]
        return sync_price_batch(
            list(records),
            pair=self.pair,
            source=self.erp,
            state=self.state,
            target=self.target,
            dead_letters=self.dlq,
            clock=lambda: NOW,
        )


def test_a_batch_is_fetched_in_one_query_written_once_and_a_redelivery_writes_nothing() -> None:
    world = World()
    world.erp.rows += [_row("A", "WEB", Decimal(10)), _row("B", "WEB", Decimal(20)), _row("B", "MSRP", Decimal(25))]
    result = world.sync(("m1", _event("A", "B")), ("m2", _event("A")))
    assert world.erp.queries == 1 and world.target.writes == 1
    assert sorted(r.key for r in result.synced) == ["A", "B"]
    assert world.target.prices["B"].compare_at == Decimal(25)
    assert world.state.get_many("erp-web", "price", ["A"])["A"].content_hash == content_hash(world.target.prices["A"])

    again = world.sync(("m3", _event("A", "B")))
    assert world.target.writes == 1 and again.skipped_unchanged == 2 and not again.synced


def test_a_changed_price_is_written_and_an_older_one_is_not() -> None:
    world = World()
    world.erp.rows.append(_row("A", "WEB", Decimal(10), AUDTTIME=11000000))
    world.sync(("m1", _event("A")))
    world.erp.rows[0] = _row("A", "WEB", Decimal(11), AUDTTIME=10000000)  # an older stamp: a late, stale read
    stale = world.sync(("m2", _event("A")))
    assert stale.skipped_stale == 1 and world.target.prices["A"].base == Decimal(10)
    world.erp.rows[0] = _row("A", "WEB", Decimal(12), AUDTTIME=12000000)
    newer = world.sync(("m3", _event("A")))
    assert [r.key for r in newer.synced] == ["A"] and world.target.prices["A"].base == Decimal("12.000000")


def test_bad_rows_are_dead_lettered_with_the_fetched_rows_and_the_rest_syncs() -> None:
    world = World()
    world.erp.rows += [
        _row("A", "WEB", Decimal(10)),
        _row("NEG", "WEB", Decimal("-4.5")),
        _row("GHOST", "WEB", Decimal(3), stock_unit=None),
    ]
    result = world.sync(("m1", _event("A", "NEG", "GHOST", "NOPRICE")))
    assert [r.key for r in result.synced] == ["A"] and result.not_in_source == 1
    letters = {letter.notice.key: letter for letter in world.dlq.letters if isinstance(letter, DeadLetter)}
    assert set(letters) == {"NEG", "GHOST"}
    assert letters["NEG"].stage == "map" and letters["NEG"].reason == "negative price: UNITPRICE of WEB = -4.5"
    assert letters["NEG"].fetched == {"ICPRICP": [{**_row("NEG", "WEB", "-4.5")}]}
    assert "not in the item master" in letters["GHOST"].reason
    assert not result.failed_messages


def test_a_future_stamp_is_dead_lettered_and_filters_skip_without_a_fetch() -> None:
    world = World(accepts=lambda sku: sku.startswith("SKU-"))
    world.erp.rows.append(_row("SKU-1", "WEB", Decimal(1), AUDTDATE=20271123))
    result = world.sync(("m1", _event("SKU-1", "OTHER")))
    assert result.filtered == 1
    (letter,) = world.dlq.letters
    assert isinstance(letter, DeadLetter) and "is in the future" in letter.reason
    only_filtered = World(accepts=lambda sku: False)
    assert only_filtered.sync(("m1", _event("A"))).filtered == 1 and only_filtered.erp.queries == 0


def test_an_unreachable_erp_fails_the_messages_for_a_retry_and_writes_nothing() -> None:
    world = World()
    world.erp.down = True
    result = world.sync(("m1", _event("A")), ("m2", _event("B")))
    assert result.failed_messages == {"m1", "m2"} and "ERP unreachable" in (result.failure or "")
    assert world.target.writes == 0 and not world.dlq.letters


def test_a_message_of_another_entity_or_source_is_kept_verbatim_as_unparsable() -> None:
    world = World()
    world.erp.rows.append(_row("A", "WEB", Decimal(1)))
    stock = _event("A|1", entity="inventory_level")
    foreign = _event("A", source="store_a")
    result = world.sync(("m1", stock), ("m2", foreign), ("m3", _event("A")))
    unparsable = [letter for letter in world.dlq.letters if isinstance(letter, UnparsableMessage)]
    assert [u.body for u in unparsable] == [stock, foreign]
    assert "not handled by this worker" in unparsable[0].reason and "syncs from sage300" in unparsable[1].reason
    assert [r.key for r in result.synced] == ["A"]


# --- poller --------------------------------------------------------------------------------------------------


class PriceScanner:
    def __init__(self, rows: list[StampedKey]) -> None:
        self.rows = rows
        self.streams: list[str] = []

    def scan_changes(self, stream: Any, *, from_stamp: Any, after: Any, page_size: int) -> list[StampedKey]:
        self.streams.append(stream.name)
        return self.rows if stream is ICPRICP_STREAM and after is None else []


def test_the_poller_emits_one_price_notice_per_changed_icpricp_row_keyed_by_item() -> None:
    rows = [
        StampedKey(20261123, 10000000, ("USD", "A", "WEB", "1", "EA", "")),
        StampedKey(20261123, 10000000, ("USD", "A", "MSRP", "1", "EA", "")),
    ]
    scanner, publisher = PriceScanner(rows), ListPublisher()
    poll(
        source="sage300",
        scanner=scanner,
        checkpoints=MemoryCheckpoints(),
        publisher=publisher,
        limits=PollLimits(),
        clock=lambda: NOW,
        streams=streams_for(["price"]),
    )
    assert scanner.streams == ["ICPRICP"]
    assert [(n.entity, n.key) for n in publisher.published] == [("price", "A"), ("price", "A")]
    assert [n.delivery_id for n in publisher.published] == [
        "sage300:ICPRICP:USD|A|WEB|1|EA|:2026112310000000",
        "sage300:ICPRICP:USD|A|MSRP|1|EA|:2026112310000000",
    ]


def test_streams_follow_the_entities_the_pairs_sync() -> None:
    assert streams_for(["inventory_level"]) == (ICILOC_STREAM, ICITEM_STREAM)
    assert streams_for(["inventory_level", "price"]) == (ICILOC_STREAM, ICITEM_STREAM, ICPRICP_STREAM)
    assert streams_for(["order"]) == (ICILOC_STREAM, ICITEM_STREAM)  # nothing else asked: stock, as before
    assert ICILOC_STREAM.notice_key(("A", "1")) == "A|1" and ICITEM_STREAM.notice_key(("A",)) == "A|*"
