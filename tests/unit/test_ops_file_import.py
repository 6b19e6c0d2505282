"""The file-import engine over in-memory ports, reading real CSV and XLSX files written by the test."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from syncline.config import ConfigError
from syncline.erp.sage300 import INVENTORY_FIELDS
from syncline.models import InventoryLevel
from syncline.ops.file_import import (
    FileFormatError,
    ImportMapping,
    InvalidImport,
    LookupCatalog,
    apply,
    load_mapping,
    parse_quantity,
    plan,
    read_rows,
)
from syncline.ports import KnownState
from syncline.stamps import stamp_of, version_of
from syncline.sync import PairContext

PAIR = PairContext("p", "sage300", {"1": "main", "2": "east"})
AS_OF = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FILE_VERSION = version_of(*stamp_of(AS_OF))
OLD = datetime(2026, 11, 20, tzinfo=UTC)
OLD_VERSION = version_of(*stamp_of(OLD))


class MemoryTarget:
    """The storefront's guarded upsert in memory: a row is replaced only by an equal or newer version."""

    def __init__(self, levels: Iterable[InventoryLevel] = ()) -> None:
        self.rows = {level.key: level for level in levels}
        self.upserts = 0

    def iter_rows(self, page_size: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        rows = [tuple(getattr(level, name) for name in INVENTORY_FIELDS) for level in self.rows.values()]
        for start in range(0, len(rows), page_size):
            yield rows[start : start + page_size]

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        accepted = set()
        for level in levels:
            self.upserts += 1
            current = self.rows.get(level.key)
            if current is None or current.source_version <= level.source_version:
                self.rows[level.key] = level
                accepted.add(level.key)
        return accepted


class MemoryState:
    def __init__(self) -> None:
        self.states: dict[str, KnownState] = {}

    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]:
        self.states.update(states)
        return set(states)


CATALOG = LookupCatalog(
    known=lambda skus: set(skus) & {"A-1", "A-2", "A-3", "B-9"},
    barcode={"4006381333931": "A-3", "999": "NOT-IN-MASTER"}.get,
)


def _level(sku: str, location: str, on_hand: int, *, reserved: int = 0, version: int = OLD_VERSION) -> InventoryLevel:
    return InventoryLevel(
        sku=sku,
        location=location,
        on_hand=Decimal(on_hand),
        reserved=Decimal(reserved),
        available=Decimal(max(on_hand - reserved, 0)),
        on_order=Decimal(2),
        description=f"Item {sku}",
        unit="EA",
        active=True,
        source_version=version,
        source_updated_at=OLD,
    )


def _mapping(**overrides: Any) -> ImportMapping:
    document: dict[str, Any] = {"columns": {"sku": "Item", "barcode": "EAN", "location": "Whse", "quantity": "Qty"}}
    document.update(overrides)
    return ImportMapping.model_validate(document)


