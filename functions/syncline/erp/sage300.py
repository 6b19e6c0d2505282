"""Sage 300 Inventory Control, read-only: change detection over ICILOC/ICITEM/ICPRICP and fetch-on-notify.

Tables (see shared/fixtures/sage300): ICITEM is the item master (ITEMNO, "DESC", STOCKUNIT, INACTIVE),
ICILOC holds quantities per item and location (QTYONHAND, QTYCOMMIT, QTYSALORDR, QTYONORDER), ICPRICP the
price list item pricing (CURRENCY, ITEMNO, PRICELIST, DPRICETYPE, QTYUNIT, WEIGHTUNIT -> UNITPRICE). All
carry AUDTDATE/AUDTTIME audit stamps. Key columns are fixed-width CHAR, so values are stripped on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, Protocol

from syncline.canonical.entities import Price
from syncline.erp.sql import first_rows, in_list, keyset_after, keyset_params
from syncline.models import ALL_LOCATIONS, InventoryLevel, inventory_key
from syncline.stamps import StampError, parse_stamp, version_of

# SQL Server allows 2,100 parameters per statement; stay well below it.
MAX_IN_LIST = 1000
_SCALE = Decimal("0.0001")
_ZERO = Decimal(0)
_TIME_SCALE = 10**8
# Sage 300 and the storefront hold quantities as decimal(19, 4): below 10^15.
_MAX_QUANTITY = Decimal(10) ** 15
# ICPRICP.UNITPRICE is BCD*10.6: 19 digits, 6 of them decimals, so below 10^13 (the storefront's numeric(19, 6)).
_PRICE_SCALE = Decimal("0.000001")
_MAX_PRICE = Decimal(10) ** 13


class Cursor(Protocol):
    def execute(self, query: Any, params: Sequence[Any] | None = ..., /) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ..., /) -> list[Any]: ...
    def close(self) -> None: ...


class Connection(Protocol):
    """The DB-API subset Syncline uses; pymssql and psycopg connections both satisfy it."""

    def cursor(self) -> Any: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ChangeStream:
    """A table whose rows are detected as changed by their audit stamp, in keyset order."""

    name: str
    table: str
    key_columns: tuple[str, ...]
    entity: str = "inventory_level"
    item_column: int = 0  # where ITEMNO sits in key_columns

    def notice_key(self, key: tuple[str, ...]) -> str:
        """The key of a notice about a changed row: ``ITEM|LOCATION`` for stock (``*``: every location), the
        item number for a price (the worker fetches that item's prices for its pair's list and currency)."""
        if self.entity == "price":
            return key[self.item_column]
        return inventory_key(key[0], key[1] if len(key) > 1 else ALL_LOCATIONS)

    @property
    def order_columns(self) -> tuple[str, ...]:
        return ("AUDTDATE", "AUDTTIME", *self.key_columns)

    def scan_from_stamp_sql(self) -> str:
        """Rows stamped at or after (AUDTDATE, AUDTTIME), first page."""
        columns = ", ".join(self.order_columns)
        return (
            f"SELECT {columns} FROM {self.table} "
            "WHERE (AUDTDATE > %s OR (AUDTDATE = %s AND AUDTTIME >= %s)) "
            f"{first_rows(self.order_columns)}"
        )

    def scan_after_sql(self) -> str:
        """Rows strictly after a keyset position, next page."""
        columns = ", ".join(self.order_columns)
        return f"SELECT {columns} FROM {self.table} WHERE {keyset_after(self.order_columns)} {first_rows(self.order_columns)}"


ICILOC_STREAM = ChangeStream("ICILOC", "ICILOC", ("ITEMNO", "LOCATION"))
ICITEM_STREAM = ChangeStream("ICITEM", "ICITEM", ("ITEMNO",))
# ICPRICP's primary key, as Sage declares it (its "Currency Code" key).
ICPRICP_STREAM = ChangeStream(
    "ICPRICP",
    "ICPRICP",
    ("CURRENCY", "ITEMNO", "PRICELIST", "DPRICETYPE", "QTYUNIT", "WEIGHTUNIT"),
    entity="price",
    item_column=1,
)
STREAMS: Mapping[str, ChangeStream] = {s.name: s for s in (ICILOC_STREAM, ICITEM_STREAM, ICPRICP_STREAM)}


def streams_for(entities: Iterable[str]) -> tuple[ChangeStream, ...]:
    """The change streams a poller reads for the entities its pairs sync (stock when nothing else is asked)."""
    wanted = set(entities)
    streams = [*((ICILOC_STREAM, ICITEM_STREAM) if "inventory_level" in wanted else ())]
    if "price" in wanted:
        streams.append(ICPRICP_STREAM)
    return tuple(streams) or (ICILOC_STREAM, ICITEM_STREAM)


# Fixed-width CHAR keys and texts are trimmed by the server (RTRIM is ANSI enough for both engines).
FETCH_COLUMNS = (
    "RTRIM(l.ITEMNO)",
    "RTRIM(l.LOCATION)",
    "l.QTYONHAND",
    "l.QTYCOMMIT",
    "l.QTYSALORDR",
    "l.QTYONORDER",
    "CAST(l.AUDTDATE AS INT)",  # numeric(9,0) -> int: half the client-side decoding cost
    "CAST(l.AUDTTIME AS INT)",
    'RTRIM(i."DESC")',
    "RTRIM(i.STOCKUNIT)",
    "i.INACTIVE",
    "CAST(i.AUDTDATE AS INT)",
    "CAST(i.AUDTTIME AS INT)",
)
FETCH_FIELDS = (
    "ITEMNO",
    "LOCATION",
    "QTYONHAND",
    "QTYCOMMIT",
    "QTYSALORDR",
    "QTYONORDER",
    "AUDTDATE",
    "AUDTTIME",
    "DESC",
    "STOCKUNIT",
    "INACTIVE",
    "ITEM_AUDTDATE",
    "ITEM_AUDTTIME",
)
_FETCH_FROM = "FROM ICILOC l JOIN ICITEM i ON i.ITEMNO = l.ITEMNO"


def fetch_by_items_sql(count: int) -> str:
    return f"SELECT {', '.join(FETCH_COLUMNS)} {_FETCH_FROM} WHERE {in_list('l.ITEMNO', count)}"


def bulk_page_sql(first: bool) -> str:
    """Keyset page over every ICILOC row (the bulk/backfill path), ordered by item and location.

    After the first page, ``i.ITEMNO >= ?`` repeats the keyset's leading bound on the joined item master
    (parameters: :func:`bulk_page_params`). The join's equality does not carry an inequality across, so
    without it the merge join read ICITEM from its first item for every page: quadratic, most of a
    backfill's time (85,000 ICITEM index entries read for a page of 5,000 half-way through 500,000 rows).
    """
    where = "" if first else f"WHERE i.ITEMNO >= %s AND {keyset_after(('l.ITEMNO', 'l.LOCATION'))} "
    return f"SELECT {', '.join(FETCH_COLUMNS)} {_FETCH_FROM} {where}{first_rows(('l.ITEMNO', 'l.LOCATION'))}"


def bulk_page_params(after: tuple[str, str] | None, page_size: int) -> list[object]:
    """Parameters of :func:`bulk_page_sql` for the page after ``after`` (None: the first page)."""
    return [page_size] if after is None else [after[0], *keyset_params(after), page_size]


# ICPRICP.DPRICETYPE 1, "Base Price Quantity": the list price per quantity unit (2 is the sale price, 3-6
# weight- and cost-based prices).
BASE_PRICE_QUANTITY = 1
PRICE_COLUMNS = (
    "RTRIM(p.ITEMNO)",
    "RTRIM(p.CURRENCY)",
    "RTRIM(p.PRICELIST)",
    "RTRIM(p.QTYUNIT)",
    "p.UNITPRICE",
    "CAST(p.AUDTDATE AS INT)",
    "CAST(p.AUDTTIME AS INT)",
    "RTRIM(i.STOCKUNIT)",
)
PRICE_FIELDS = ("ITEMNO", "CURRENCY", "PRICELIST", "QTYUNIT", "UNITPRICE", "AUDTDATE", "AUDTTIME", "STOCKUNIT")


def fetch_prices_sql(lists: int, items: int) -> str:
    """ICPRICP rows of some items on some lists; LEFT JOIN so a price of an item missing from ICITEM is seen."""
    return (
        f"SELECT {', '.join(PRICE_COLUMNS)} FROM ICPRICP p LEFT JOIN ICITEM i ON i.ITEMNO = p.ITEMNO "
        f"WHERE p.CURRENCY = %s AND p.DPRICETYPE = %s AND {in_list('p.PRICELIST', lists)} "
        f"AND {in_list('p.ITEMNO', items)}"
    )


def priced_items_page_sql(lists: int, first: bool) -> str:
    """Keyset page of the items with a base price on some lists in one currency (reconcile's full read)."""
    after = "" if first else f"AND {keyset_after(('p.ITEMNO',))} "
    return (
        f"SELECT p.ITEMNO FROM ICPRICP p WHERE p.CURRENCY = %s AND p.DPRICETYPE = %s "
        f"AND {in_list('p.PRICELIST', lists)} {after}GROUP BY p.ITEMNO {first_rows(('p.ITEMNO',))}"
    )


@dataclass(frozen=True)
class StampedKey:
    """One row seen by a change scan: its keyset position and its key values."""

    audit_date: int
    audit_time: int
    key: tuple[str, ...]

    @property
    def version(self) -> int:
        return version_of(self.audit_date, self.audit_time)

    @property
    def position(self) -> tuple[object, ...]:
        return (self.audit_date, self.audit_time, *self.key)


class Sage300Reader:
    """Reads Sage 300 IC tables through any DB-API connection (pymssql in production, psycopg in tests)."""

    def __init__(self, connection: Callable[[], Connection]) -> None:
        # A provider, not a connection: opening it is part of the read, so a down ERP is a read failure.
        self._connection = connection

    def scan_changes(
        self,
        stream: ChangeStream,
        *,
        from_stamp: tuple[int, int] | None,
        after: tuple[object, ...] | None,
        page_size: int,
    ) -> list[StampedKey]:
        """One page of changed rows: after a keyset position if given, else from a stamp (inclusive)."""
        if after is not None:
            sql, params = stream.scan_after_sql(), [*keyset_params(after), page_size]
        else:
            audit_date, audit_time = from_stamp or (0, 0)
            sql, params = stream.scan_from_stamp_sql(), [audit_date, audit_date, audit_time, page_size]
        rows = self._query(sql, params)
        return [StampedKey(int(row[0]), int(row[1]), tuple(str(value).rstrip() for value in row[2:])) for row in rows]

    def fetch_items(self, items: Iterable[str]) -> list[dict[str, Any]]:
        """Current ICILOC+ICITEM rows of every location of ``items``: one query per 1,000 items."""
        wanted = sorted(set(items))
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), MAX_IN_LIST):
            chunk = wanted[start : start + MAX_IN_LIST]
            rows.extend(_as_record(row) for row in self._query(fetch_by_items_sql(len(chunk)), chunk))
        return rows

    def known_items(self, items: Iterable[str]) -> set[str]:
        """The subset of ``items`` the item master (ICITEM) has: one query per 1,000 items."""
        wanted = sorted(set(items))
        known: set[str] = set()
        for start in range(0, len(wanted), MAX_IN_LIST):
            chunk = wanted[start : start + MAX_IN_LIST]
            sql = f"SELECT RTRIM(ITEMNO) FROM ICITEM WHERE {in_list('ITEMNO', len(chunk))}"
            known.update(str(row[0]) for row in self._query(sql, chunk))
        return known

    def iter_all(self, page_size: int = 5000, after: tuple[str, str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every ICILOC row in keyset pages (item, location), for reconcile; resumable ``after`` a key."""
        for page in self.iter_rows(page_size, after):
            yield [_as_record(row) for row in page]

    def iter_rows(self, page_size: int = 5000, after: tuple[str, str] | None = None) -> Iterator[list[Sequence[Any]]]:
        """:meth:`iter_all` as the query returns it, tuples in ``FETCH_FIELDS`` order (the backfill's bulk path:
        no record per row); resumable ``after`` a key."""
        while True:
            page = self._query(bulk_page_sql(after is None), bulk_page_params(after, page_size))
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            after = bulk_key(page[-1])

    def fetch_prices(self, items: Iterable[str], *, currency: str, price_lists: Sequence[str]) -> list[dict[str, Any]]:
        """Current base prices (DPRICETYPE 1) of ``items`` in ``currency`` on ``price_lists``, with each item's
        stock unit (None: the item is not in ICITEM): one query per 1,000 items."""
        wanted = sorted(set(items))
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), MAX_IN_LIST):
            chunk = wanted[start : start + MAX_IN_LIST]
            params = [currency, BASE_PRICE_QUANTITY, *price_lists, *chunk]
            sql = fetch_prices_sql(len(price_lists), len(chunk))
            rows.extend(dict(zip(PRICE_FIELDS, row, strict=True)) for row in self._query(sql, params))
        return rows

    def iter_prices(
        self, *, currency: str, price_lists: Sequence[str], page_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every base price in ``currency`` on ``price_lists``, as :meth:`fetch_prices` rows, in pages of at most
        ``page_size`` items (keyset on the item number; an item's rows are never split across pages)."""
        after: object | None = None
        size = min(page_size, MAX_IN_LIST)
        while True:
            head: list[object] = [currency, BASE_PRICE_QUANTITY, *price_lists]
            params = [*head, size] if after is None else [*head, *keyset_params((after,)), size]
            raw = [row[0] for row in self._query(priced_items_page_sql(len(price_lists), after is None), params)]
            if not raw:
                return
            yield self.fetch_prices([str(item).rstrip() for item in raw], currency=currency, price_lists=price_lists)
            if len(raw) < size:
                return
            after = raw[-1]

    def _query(self, sql: str, params: Sequence[object]) -> list[Any]:
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _as_record(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(FETCH_FIELDS, row, strict=True))


class MappingError(ValueError):
    """A fetched ERP row that cannot become a canonical record; permanent, so it goes to the DLQ."""


# Canonical field order of an inventory row: InventoryLevel's fields, the storefront's columns.
INVENTORY_FIELDS = (
    "sku",
    "location",
    "on_hand",
    "reserved",
    "available",
    "on_order",
    "description",
    "unit",
    "active",
    "source_version",
    "source_updated_at",
)


# Positions in a fetched row (``FETCH_FIELDS`` order: what the ERP query returns).
_ITEMNO, _LOCATION, _ONHAND, _COMMIT, _SALORDR, _ONORDER, _DATE, _TIME, _DESC, _UNIT, _INACTIVE, _IDATE, _ITIME = range(
    len(FETCH_FIELDS)
)
_fetched = itemgetter(*FETCH_FIELDS)


def bulk_key(row: Sequence[Any]) -> tuple[str, str]:
    """(ITEMNO, LOCATION) of a fetched row: its keyset position in the bulk read."""
    return str(row[_ITEMNO]), str(row[_LOCATION])


def inventory_row(record: Mapping[str, Any], locations: Mapping[str, str], tz: tzinfo = UTC) -> tuple[Any, ...]:
    """:func:`inventory_values` of a fetched row as a record (field name -> value)."""
    return inventory_values(_fetched(record), locations, tz)


def inventory_values(row: Sequence[Any], locations: Mapping[str, str], tz: tzinfo = UTC) -> tuple[Any, ...]:
    """Map one fetched row (``FETCH_FIELDS`` order) to canonical inventory values (``INVENTORY_FIELDS`` order)
    or raise ``MappingError``.

    ``reserved`` is what Sage has committed to shipments (QTYCOMMIT); ``available`` is on hand less
    reserved, floored at zero, since a store cannot sell oversold stock. The one place these rules
    live: the incremental path validates the result as a model, the bulk path streams it as a row
    (straight from the query's tuples: half a million rows per backfill).
    """
    erp_location = row[_LOCATION]
    target_location = locations.get(erp_location)
    if target_location is None:
        raise MappingError(
            f"location {erp_location!r} is not mapped for this pair; add it to the pair's locations in syncline.toml"
        )
    on_hand = _quantity(row[_ONHAND], "QTYONHAND")
    reserved = _quantity(row[_COMMIT], "QTYCOMMIT")
    on_order = _quantity(row[_ONORDER], "QTYONORDER")
    row_date, row_time = _stamp(row[_DATE], "AUDTDATE"), _stamp(row[_TIME], "AUDTTIME")
    item_date, item_time = _stamp(row[_IDATE], "ITEM_AUDTDATE"), _stamp(row[_ITIME], "ITEM_AUDTTIME")
    try:
        row_moment = _moment(row_date, row_time, tz)
        item_moment = _moment(item_date, item_time, tz)
    except StampError as exc:
        raise MappingError(f"unparsable audit stamp: {exc}") from None
    return (
        _text_value(row[_ITEMNO], "ITEMNO"),
        target_location,
        on_hand,
        reserved,
        on_hand - reserved if on_hand > reserved else _ZERO,
        on_order,
        _text_value(row[_DESC], "DESC") or None,
        _text_value(row[_UNIT], "STOCKUNIT") or None,
        not row[_INACTIVE],
        max(row_date * _TIME_SCALE + row_time, item_date * _TIME_SCALE + item_time),  # = version_of, inlined
        max(row_moment, item_moment),
    )


def to_inventory_level(record: Mapping[str, Any], locations: Mapping[str, str], tz: tzinfo = UTC) -> InventoryLevel:
    """The validated canonical record of one fetched row (see :func:`inventory_row`)."""
    return InventoryLevel(**dict(zip(INVENTORY_FIELDS, inventory_row(record, locations, tz), strict=True)))


@dataclass(frozen=True)
class PriceSelection:
    """Which ICPRICP rows make a pair's price: the base price of ``price_list`` in ``currency`` for the item's
    stock unit, and optionally the base price of ``compare_at_list`` as the struck-through 'compare at' price."""

    price_list: str
    currency: str
    compare_at_list: str | None = None

    @property
    def price_lists(self) -> tuple[str, ...]:
        return (self.price_list,) if self.compare_at_list is None else (self.price_list, self.compare_at_list)


def to_price(rows: Sequence[Mapping[str, Any]], selection: PriceSelection, tz: tzinfo = UTC) -> Price | None:
    """The canonical price of one item from its fetched ICPRICP rows (:meth:`Sage300Reader.fetch_prices`), or
    None when the item has no base price on the pair's list. Raises ``MappingError`` for a row no store can take.

    A compare-at price that is not above the price is dropped: it would strike through nothing. The version is
    the newest audit stamp of the rows used, so a change on either list syncs.
    """
    item = _text_value(rows[0]["ITEMNO"], "ITEMNO")
    stock_unit = rows[0]["STOCKUNIT"]
    if stock_unit is None:
        raise MappingError(f"item {item!r} has prices but is not in the item master (ICITEM)")
    chosen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if str(row["QTYUNIT"]) == str(stock_unit) and str(row["CURRENCY"]) == selection.currency:
            chosen[str(row["PRICELIST"])] = row
    base_row = chosen.get(selection.price_list)
    if base_row is None:
        priced = sorted({f"{row['PRICELIST']}/{row['QTYUNIT']}" for row in rows})
        if any(str(row["PRICELIST"]) == selection.price_list for row in rows):
            raise MappingError(
                f"no {selection.price_list} price for the stock unit {stock_unit!r} (priced: {', '.join(priced)})"
            )
        return None
    compare_row = chosen.get(selection.compare_at_list) if selection.compare_at_list else None
    used = [base_row] if compare_row is None else [base_row, compare_row]
    stamps = [(_stamp(row["AUDTDATE"], "AUDTDATE"), _stamp(row["AUDTTIME"], "AUDTTIME")) for row in used]
    newest = max(stamps)
    try:
        moment = _moment(*newest, tz)
    except StampError as exc:
        raise MappingError(f"unparsable audit stamp: {exc}") from None
    base = _price(base_row)
    compare_at = _price(compare_row) if compare_row is not None else None
    return Price(
        sku=item,
        currency=selection.currency,
        base=base,
        compare_at=compare_at if compare_at is not None and compare_at > base else None,
        price_list=selection.price_list,
        source_version=version_of(*newest),
        updated_at=moment,
    )


def _price(row: Mapping[str, Any]) -> Decimal:
    where = f"UNITPRICE of {row['PRICELIST']}"
    price = _finite_decimal(row["UNITPRICE"], where)
    if price < 0:
        raise MappingError(f"negative price: {where} = {price}")
    if price >= _MAX_PRICE:
        raise MappingError(f"price out of range: {where} = {price} (BCD*10.6 holds less than 10^13)")
    return price.quantize(_PRICE_SCALE)  # one scale (the ERP's six decimals) so 5.5 and 5.500000 hash the same


@lru_cache(maxsize=4096)
def _moment(audit_date: int, audit_time: int, tz: tzinfo) -> datetime:
    # Bulk loads meet the same stamps over and over; parse each once.
    return parse_stamp(audit_date, audit_time, tz).astimezone(UTC)


def _finite_decimal(value: Any, where: str) -> Decimal:
    """The ERP value as a finite Decimal, or a MappingError naming `where`."""
    if value is None:
        raise MappingError(f"{where} is empty")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except (ArithmeticError, TypeError, ValueError):
        raise MappingError(f"{where} is not a number: {value!r:.40}") from None
    if not number.is_finite():
        raise MappingError(f"{where} is not a number: {number}")
    return number


def _quantity(value: Any, field: str) -> Decimal:
    # The common case first, in one test: a finite Decimal in range (what both drivers return for decimal(19, 4)).
    if value.__class__ is Decimal and value.is_finite() and _ZERO <= value < _MAX_QUANTITY:
        return value.quantize(_SCALE)  # one scale (the ERP's four decimals) so 5.0000 and 5 hash the same
    quantity = _finite_decimal(value, field)
    if quantity < 0:
        raise MappingError(f"negative quantity: {field} = {quantity}")
    if quantity >= _MAX_QUANTITY:
        raise MappingError(f"quantity out of range: {field} = {quantity} (decimal(19, 4) holds less than 10^15)")
    return quantity.quantize(_SCALE)


def _stamp(value: Any, field: str) -> int:
    if value.__class__ is int:
        return value
    try:
        return int(value)
    except (ArithmeticError, TypeError, ValueError):
        raise MappingError(f"unparsable audit stamp: {field} = {value!r:.40}") from None


def _text_value(value: Any, field: str) -> Any:
    # SQL Server text can hold U+0000; PostgreSQL (the storefront) refuses it, for the whole statement.
    if isinstance(value, str) and "\x00" in value:
        raise MappingError(f"{field} contains a NUL character: {ascii(value)[:80]}")
    return value


def row_context(record: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of a fetched row for dead letters and logs."""
    return {k: _json_safe(v) for k, v in record.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal | datetime):
        return str(value)
    if isinstance(value, bytes):  # a binary or mis-decoded column: kept readable, never a failed dead letter
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, str):  # lone surrogates cannot be serialized as UTF-8
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
