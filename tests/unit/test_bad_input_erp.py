"""Malformed Sage 300 rows: each one is dead-lettered with its reason, never a crashed batch.

Rows are what ``Sage300Reader.fetch_items`` returns (column name -> DB-API value). The mapping's
contract with the worker is: a row becomes an ``InventoryLevel`` the storefront can store, or raises
``MappingError`` / ``ValueError`` (the worker dead-letters both). The storefront here behaves like its
PostgreSQL table: a NUL or an unencodable character in a text column, or a quantity beyond
numeric(19, 4), fails the whole statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncline.erp.sage300 import FETCH_FIELDS, MappingError, to_inventory_level
from syncline.models import ChangeNotice, DeadLetter, InventoryLevel, NoticeBatch, UnparsableMessage
from syncline.sync import PairContext, sync_inventory_batch
from tests.fakes import ListDeadLetters, MemoryState, MemoryTarget

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LOCATIONS = {"1": "main", "2": "east"}
PAIR = PairContext("erp-storefront", "sage300", LOCATIONS)
FUZZ = settings(
    max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
# The storefront column type numeric(19, 4) holds less than 10^15.
STOREFRONT_MAX_QUANTITY = Decimal(10) ** 15
NAIVE_START, NAIVE_NOW = datetime(2000, 1, 1), NOW.replace(tzinfo=None)  # noqa: DTZ001 - Sage stamps are naive


def good_row(item: str = "GOOD", location: str = "1", **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ITEMNO": item,
        "LOCATION": location,
        "QTYONHAND": Decimal("12.0000"),
        "QTYCOMMIT": Decimal("2.0000"),
        "QTYSALORDR": Decimal(0),
        "QTYONORDER": Decimal(0),
        "AUDTDATE": 20261123,
        "AUDTTIME": 10000000,
        "DESC": f"Item {item}",
        "STOCKUNIT": "EA",
        "INACTIVE": 0,
        "ITEM_AUDTDATE": 20261123,
        "ITEM_AUDTTIME": 10000000,
    }
    assert set(row) == set(FETCH_FIELDS)
    return row | changes


class RowsSource:
    """The ERP as the worker sees it: fetched rows, keyed by item."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows = list(rows)

    def fetch_items(self, items: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(items)
        return [row for row in self.rows if str(row["ITEMNO"]) in wanted]


class PostgresLikeTarget(MemoryTarget):
    """MemoryTarget that refuses, for the whole batch, what the storefront's PostgreSQL table refuses."""

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        for level in levels:
            for text in (level.sku, level.location, level.description, level.unit):
                if text is not None and "\x00" in text:
                    raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
                if text is not None:
                    text.encode("utf-8")  # UnicodeEncodeError, as psycopg raises it
            for quantity in (level.on_hand, level.reserved, level.available, level.on_order):
                if quantity >= STOREFRONT_MAX_QUANTITY:
                    raise ValueError("numeric field overflow")
        return super().upsert_inventory(levels)


class SerializingDeadLetters(ListDeadLetters):
    """Serializes each letter as the SQS sink does (``model_dump_json``) before keeping it."""

    def send(self, letters: Sequence[DeadLetter | UnparsableMessage]) -> None:
        for letter in letters:
            letter.model_dump_json()
        super().send(letters)


def notices_event(*keys: str) -> str:
    notices = [
        ChangeNotice(source_system="sage300", entity="inventory_level", key=k, observed_at=NOW, source_version=1)
        for k in keys
    ]
    detail = NoticeBatch(source_system="sage300", entity="inventory_level", notices=notices).model_dump(mode="json")
    return json.dumps({"version": "0", "detail-type": "ChangeNotices", "source": "syncline.sage300", "detail": detail})


def run_batch(rows: list[dict[str, Any]]) -> tuple[Any, MemoryTarget, ListDeadLetters]:
    """One message per row (the good row last), as a poller event of one notice each."""
    target, dlq = PostgresLikeTarget(), SerializingDeadLetters()
    records = [(f"m{i}", notices_event(f"{row['ITEMNO']}|{row['LOCATION']}")) for i, row in enumerate(rows)]
    result = sync_inventory_batch(
        records,
        pair=PAIR,
        source=RowsSource(rows),
        state=MemoryState(),
        target=target,
        dead_letters=dlq,
        clock=lambda: NOW,
    )
    return result, target, dlq


def assert_poison_is_parked(rows: list[dict[str, Any]]) -> None:
    """The good row syncs, nothing is retried, and each bad row is either synced or dead-lettered with a reason."""
    result, target, dlq = run_batch([*rows, good_row()])
    assert result.failed_messages == set(), result.failure
    assert "GOOD|main" in target.rows
    parked = {letter.notice.key: letter for letter in dlq.letters if isinstance(letter, DeadLetter)}
    for row in rows:
        key = f"{row['ITEMNO']}|{row['LOCATION']}"
        assert key in parked or f"{row['ITEMNO']}|{LOCATIONS.get(row['LOCATION'])}" in target.rows, key
        if key in parked:  # mapped and refused ("map"), or refused before the ERP query ("fetch")
            assert parked[key].reason and parked[key].stage in {"map", "fetch"}


# -- what the mapping rejects clearly today ---------------------------------------------------------------
HANDLED_BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "QTYONHAND": st.one_of(
        st.decimals(max_value=Decimal(-1) / 10**4, places=4, allow_nan=False, allow_infinity=False),
        st.integers(max_value=-1),
        st.none(),
    ),
    "QTYCOMMIT": st.one_of(st.integers(max_value=-1), st.none(), st.lists(st.integers(), min_size=1, max_size=2)),
    "LOCATION": st.one_of(st.text(max_size=6).filter(lambda s: s not in LOCATIONS), st.none()),
    "ITEMNO": st.one_of(
        st.text(min_size=65, max_size=300), st.just(""), st.binary(min_size=1).map(lambda b: b"\xff" + b)
    ),
    "AUDTDATE": st.one_of(
        st.integers(min_value=-(2**31), max_value=10000),  # no year
        st.integers(min_value=10**8, max_value=2**31),  # year beyond 9999 (beyond 2^53: a crash, below)
        st.builds(lambda year, month: year * 10000 + month * 100 + 1, st.integers(1900, 2099), st.integers(13, 99)),
        st.text(alphabet="abcxyz-/: ", max_size=12),
    ),
    "AUDTTIME": st.integers(min_value=24000000, max_value=2**70),
    "DESC": st.binary(min_size=1, max_size=40).map(lambda b: b"\xc3" + b + b"\xff"),  # invalid UTF-8 bytes
}