def _csv(tmp_path: Path, text: str, name: str = "counts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _plan(path: Path, mapping: ImportMapping, target: MemoryTarget, mode: str = "partial") -> Any:
    return plan(
        read_rows(path, mapping),
        mapping=mapping,
        mode=mode,  # type: ignore[arg-type]
        pair=PAIR,
        catalog=CATALOG,
        target=target,
        as_of=AS_OF,
    )


def test_partial_import_sets_on_hand_keeps_the_rest_and_commits_state(tmp_path: Path) -> None:
    # Given a target with two rows, one with stock reserved
    target = MemoryTarget([_level("A-1", "main", 10, reserved=4), _level("A-2", "main", 5)])
    path = _csv(tmp_path, "Item,EAN,Whse,Qty\nA-1,,1,3\nA-2,,1,5\n,4006381333931,2,7\n")
    # When the file is planned and applied
    planned = _plan(path, _mapping(), target)
    state = MemoryState()
    result = apply(planned, target=target, state=state)
    # Then the changed row and the barcode row are written, the equal row is left alone
    assert planned.invalid == []
    assert (planned.rows, planned.unchanged, planned.locations) == (3, 1, ["east", "main"])
    assert (result.written, result.zeroed, result.refused) == (2, 0, [])
    a1 = target.rows["A-1|main"]
    assert (a1.on_hand, a1.reserved, a1.available, a1.on_order, a1.description) == (
        Decimal(3),
        Decimal(4),
        Decimal(0),  # on hand below reserved: nothing to sell
        Decimal(2),
        "Item A-1",
    )
    assert a1.source_version == FILE_VERSION
    a3 = target.rows["A-3|east"]
    assert (a3.on_hand, a3.available, a3.reserved, a3.description) == (Decimal(7), Decimal(7), Decimal(0), None)
    assert state.states == {
        k: KnownState(target.rows[k].content_hash(), FILE_VERSION) for k in ("A-1|main", "A-3|east")
    }


def test_rerunning_the_same_file_changes_nothing(tmp_path: Path) -> None:
    target = MemoryTarget([_level("A-1", "main", 10)])
    path = _csv(tmp_path, "Item,EAN,Whse,Qty\nA-1,,1,3\nA-2,,2,4\n")
    apply(_plan(path, _mapping(), target), target=target, state=MemoryState())
    upserts = target.upserts
    again = _plan(path, _mapping(), target)
    assert (again.writes, again.zeroes, again.unchanged) == ([], [], 2)
    apply(again, target=target, state=MemoryState())
    assert target.upserts == upserts


def test_invalid_rows_are_reported_with_line_numbers_and_nothing_is_applied(tmp_path: Path) -> None:
    target = MemoryTarget([_level("A-1", "main", 10)])
    path = _csv(
        tmp_path,
        "Item,EAN,Whse,Qty\n"
        "A-1,,1,3\n"  # 2: valid, but must not be applied with the rest invalid
        "ZZ-404,,1,3\n"  # 3
        ",12345,1,3\n"  # 4
        "A-2,,1,-1\n"  # 5
        "A-2,,1,lots\n"  # 6
        "A-2,,QC,1\n"  # 7
        "\n"  # 8: blank, skipped
        "A-1,,1,4\n"  # 9: duplicate of line 2
        ",999,2,1\n"  # 10: barcode maps to a SKU the item master lacks
        ",,2,1\n",  # 11
    )
    planned = _plan(path, _mapping(), target)
    reasons = {row.line: row.reason for row in planned.invalid}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 9, 10, 11]
    assert "unknown SKU 'ZZ-404'" in reasons[3]
    assert "barcode '12345' is not in the identity map" in reasons[4]
    assert reasons[5] == "negative quantity: -1"
    assert reasons[6] == "quantity 'lots' is not a number"
    assert reasons[7] == "location 'QC' is not mapped for pair p"
    assert reasons[9] == "A-1 at main is already on line 2"
    assert "unknown SKU 'NOT-IN-MASTER' (barcode '999')" in reasons[10]
    assert reasons[11] == "no SKU and no barcode"
    assert planned.changes == []
    with pytest.raises(InvalidImport):
        apply(planned, target=target, state=MemoryState())
    assert target.upserts == 0


def test_full_mode_zeroes_absent_rows_at_the_files_locations_only(tmp_path: Path) -> None:
    target = MemoryTarget([_level("A-1", "main", 10), _level("A-2", "main", 6, reserved=1), _level("B-9", "east", 8)])
    path = _csv(tmp_path, "Item,EAN,Whse,Qty\nA-1,,1,10\n")
    planned = _plan(path, _mapping(), target, mode="full")
    result = apply(planned, target=target, state=MemoryState())
    assert [level.key for level in planned.zeroes] == ["A-2|main"]
    assert (result.written, result.zeroed, planned.unchanged) == (0, 1, 1)
    a2 = target.rows["A-2|main"]
    assert (a2.on_hand, a2.available, a2.reserved) == (Decimal(0), Decimal(0), Decimal(1))
    assert target.rows["B-9|east"].on_hand == Decimal(8)  # east is not in the file: untouched

    partial = _plan(path, _mapping(), MemoryTarget([_level("A-2", "main", 6)]))
    assert partial.zeroes == []


def test_rows_the_target_holds_newer_are_reported_never_overwritten(tmp_path: Path) -> None:
    newer = version_of(*stamp_of(datetime(2026, 11, 23, 13, 0, tzinfo=UTC)))
    target = MemoryTarget([_level("A-1", "main", 10, version=newer), _level("A-2", "main", 1)])
    path = _csv(tmp_path, "Item,EAN,Whse,Qty\nA-1,,1,3\nA-2,,1,3\n")
    planned = _plan(path, _mapping(), target)
    apply(planned, target=target, state=MemoryState())
    assert planned.target_ahead == ["A-1|main"]
    assert target.rows["A-1|main"].on_hand == Decimal(10)
    assert target.rows["A-2|main"].on_hand == Decimal(3)


