"""ERP file import: stock counts from a CSV or Excel export, validated whole, then written like a sync.

Some systems can only export files. ``syncline import FILE --mapping M`` reads such a file, maps its
columns with a small mapping file (TOML or JSON, :class:`ImportMapping`), resolves barcodes to SKUs
(the identity map), checks every SKU against the item master and every location against the pair,
and only then writes. Validation is all or nothing: one invalid row (unknown SKU or barcode,
negative or non-numeric quantity, unmapped location, a key listed twice) and nothing is applied;
every invalid row is reported with its line number (the spreadsheet's row number for Excel).

What a row sets: ``on_hand`` of SKU at location. The other fields stay what the target holds
(reserved, on order, description, unit, active); ``available`` is recomputed as on hand less
reserved, floored at zero, the sync's rule. A row for a key the target does not have yet is created
with nothing reserved or on order.

Modes:

- ``partial`` (default): only the rows present in the file are written.
- ``full``: the file is the whole truth *for the locations it mentions*: a target row at one of
  those locations whose SKU the file does not list is set to zero on hand (and zero available);
  it is not deleted, since the item still exists. Locations the file does not mention are untouched.

Writes go through the normal write path: the file's rows carry one source version, derived from the
export time (``as_of``), the target's version guard refuses them where it already holds newer data
(reported as ``target_ahead``, never overwritten), and the state cache is committed with the content
hash so the worker's echo check and a re-run see the import as known. Re-running the same file
changes nothing. This module imports nothing from AWS: the catalogue, target and state are ports.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from syncline.config import ConfigError
from syncline.erp.sage300 import INVENTORY_FIELDS
from syncline.models import InventoryLevel
from syncline.ports import KnownState
from syncline.stamps import stamp_of, version_of
from syncline.sync import PairContext, write_levels

Mode = Literal["full", "partial"]
_SCALE = Decimal("0.0001")
_MAX_QUANTITY = Decimal(10) ** 15  # numeric(19, 4)
_ZERO = Decimal(0)
_FIELD = {name: i for i, name in enumerate(INVENTORY_FIELDS)}


class ImportColumns(BaseModel):
    """Which column holds what: a header text, or a 1-based column number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str | int | None = None
    barcode: str | int | None = None
    location: str | int | None = None
    quantity: str | int

    @model_validator(mode="after")
    def _identified(self) -> ImportColumns:
        if self.sku is None and self.barcode is None:
            raise ValueError("map a sku column, a barcode column, or both")
        return self


class ImportMapping(BaseModel):
    """The mapping file: how to read one system's export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: ImportColumns
    pair: str | None = Field(None, description="the sync pair whose target the file updates (default: the only one)")
    header_row: int = Field(1, ge=1, description="line (CSV) or row (Excel) of the column headers")
    sheet: str | None = Field(None, description="Excel sheet name (default: the first sheet)")
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal["", ".", ",", " ", "'"] = ""
    locations: dict[str, str] = Field(
        default_factory=dict, description="file location -> source (ERP) location code; empty: the file holds ERP codes"
    )
    default_location: str | None = Field(None, description="source location of every row when no column is mapped")
    barcode_entity: str = "variant"
    barcode_system: str = "barcode"

    @model_validator(mode="after")
    def _consistent(self) -> ImportMapping:
        if self.columns.location is None and self.default_location is None:
            raise ValueError("map a location column or set default_location")
        if self.thousands_separator == self.decimal_separator:
            raise ValueError("thousands_separator and decimal_separator must differ")
        return self


def load_mapping(path: str | Path) -> ImportMapping:
    """Read a TOML or JSON mapping file; ``ConfigError`` names the file and the field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the mapping file: {exc.strerror}") from None
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return ImportMapping.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


# -- reading ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileRow:
    """One data row: its line (CSV) or row number (Excel), and the mapped fields as text."""

    line: int
    sku: str | None
    barcode: str | None
    location: str | None
    quantity: Any  # str from CSV; int, float, str or None from Excel


class FileFormatError(ValueError):
    """The file cannot be read with this mapping (no such column, sheet or header row)."""


