"""An emulated Sage 300 Inventory Control database on PostgreSQL, shaped like the real tables.

Column names and types follow shared/fixtures/sage300 (CHAR keys, numeric(19,4) quantities, numeric
AUDTDATE yyyymmdd / AUDTTIME hhmmsscc stamps). The "ERP user" side (seeding, changing stock) writes
here as the admin; Syncline reads through the read-only role.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from syncline.stamps import stamp_of

DDL = """
CREATE TABLE ICITEM (
    ITEMNO     CHAR(24)      NOT NULL PRIMARY KEY,
    AUDTDATE   DECIMAL(9, 0) NOT NULL,
    AUDTTIME   DECIMAL(9, 0) NOT NULL,
    AUDTUSER   CHAR(8)       NOT NULL,
    AUDTORG    CHAR(6)       NOT NULL,
    "DESC"     CHAR(60)      NOT NULL,
    INACTIVE   SMALLINT      NOT NULL DEFAULT 0,
    FMTITEMNO  CHAR(24)      NOT NULL,
    CATEGORY   CHAR(6)       NOT NULL DEFAULT '',
    STOCKITEM  SMALLINT      NOT NULL DEFAULT 1,
    STOCKUNIT  CHAR(10)      NOT NULL DEFAULT 'EA'
);
CREATE TABLE ICLOC (
    LOCATION   CHAR(6)       NOT NULL PRIMARY KEY,
    AUDTDATE   DECIMAL(9, 0) NOT NULL,
    AUDTTIME   DECIMAL(9, 0) NOT NULL,
    AUDTUSER   CHAR(8)       NOT NULL,
    AUDTORG    CHAR(6)       NOT NULL,
    "DESC"     CHAR(60)      NOT NULL
);
CREATE TABLE ICILOC (
    ITEMNO     CHAR(24)       NOT NULL,
    LOCATION   CHAR(6)        NOT NULL,
    AUDTDATE   DECIMAL(9, 0)  NOT NULL,
    AUDTTIME   DECIMAL(9, 0)  NOT NULL,
    AUDTUSER   CHAR(8)        NOT NULL,
    AUDTORG    CHAR(6)        NOT NULL,
    QTYONHAND  DECIMAL(19, 4) NOT NULL DEFAULT 0,
    QTYONORDER DECIMAL(19, 4) NOT NULL DEFAULT 0,
    QTYSALORDR DECIMAL(19, 4) NOT NULL DEFAULT 0,
    QTYCOMMIT  DECIMAL(19, 4) NOT NULL DEFAULT 0,
    QTYOFFSET  DECIMAL(19, 4) NOT NULL DEFAULT 0,
    COSTOFFSET DECIMAL(19, 3) NOT NULL DEFAULT 0,
    RECENTCOST DECIMAL(19, 6) NOT NULL DEFAULT 0,
    PRIMARY KEY (ITEMNO, LOCATION)
);
-- Price list item pricing (AOM ICPRICP, view IC0482). No foreign key to ICITEM, as in Sage's own tables.
CREATE TABLE ICPRICP (
    CURRENCY   CHAR(3)        NOT NULL,
    ITEMNO     CHAR(24)       NOT NULL,
    PRICELIST  CHAR(6)        NOT NULL,
    DPRICETYPE SMALLINT       NOT NULL,
    QTYUNIT    CHAR(10)       NOT NULL,
    WEIGHTUNIT CHAR(10)       NOT NULL DEFAULT '',
    AUDTDATE   DECIMAL(9, 0)  NOT NULL,
    AUDTTIME   DECIMAL(9, 0)  NOT NULL,
    AUDTUSER   CHAR(8)        NOT NULL,
    AUDTORG    CHAR(6)        NOT NULL,
    UNITPRICE  DECIMAL(19, 6) NOT NULL DEFAULT 0,
    CONVERSION DECIMAL(19, 6) NOT NULL DEFAULT 1,
    SALESTART  DECIMAL(9, 0)  NOT NULL DEFAULT 0,
    SALEEND    DECIMAL(9, 0)  NOT NULL DEFAULT 0,
    LASTPRICDT DECIMAL(9, 0)  NOT NULL DEFAULT 0,
    PREVPRICE  DECIMAL(19, 6) NOT NULL DEFAULT 0,
    PRIMARY KEY (CURRENCY, ITEMNO, PRICELIST, DPRICETYPE, QTYUNIT, WEIGHTUNIT)
);
-- Change scans order by (AUDTDATE, AUDTTIME, key); a DBA would add these on a real Sage server.
CREATE INDEX ICILOC_AUDIT ON ICILOC (AUDTDATE, AUDTTIME, ITEMNO, LOCATION);
CREATE INDEX ICITEM_AUDIT ON ICITEM (AUDTDATE, AUDTTIME, ITEMNO);
CREATE INDEX ICPRICP_AUDIT ON ICPRICP (AUDTDATE, AUDTTIME, CURRENCY, ITEMNO, PRICELIST, DPRICETYPE, QTYUNIT, WEIGHTUNIT);
CREATE INDEX ICPRICP_ITEM ON ICPRICP (ITEMNO, CURRENCY, PRICELIST);
"""

LOCATIONS = (("1", "Main warehouse"), ("2", "East store"), ("3", "West store"))
AUDIT_USER, AUDIT_ORG = "ADMIN", "SAMLTD"


@dataclass(frozen=True)
class Stock:
    item: str
    location: str
    on_hand: Decimal
    committed: Decimal = Decimal(0)
    on_order: Decimal = Decimal(0)


@dataclass(frozen=True)
class ItemPrice:
    """One ICPRICP row: ``price`` of ``item`` per ``unit`` on ``price_list`` (DPRICETYPE 1 = base price)."""

    item: str
    price_list: str
    price: Decimal
    currency: str = "USD"
    unit: str = "EA"
    price_type: int = 1


class Sage300Emulator:
    """The ERP side of the local stack: what Sage users do to the tables (as the admin login)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def create_schema(self, locations: Sequence[tuple[str, str]] = LOCATIONS) -> None:
        self._connection.execute(DDL)
        date, time = stamp_of(datetime.now(UTC))
        for code, description in locations:
            self._connection.execute(
                'INSERT INTO ICLOC (LOCATION, AUDTDATE, AUDTTIME, AUDTUSER, AUDTORG, "DESC") VALUES (%s, %s, %s, %s, %s, %s)',
                [code, date, time, AUDIT_USER, AUDIT_ORG, description],
            )

    def add_items(self, items: Iterable[tuple[str, str]], *, at: datetime | None = None) -> None:
        date, time = stamp_of(at or datetime.now(UTC))
        with self._connection.cursor() as cursor:
            cursor.executemany(
                'INSERT INTO ICITEM (ITEMNO, AUDTDATE, AUDTTIME, AUDTUSER, AUDTORG, "DESC", FMTITEMNO) '
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(item, date, time, AUDIT_USER, AUDIT_ORG, description, item) for item, description in items],
            )

    def set_stock(
        self, rows: Iterable[Stock], *, at: datetime | None = None, stamp: tuple[int, int] | None = None
    ) -> None:
        """Insert or update ICILOC rows with a fresh audit stamp (or an explicit one, for late commits)."""
        date, time = stamp or stamp_of(at or datetime.now(UTC))
        with self._connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ICILOC (ITEMNO, LOCATION, AUDTDATE, AUDTTIME, AUDTUSER, AUDTORG, QTYONHAND, QTYCOMMIT, QTYONORDER) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (ITEMNO, LOCATION) DO UPDATE SET AUDTDATE = EXCLUDED.AUDTDATE, AUDTTIME = EXCLUDED.AUDTTIME, "
                "QTYONHAND = EXCLUDED.QTYONHAND, QTYCOMMIT = EXCLUDED.QTYCOMMIT, QTYONORDER = EXCLUDED.QTYONORDER",
                [
                    (r.item, r.location, date, time, AUDIT_USER, AUDIT_ORG, r.on_hand, r.committed, r.on_order)
                    for r in rows
                ],
            )

    def set_raw_stamp(self, item: str, location: str, audit_date: int, audit_time: int) -> None:
        """Write a stamp exactly as given, valid or not (bad data happens in real ERPs)."""
        self._connection.execute(
            "UPDATE ICILOC SET AUDTDATE = %s, AUDTTIME = %s WHERE ITEMNO = %s AND LOCATION = %s",
            [audit_date, audit_time, item, location],
        )

    def rename_item(self, item: str, description: str, *, at: datetime | None = None) -> None:
        date, time = stamp_of(at or datetime.now(UTC))
        self._connection.execute(
            'UPDATE ICITEM SET "DESC" = %s, AUDTDATE = %s, AUDTTIME = %s WHERE ITEMNO = %s',
            [description, date, time, item],
        )

    def set_prices(
        self, rows: Iterable[ItemPrice], *, at: datetime | None = None, stamp: tuple[int, int] | None = None
    ) -> None:
        """Insert or update ICPRICP rows with a fresh audit stamp, keeping the previous price as Sage does."""
        date, time = stamp or stamp_of(at or datetime.now(UTC))
        with self._connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ICPRICP (CURRENCY, ITEMNO, PRICELIST, DPRICETYPE, QTYUNIT, AUDTDATE, AUDTTIME, AUDTUSER, "
                "AUDTORG, UNITPRICE, LASTPRICDT) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (CURRENCY, ITEMNO, PRICELIST, DPRICETYPE, QTYUNIT, WEIGHTUNIT) DO UPDATE SET "
                "AUDTDATE = EXCLUDED.AUDTDATE, AUDTTIME = EXCLUDED.AUDTTIME, PREVPRICE = ICPRICP.UNITPRICE, "
                "UNITPRICE = EXCLUDED.UNITPRICE, LASTPRICDT = EXCLUDED.LASTPRICDT",
                [
                    (
                        r.currency,
                        r.item,
                        r.price_list,
                        r.price_type,
                        r.unit,
                        date,
                        time,
                        AUDIT_USER,
                        AUDIT_ORG,
                        r.price,
                        date,
                    )
                    for r in rows
                ],
            )

    def prices(self) -> dict[tuple[str, str, str, int, str], Decimal]:
        """(item, currency, price list, price type, unit) -> unit price, as the ERP holds them."""
        rows = self._connection.execute(
            "SELECT ITEMNO, CURRENCY, PRICELIST, DPRICETYPE, QTYUNIT, UNITPRICE FROM ICPRICP"
        ).fetchall()
        return {
            (item.rstrip(), currency.rstrip(), price_list.rstrip(), int(kind), unit.rstrip()): price
            for item, currency, price_list, kind, unit, price in rows
        }

    def item_numbers(self) -> set[str]:
        """Every ITEMNO of the item master (ICITEM)."""
        return {str(item).rstrip() for (item,) in self._connection.execute("SELECT ITEMNO FROM ICITEM").fetchall()}

    def stock(self) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
        rows = self._connection.execute(
            "SELECT ITEMNO, LOCATION, QTYONHAND, QTYCOMMIT, QTYONORDER FROM ICILOC"
        ).fetchall()
        return {
            (item.rstrip(), loc.rstrip()): (on_hand, committed, on_order)
            for item, loc, on_hand, committed, on_order in rows
        }

    def seed_bulk(self, count: int, *, locations: Sequence[str] = ("1", "2", "3"), seed: int = 7) -> None:
        """``count`` ICILOC rows (items x locations) loaded with COPY, for benchmarks."""
        rng = random.Random(seed)  # noqa: S311 - test data, not security
        date, time = stamp_of(datetime.now(UTC))
        items = (count + len(locations) - 1) // len(locations)
        with self._connection.cursor() as cursor:
            with cursor.copy(
                'COPY ICITEM (ITEMNO, AUDTDATE, AUDTTIME, AUDTUSER, AUDTORG, "DESC", FMTITEMNO) FROM STDIN'
            ) as copy:
                for i in range(items):
                    copy.write_row((f"SKU{i:07d}", date, time, AUDIT_USER, AUDIT_ORG, f"Item {i}", f"SKU{i:07d}"))
            with cursor.copy(
                "COPY ICILOC (ITEMNO, LOCATION, AUDTDATE, AUDTTIME, AUDTUSER, AUDTORG, QTYONHAND, QTYCOMMIT, QTYONORDER) FROM STDIN"
            ) as copy:
                written = 0
                for i in range(items):
                    for location in locations:
                        if written == count:
                            break
                        copy.write_row(
                            (
                                f"SKU{i:07d}",
                                location,
                                date,
                                time,
                                AUDIT_USER,
                                AUDIT_ORG,
                                rng.randint(0, 500),
                                rng.randint(0, 20),
                                0,
                            )
                        )
                        written += 1
        self._connection.execute("ANALYZE ICITEM; ANALYZE ICILOC")