def test_xlsx_with_a_title_row_numeric_cells_and_a_location_table(tmp_path: Path) -> None:
    # Given an Excel export: a title above the header, numeric SKUs and barcodes, its own location names
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Stock"
    sheet.append(["Stock count 23.11.2026"])
    sheet.append(["Location", "Article", "EAN", "Counted"])
    sheet.append(["Main store", "A-1", None, 12.5])
    sheet.append(["East store", None, 4006381333931, 3])
    sheet.append([None, None, None, None])
    sheet.append(["Back room", "A-2", None, 1])
    path = tmp_path / "stock.xlsx"
    workbook.save(path)
    mapping = ImportMapping.model_validate(
        {
            "header_row": 2,
            "sheet": "Stock",
            "columns": {"sku": "article", "barcode": "EAN", "location": 1, "quantity": "Counted"},
            "locations": {"Main store": "1", "East store": "2", "Back room": "9"},
        }
    )
    planned = _plan(path, mapping, MemoryTarget())
    assert [(row.line, row.reason) for row in planned.invalid] == [(6, "location '9' is not mapped for pair p")]
    path_ok = tmp_path / "ok.xlsx"
    sheet.delete_rows(6)
    workbook.save(path_ok)
    planned = _plan(path_ok, mapping, MemoryTarget())
    assert {(lv.key, lv.on_hand) for lv in planned.writes} == {
        ("A-1|main", Decimal("12.5")),
        ("A-3|east", Decimal(3)),
    }


def test_decimal_comma_and_thousands_separator(tmp_path: Path) -> None:
    mapping = _mapping(delimiter=";", decimal_separator=",", thousands_separator=".")
    assert parse_quantity("1.234,5", mapping) == Decimal("1234.5000")
    assert parse_quantity(" 7 ", mapping) == Decimal(7)
    with pytest.raises(ValueError, match="not a number"):
        parse_quantity("1,2,3", mapping)
    with pytest.raises(ValueError, match="empty"):
        parse_quantity("", mapping)
    path = _csv(tmp_path, "Item;EAN;Whse;Qty\nA-1;;1;1.000,25\n")
    planned = _plan(path, mapping, MemoryTarget())
    assert [lv.on_hand for lv in planned.writes] == [Decimal("1000.25")]


def test_mapping_file_and_format_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('[columns]\nquantity = "Qty"\n')
    with pytest.raises(ConfigError, match=r"m.toml: columns: .*sku column, a barcode column"):
        load_mapping(bad)
    good = tmp_path / "m.json"
    good.write_text('{"columns": {"sku": "Item", "quantity": "Qty"}, "default_location": "1"}')
    mapping = load_mapping(good)
    assert mapping.default_location == "1"
    with pytest.raises(FileFormatError, match="no column 'Qty'"):
        list(read_rows(_csv(tmp_path, "Item,Amount\nA-1,3\n"), mapping))
    with pytest.raises(FileFormatError, match=r"only \.csv and \.xlsx"):
        list(read_rows(_csv(tmp_path, "x", name="counts.ods"), mapping))
    planned = _plan(_csv(tmp_path, "Item,Qty\nA-1,4\n"), mapping, MemoryTarget())
    assert [lv.key for lv in planned.writes] == ["A-1|main"]


def test_rows_outside_the_pairs_filters_are_skipped_and_never_zeroed(tmp_path: Path) -> None:
    only_a = PairContext("p", "sage300", {"1": "main"}, accepts=lambda sku, _location: sku.startswith("A-"))
    target = MemoryTarget([_level("A-1", "main", 1), _level("B-9", "main", 4)])
    mapping = _mapping()
    path = _csv(tmp_path, "Item,EAN,Whse,Qty\nA-2,,1,3\nB-9,,1,8\n")
    planned = plan(
        read_rows(path, mapping), mapping=mapping, mode="full", pair=only_a, catalog=CATALOG, target=target, as_of=AS_OF
    )
    assert planned.filtered == 1
    assert [lv.key for lv in planned.writes] == ["A-2|main"]
    assert [lv.key for lv in planned.zeroes] == ["A-1|main"]  # B-9 is not the pair's to zero