def read_rows(path: str | Path, mapping: ImportMapping) -> Iterator[FileRow]:
    """The data rows of a ``.csv`` or ``.xlsx`` file below its header row; blank rows are skipped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        rows = _excel_rows(path, mapping.sheet)
    elif suffix in {".csv", ".txt", ".tsv"}:
        rows = _csv_rows(path, mapping)
    else:
        raise FileFormatError(f"{path.name}: only .csv and .xlsx files are read (got {suffix or 'no extension'})")
    header: list[str] | None = None
    positions: dict[str, int | None] = {}
    for number, values in rows:
        if number < mapping.header_row:
            continue
        if header is None:
            header = [_cell_text(value) or "" for value in values]
            positions = _positions(header, mapping.columns, path.name, number)
            continue
        if all(_cell_text(value) is None for value in values):
            continue
        yield FileRow(
            number,
            _text_at(values, positions["sku"]),
            _text_at(values, positions["barcode"]),
            _text_at(values, positions["location"]),
            _at(values, positions["quantity"]),
        )
    if header is None:
        raise FileFormatError(f"{path.name}: no header row at line {mapping.header_row}")


def _csv_rows(path: Path, mapping: ImportMapping) -> Iterator[tuple[int, list[Any]]]:
    with path.open(newline="", encoding=mapping.encoding) as handle:
        reader = csv.reader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else mapping.delimiter)
        for values in reader:
            yield reader.line_num, list(values)


def _excel_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Any]]]:
    try:
        import openpyxl  # type: ignore[import-untyped]  # noqa: PLC0415 - CLI-side dependency, Excel only
    except ImportError:
        raise FileFormatError(
            "reading .xlsx needs openpyxl (pip install openpyxl; it is in requirements-dev.txt)"
        ) from None
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise FileFormatError(f"{path.name}: no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}")
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            yield number, list(values)
    finally:
        workbook.close()


def _positions(header: list[str], columns: ImportColumns, name: str, line: int) -> dict[str, int | None]:
    positions: dict[str, int | None] = {}
    folded = [text.strip().casefold() for text in header]
    for field_name in ("sku", "barcode", "location", "quantity"):
        wanted = getattr(columns, field_name)
        if wanted is None:
            positions[field_name] = None
        elif isinstance(wanted, int):
            positions[field_name] = wanted - 1
        elif wanted.strip().casefold() in folded:
            positions[field_name] = folded.index(wanted.strip().casefold())
        else:
            raise FileFormatError(
                f"{name}: no column {wanted!r} ({field_name}) in the header at line {line}; "
                f"columns: {', '.join(repr(h) for h in header)}"
            )
    return positions


def _at(values: Sequence[Any], position: int | None) -> Any:
    return values[position] if position is not None and position < len(values) else None


def _text_at(values: Sequence[Any], position: int | None) -> str | None:
    return _cell_text(_at(values, position))


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores a numeric barcode or SKU as a float
    text = str(value).strip()
    return text or None


def parse_quantity(value: Any, mapping: ImportMapping) -> Decimal:
    """A non-negative quantity at the ERP's four decimals, or ``ValueError`` saying why not."""
    if isinstance(value, bool):
        raise ValueError(f"quantity {value!r} is not a number")
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
    else:
        text = (value or "").strip().replace("\u00a0", " ")
        if not text:
            raise ValueError("quantity is empty")
        if mapping.thousands_separator:
            text = text.replace(mapping.thousands_separator, "")
        if mapping.decimal_separator == ",":
            if "." in text:
                raise ValueError(f"quantity {value!r} is not a number with ',' as decimal separator")
            text = text.replace(",", ".")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"quantity {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"quantity {value!r} is not a number")
    if number < 0:
        raise ValueError(f"negative quantity: {value}")
    if number >= _MAX_QUANTITY:
        raise ValueError(f"quantity {value} is too large")
    return number.quantize(_SCALE)


# -- ports --------------------------------------------------------------------------------------------
class ItemCatalog(Protocol):
    def known_skus(self, skus: Iterable[str]) -> set[str]:
        """The subset of ``skus`` the item master has."""

    def sku_of_barcode(self, barcode: str) -> str | None: ...


class ImportTarget(Protocol):
    def iter_rows(self, page_size: int = ...) -> Iterator[list[tuple[Any, ...]]]:
        """Every row, ``INVENTORY_FIELDS`` order, in pages."""

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]: ...


class ImportState(Protocol):
    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]: ...


@dataclass(frozen=True)
class LookupCatalog:
    """An ``ItemCatalog`` from two look-ups: the item master's SKUs and the identity map's barcodes."""

    known: Callable[[Iterable[str]], set[str]]
    barcode: Callable[[str], str | None]

    def known_skus(self, skus: Iterable[str]) -> set[str]:
        return self.known(skus)

    def sku_of_barcode(self, barcode: str) -> str | None:
        return self.barcode(barcode)


# -- planning -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvalidRow:
    line: int
    reason: str