@FUZZ
@given(
    bad=st.lists(
        st.sampled_from(sorted(HANDLED_BAD_VALUES)).flatmap(lambda f: st.tuples(st.just(f), HANDLED_BAD_VALUES[f])),
        min_size=1,
        max_size=3,
    )
)
def test_a_row_the_mapping_rejects_raises_a_clear_error(bad: list[tuple[str, Any]]) -> None:
    row = good_row("BAD", **dict(bad))
    with pytest.raises((MappingError, ValueError)) as raised:
        to_inventory_level(row, LOCATIONS)
    assert str(raised.value)


@FUZZ
@given(
    on_hand=st.decimals(min_value=0, max_value=STOREFRONT_MAX_QUANTITY - 1, places=4),
    committed=st.integers(min_value=0, max_value=2**49),
    description=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=2000),
    stamp=st.datetimes(min_value=NAIVE_START, max_value=NAIVE_NOW),
)
def test_any_well_formed_row_maps_to_a_record_the_storefront_can_store(
    on_hand: Decimal, committed: int, description: str, stamp: datetime
) -> None:
    date, time = int(stamp.strftime("%Y%m%d")), int(stamp.strftime("%H%M%S")) * 100 + stamp.microsecond // 10_000
    row = good_row("X" * 24, QTYONHAND=on_hand, QTYCOMMIT=committed, DESC=description, AUDTDATE=date, AUDTTIME=time)
    level = to_inventory_level(row, LOCATIONS)
    assert level.available == max(level.on_hand - level.reserved, Decimal(0))
    assert PostgresLikeTarget().upsert_inventory([level]) == {level.key}


# Columns that do not move the key; DESC's bytes make a dead letter that cannot be serialized (below).
ROW_VALUES = sorted(set(HANDLED_BAD_VALUES) - {"ITEMNO", "LOCATION", "DESC"})


