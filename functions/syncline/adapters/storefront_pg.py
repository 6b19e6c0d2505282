"""The PostgreSQL storefront as a sync target: inventory levels and prices, written newest-version-wins.

Every write path carries the guard ``WHERE target.source_version <= EXCLUDED.source_version`` so an
older delivery never replaces newer data, whatever order messages arrive in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg

from syncline.canonical.entities import Price
from syncline.erp.sage300 import INVENTORY_FIELDS
from syncline.models import InventoryLevel, inventory_key

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS inventory_levels (
    sku               text           NOT NULL,
    location          text           NOT NULL,
    on_hand           numeric(19, 4) NOT NULL,
    reserved          numeric(19, 4) NOT NULL,
    available         numeric(19, 4) NOT NULL,
    on_order          numeric(19, 4) NOT NULL,
    description       text,
    unit              text,
    active            boolean        NOT NULL DEFAULT true,
    source_version    bigint         NOT NULL,
    source_updated_at timestamptz    NOT NULL,
    synced_at         timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, location)
)
"""

COLUMNS = INVENTORY_FIELDS  # the storefront's columns are the canonical fields, in the same order
_TYPES = (
    "text",
    "text",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "text",
    "text",
    "boolean",
    "bigint",
    "timestamptz",
)
_UPDATES = ", ".join(f"{column} = EXCLUDED.{column}" for column in COLUMNS[2:])
# <= so a retry after a crash between target write and state commit rewrites (harmlessly) and is counted.
_GUARD = "WHERE inventory_levels.source_version <= EXCLUDED.source_version"

UPSERT_SQL = (
    f"INSERT INTO inventory_levels ({', '.join(COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in _TYPES)}) "
    f"ON CONFLICT (sku, location) DO UPDATE SET {_UPDATES}, synced_at = now() {_GUARD} "
    "RETURNING sku, location"
)
MERGE_STAGED_SQL = (
    f"INSERT INTO inventory_levels ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM staged_inventory "
    f"ON CONFLICT (sku, location) DO UPDATE SET {_UPDATES}, synced_at = now() {_GUARD}"
)