@dataclass
class ImportPlan:
    """What an import would do; ``apply`` does it. ``invalid`` non-empty means nothing may be applied."""

    pair: str
    mode: Mode
    source_version: int
    rows: int = 0
    locations: list[str] = field(default_factory=list)  # target locations the file covers
    writes: list[InventoryLevel] = field(default_factory=list)  # rows of the file that change the target
    zeroes: list[InventoryLevel] = field(default_factory=list)  # full mode: target rows absent from the file
    unchanged: int = 0
    filtered: int = 0  # rows the pair's filters leave out (SKU prefix, location): skipped, like the worker does
    target_ahead: list[str] = field(default_factory=list)  # keys the target holds newer: never overwritten
    invalid: list[InvalidRow] = field(default_factory=list)

    @property
    def changes(self) -> list[InventoryLevel]:
        return [*self.writes, *self.zeroes]

    def as_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "mode": self.mode,
            "source_version": self.source_version,
            "rows": self.rows,
            "locations": self.locations,
            "to_write": len(self.writes),
            "to_zero": len(self.zeroes),
            "unchanged": self.unchanged,
            "filtered": self.filtered,
            "target_ahead": self.target_ahead,
            "invalid": [{"line": r.line, "reason": r.reason} for r in self.invalid],
            "changes": [
                {"key": level.key, "on_hand": str(level.on_hand), "available": str(level.available)}
                for level in self.changes
            ],
        }


@dataclass(frozen=True)
class _Valid:
    line: int
    sku: str
    location: str  # target location
    quantity: Decimal


def plan(
    rows: Iterable[FileRow],
    *,
    mapping: ImportMapping,
    mode: Mode,
    pair: PairContext,
    catalog: ItemCatalog,
    target: ImportTarget,
    as_of: datetime,
    on_progress: Callable[[int], None] | None = None,
) -> ImportPlan:
    """Validate every row, then compare with the target: what to write, zero, leave, and what is invalid."""
    version = version_of(*stamp_of(as_of, pair.tz))
    result = ImportPlan(pair=pair.name, mode=mode, source_version=version)
    parsed = _parse_rows(rows, mapping, pair, result, on_progress)
    # The target locations the file speaks for: full mode zeroes only there.
    result.locations = sorted({location for _, _, (_, location), _ in parsed})
    by_key: dict[tuple[str, str], _Valid] = {}
    for entry in _resolve_skus(parsed, mapping, pair, catalog, result):
        first = by_key.setdefault((entry.sku, entry.location), entry)
        if first is not entry:
            result.invalid.append(
                InvalidRow(entry.line, f"{entry.sku} at {entry.location} is already on line {first.line}")
            )
    result.invalid.sort(key=lambda r: r.line)
    if not result.invalid:
        _diff(result, by_key, target, pair, as_of)
    return result


def _parse_rows(
    rows: Iterable[FileRow],
    mapping: ImportMapping,
    pair: PairContext,
    result: ImportPlan,
    on_progress: Callable[[int], None] | None,
) -> list[tuple[FileRow, str | None, tuple[str, str], Decimal]]:
    """Rows with a mapped location and a valid quantity: (row, SKU or None, (source, target location), quantity)."""
    parsed = []
    for row in rows:
        result.rows += 1
        if on_progress:
            on_progress(1)
        problems: list[str] = []
        location = _target_location(row, mapping, pair, problems)
        quantity = _ZERO
        try:
            quantity = parse_quantity(row.quantity, mapping)
        except ValueError as exc:
            problems.append(str(exc))
        if row.sku is None and row.barcode is None:
            problems.append("no SKU and no barcode")
        if problems or location is None:
            result.invalid.append(InvalidRow(row.line, "; ".join(problems)))
            continue
        parsed.append((row, row.sku, location, quantity))
    return parsed


def _diff(
    result: ImportPlan,
    by_key: Mapping[tuple[str, str], _Valid],
    target: ImportTarget,
    pair: PairContext,
    as_of: datetime,
) -> None:
    covered = set(result.locations)
    current: dict[tuple[str, str], tuple[Any, ...]] = {}
    for page in target.iter_rows():
        for row in page:
            if row[_FIELD["location"]] in covered:
                current[(row[0], row[1])] = row
    version = result.source_version
    for key, entry in sorted(by_key.items()):
        level = _level(entry.sku, entry.location, entry.quantity, current.get(key), version, as_of)
        _compare(result, level, current.get(key), result.writes)
    if result.mode == "full":
        # Rows outside the pair's filters are not the pair's to zero (nor were they listed, if filtered).
        source_of = {target_location: source for source, target_location in pair.locations.items()}
        for key, row in sorted(current.items()):
            source = source_of.get(key[1])
            if key not in by_key and source is not None and pair.accepts(key[0], source):
                _compare(result, _level(key[0], key[1], _ZERO, row, version, as_of), row, result.zeroes)