@FUZZ
@given(
    bad=st.lists(
        st.sampled_from(ROW_VALUES).flatmap(lambda f: st.tuples(st.just(f), HANDLED_BAD_VALUES[f])),
        min_size=1,
        max_size=4,
    )
)
def test_a_batch_with_malformed_rows_parks_them_and_syncs_the_rest(bad: list[tuple[str, Any]]) -> None:
    assert_poison_is_parked([good_row(f"BAD{i}", **{column: value}) for i, (column, value) in enumerate(bad)])


def test_unknown_skus_are_counted_not_synced_and_do_not_fail_the_batch() -> None:
    target, dlq = PostgresLikeTarget(), ListDeadLetters()
    result = sync_inventory_batch(
        [("m1", notices_event("NOSUCHSKU|1", "GOOD|1"))],
        pair=PAIR,
        source=RowsSource([good_row()]),
        state=MemoryState(),
        target=target,
        dead_letters=dlq,
        clock=lambda: NOW,
    )
    assert (result.not_in_source, result.failed_messages, sorted(target.rows)) == (1, set(), ["GOOD|main"])


def test_negative_quantities_are_parked_with_the_column_and_value() -> None:
    _, target, dlq = run_batch([good_row("NEG", QTYONORDER=Decimal("-0.0001")), good_row()])
    assert sorted(target.rows) == ["GOOD|main"]
    (letter,) = dlq.letters
    assert isinstance(letter, DeadLetter)
    assert letter.reason == "negative quantity: QTYONORDER = -0.0001"


def test_quantities_beyond_float_precision_stay_exact() -> None:
    largest = Decimal("999999999999999.9999")  # decimal(19, 4)'s largest: 19 digits, beyond 2^53
    level = to_inventory_level(good_row(QTYONHAND=largest, QTYCOMMIT=0), LOCATIONS)
    assert level.on_hand == largest and float(largest) != largest
    assert json.loads(level.model_dump_json())["on_hand"] == "999999999999999.9999"


# -- crashes today (the worker only catches MappingError and ValueError) ----------------------------------
CRASHING_ROWS = {
    "quantity NaN (PostgreSQL numeric holds it)": {"QTYONHAND": Decimal("NaN")},
    "quantity Infinity": {"QTYCOMMIT": Decimal("Infinity")},
    "quantity not a number": {"QTYONORDER": "12,5"},
    "quantity beyond Decimal's 28 digits": {"QTYONHAND": Decimal(10) ** 30},
    "quantity as bytes": {"QTYONHAND": b"12"},
    "NULL audit stamp": {"AUDTDATE": None},
    "audit date beyond 2^53 (OverflowError in datetime)": {"AUDTDATE": 2**53 + 1},
    "NULL item stamp": {"ITEM_AUDTTIME": None},
}


@pytest.mark.parametrize("changes", CRASHING_ROWS.values(), ids=CRASHING_ROWS.keys())
def test_non_numeric_quantities_and_null_stamps_are_parked_not_a_crashed_batch(changes: dict[str, Any]) -> None:
    assert_poison_is_parked([good_row("POISON", **changes)])


UNSTORABLE_ROWS = {
    "NUL in DESC (SQL Server text can hold it)": {"DESC": "Bolt\x00M8"},
    "NUL in ITEMNO": {"ITEMNO": "POI\x00SON"},
    "quantity beyond the storefront's numeric(19, 4)": {"QTYONHAND": Decimal(10) ** 15},
    "invalid UTF-8 bytes in DESC (the dead letter cannot be serialized)": {"DESC": b"Bolt \xff"},
}


@pytest.mark.parametrize("changes", UNSTORABLE_ROWS.values(), ids=UNSTORABLE_ROWS.keys())
def test_text_or_quantities_the_storefront_cannot_store_are_parked_not_a_failed_batch(changes: dict[str, Any]) -> None:
    assert_poison_is_parked([good_row("POISON", **changes)])


def test_a_row_stamped_in_the_future_is_parked_not_synced() -> None:
    _, target, dlq = run_batch([good_row("AHEAD", AUDTDATE=20991231), good_row()])
    assert sorted(target.rows) == ["GOOD|main"]
    assert [letter.notice.key for letter in dlq.letters if isinstance(letter, DeadLetter)] == ["AHEAD|1"]