# One row per SKU, price list and currency (what ERP price pairs write; see syncline.prices).
PRICES_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS prices (
    sku               text           NOT NULL,
    price_list        text           NOT NULL,
    currency          char(3)        NOT NULL,
    price             numeric(19, 6) NOT NULL CHECK (price >= 0),
    compare_at        numeric(19, 6) CHECK (compare_at > price),
    source_version    bigint         NOT NULL,
    source_updated_at timestamptz    NOT NULL,
    synced_at         timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, price_list, currency)
)
"""
UPSERT_PRICES_SQL = (
    "INSERT INTO prices (sku, price_list, currency, price, compare_at, source_version, source_updated_at) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::numeric[], %s::numeric[], %s::bigint[], "
    "%s::timestamptz[]) "
    "ON CONFLICT (sku, price_list, currency) DO UPDATE SET price = EXCLUDED.price, compare_at = EXCLUDED.compare_at, "
    "source_version = EXCLUDED.source_version, source_updated_at = EXCLUDED.source_updated_at, synced_at = now() "
    "WHERE prices.source_version <= EXCLUDED.source_version "
    "RETURNING sku"
)


def ensure_schema(connection: Any) -> None:
    connection.execute(SCHEMA_SQL)
    connection.execute(PRICES_SCHEMA_SQL)


def as_row(level: InventoryLevel) -> tuple[Any, ...]:
    return tuple(getattr(level, column) for column in COLUMNS)


class PostgresStorefront:
    """``InventoryTarget`` over a psycopg connection in autocommit mode."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        """One statement for the whole batch; returns the keys whose version was newer and got written."""
        if not levels:
            return set()
        columns = list(zip(*(as_row(level) for level in levels), strict=True))
        rows = self._connection().execute(UPSERT_SQL, [list(column) for column in columns]).fetchall()
        return {inventory_key(sku, location) for sku, location in rows}

    def iter_rows(self, page_size: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        """Every row in ``COLUMNS`` order, in keyset pages by (sku, location) (reconciliation reads it all)."""
        after: tuple[str, str] | None = None
        columns = ", ".join(COLUMNS)
        while True:
            params: list[Any]
            if after is None:
                sql, params = f"SELECT {columns} FROM inventory_levels ORDER BY sku, location LIMIT %s", [page_size]
            else:
                sql = (
                    f"SELECT {columns} FROM inventory_levels WHERE (sku, location) > (%s, %s) "
                    "ORDER BY sku, location LIMIT %s"
                )
                params = [*after, page_size]
            page = [tuple(row) for row in self._connection().execute(sql, params).fetchall()]
            if page:
                yield page
            if len(page) < page_size:
                return
            after = (page[-1][0], page[-1][1])

    def delete_inventory(self, rows: Sequence[tuple[str, str, int]]) -> set[str]:
        """Delete (sku, location) rows still at or below the given version; returns the keys deleted.

        The version guard keeps a row that was written again since it was judged deletable.
        """
        if not rows:
            return set()
        skus, locations, versions = (list(column) for column in zip(*rows, strict=True))
        deleted = (
            self._connection()
            .execute(
                "DELETE FROM inventory_levels t USING unnest(%s::text[], %s::text[], %s::bigint[]) AS d(sku, location, version) "
                "WHERE t.sku = d.sku AND t.location = d.location AND t.source_version <= d.version "
                "RETURNING t.sku, t.location",
                [skus, locations, versions],
            )
            .fetchall()
        )
        return {inventory_key(sku, location) for sku, location in deleted}

    def bulk_load(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Load one page of ``as_row``-ordered tuples with COPY, in one transaction; returns the rows loaded.

        A page whose first and last rows the storefront does not hold (an initial load: pages come in key
        order) is COPYed straight into ``inventory_levels``, under a savepoint: should any other row of it
        be stored already (an incremental write got there first), the primary key refuses the COPY and
        the page takes the other way. That way, for every other page, is COPY into a staging table and one
        guarded merge, so newest-version-wins holds for a catch-up load. The table lock keeps incremental
        writers waiting for the moment a page takes.
        """
        if not rows:
            return 0
        connection = self._connection()
        with connection.transaction():
            connection.execute("LOCK TABLE inventory_levels IN SHARE ROW EXCLUSIVE MODE")
            if not self._holds(connection, rows[0], rows[-1]):
                try:
                    with connection.transaction():
                        self._copy(connection, "inventory_levels", rows)
                    return len(rows)
                except psycopg.errors.UniqueViolation:
                    pass  # rolled back to the savepoint: merge it instead
            connection.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staged_inventory (LIKE inventory_levels INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
            self._copy(connection, "staged_inventory", rows)
            connection.execute(MERGE_STAGED_SQL)
        return len(rows)

    @staticmethod
    def _holds(connection: Any, *rows: tuple[Any, ...]) -> bool:
        """Whether any of these rows' keys (sku, location) is stored. count(*), not EXISTS: on a table that grew
        since it was last analyzed (a load), the planner bets on EXISTS finding a row early in a sequential
        scan, and reads the whole table when there is none."""
        keys = " OR ".join(["(sku = %s AND location = %s)"] * len(rows))
        found = connection.execute(
            f"SELECT count(*) FROM inventory_levels WHERE {keys}", [value for row in rows for value in row[:2]]
        )
        return bool(found.fetchone()[0])

    @staticmethod
    def _copy(connection: Any, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with connection.cursor().copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


class PostgresStorefrontPrices:
    """``PriceTarget`` over the storefront's ``prices`` table (psycopg, autocommit): one guarded statement."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection

    def upsert_prices(self, prices: Sequence[Price]) -> set[str]:
        """Returns the SKUs written: those whose stored version was not newer."""
        if not prices:
            return set()
        rows = [
            (p.sku, p.price_list or "", p.currency, p.base, p.compare_at, p.source_version or 0, p.updated_at)
            for p in prices
        ]
        columns = [list(column) for column in zip(*rows, strict=True)]
        return {sku for (sku,) in self._connection().execute(UPSERT_PRICES_SQL, columns).fetchall()}

    def iter_prices(
        self, *, price_list: str, currency: str, page_size: int = 5000
    ) -> Iterator[list[tuple[str, Decimal, Decimal | None, int]]]:
        """Every (sku, price, compare_at, source_version) of one price list and currency, in keyset pages by SKU
        (reconciliation reads it all)."""
        after = ""
        while True:
            rows = (
                self._connection()
                .execute(
                    "SELECT sku, price, compare_at, source_version FROM prices WHERE price_list = %s AND currency = %s "
                    "AND sku > %s ORDER BY sku LIMIT %s",
                    [price_list, currency, after, page_size],
                )
                .fetchall()
            )
            page = [(str(sku), price, compare_at, int(version)) for sku, price, compare_at, version in rows]
            if page:
                yield page
            if len(page) < page_size:
                return
            after = page[-1][0]