def _target_location(
    row: FileRow, mapping: ImportMapping, pair: PairContext, problems: list[str]
) -> tuple[str, str] | None:
    """(source location, target location) of a row, or None with the problem added."""
    given = row.location if mapping.columns.location is not None else mapping.default_location
    if given is None:
        problems.append("no location")
        return None
    if mapping.locations and given not in mapping.locations:
        problems.append(f"location {given!r} is not in the mapping file's locations")
        return None
    source_location = mapping.locations.get(given, given)
    location = pair.locations.get(source_location)
    if location is None:
        problems.append(f"location {source_location!r} is not mapped for pair {pair.name}")
        return None
    return source_location, location


def _resolve_skus(
    parsed: list[tuple[FileRow, str | None, tuple[str, str], Decimal]],
    mapping: ImportMapping,
    pair: PairContext,
    catalog: ItemCatalog,
    result: ImportPlan,
) -> list[_Valid]:
    """SKU as given, else by barcode through the identity map; either must be in the item master."""
    by_barcode: dict[str, str | None] = {}
    for row, sku, _, _ in parsed:
        if sku is None and row.barcode is not None and row.barcode not in by_barcode:
            by_barcode[row.barcode] = catalog.sku_of_barcode(row.barcode)
    wanted = {sku or by_barcode.get(row.barcode or "") for row, sku, _, _ in parsed} - {None}
    known = catalog.known_skus(sorted(s for s in wanted if s is not None))
    valid = []
    for row, given, (source_location, location), quantity in parsed:
        sku = given or by_barcode.get(row.barcode or "")
        if sku is None:
            result.invalid.append(
                InvalidRow(
                    row.line,
                    f"barcode {row.barcode!r} is not in the identity map "
                    f"(`syncline map set {mapping.barcode_entity} SKU {mapping.barcode_system} {row.barcode}`)",
                )
            )
            continue
        if sku not in known:
            how = f" (barcode {row.barcode!r})" if row.sku is None else ""
            result.invalid.append(InvalidRow(row.line, f"unknown SKU {sku!r}{how}: not in the item master"))
            continue
        if not pair.accepts(sku, source_location):
            result.filtered += 1
            continue
        valid.append(_Valid(row.line, sku, location, quantity))
    return valid


def _level(
    sku: str, location: str, quantity: Decimal, current: tuple[Any, ...] | None, version: int, updated_at: datetime
) -> InventoryLevel:
    """The file's on-hand over what the target holds; available recomputed by the sync's rule."""
    reserved = Decimal(current[_FIELD["reserved"]]) if current else _ZERO
    return InventoryLevel(
        sku=sku,
        location=location,
        on_hand=quantity,
        reserved=reserved,
        available=quantity - reserved if quantity > reserved else _ZERO,
        on_order=Decimal(current[_FIELD["on_order"]]) if current else _ZERO,
        description=current[_FIELD["description"]] if current else None,
        unit=current[_FIELD["unit"]] if current else None,
        active=bool(current[_FIELD["active"]]) if current else True,
        source_version=version,
        source_updated_at=updated_at,
    )


def _compare(
    result: ImportPlan, level: InventoryLevel, current: tuple[Any, ...] | None, bucket: list[InventoryLevel]
) -> None:
    if current is not None and (
        Decimal(current[_FIELD["on_hand"]]) == level.on_hand
        and Decimal(current[_FIELD["available"]]) == level.available
    ):
        result.unchanged += 1
    elif current is not None and int(current[_FIELD["source_version"]]) > level.source_version:
        result.target_ahead.append(level.key)
    else:
        bucket.append(level)


# -- applying -----------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    written: int = 0
    zeroed: int = 0
    refused: list[str] = field(default_factory=list)  # the guard refused: a newer version landed meanwhile

    def as_dict(self) -> dict[str, Any]:
        return {"written": self.written, "zeroed": self.zeroed, "refused": self.refused}


class InvalidImport(ValueError):
    """``apply`` was given a plan with invalid rows: nothing is applied."""


def apply(
    import_plan: ImportPlan,
    *,
    target: ImportTarget,
    state: ImportState,
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Write the plan's changes in batches with the version guard and commit the state cache like the worker."""
    if import_plan.invalid:
        raise InvalidImport(f"{len(import_plan.invalid)} invalid row(s): nothing applied")
    result = ImportResult()
    zero_keys = {level.key for level in import_plan.zeroes}
    changes = import_plan.changes
    for start in range(0, len(changes), batch_size):
        batch = changes[start : start + batch_size]
        accepted = write_levels(batch, target=target, state=state, pair=import_plan.pair)
        result.zeroed += sum(1 for key in accepted if key in zero_keys)
        result.written += sum(1 for key in accepted if key not in zero_keys)
        result.refused.extend(sorted(lv.key for lv in batch if lv.key not in accepted))
        if on_progress:
            on_progress(len(batch))
    return result
