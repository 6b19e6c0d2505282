"""The ERP's price SQL as text on a real PostgreSQL with the Sage-300-shaped ICPRICP table, read by the read-only
role; and the storefront's guarded price upsert."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.adapters.storefront_pg import PostgresStorefrontPrices
from syncline.canonical.entities import Price
from syncline.erp.sage300 import ICPRICP_STREAM, PriceSelection, Sage300Reader, to_price
from syncline.local.sage300 import ItemPrice


def test_price_changes_are_walked_in_keyset_pages_once_each_in_stamp_then_key_order(
    stack: Any, reader: Sage300Reader
) -> None:
    erp = stack.erp()
    erp.add_items([("P1", "x"), ("P2", "x")])
    # One stamp for five rows: ties broken by CURRENCY, ITEMNO, PRICELIST, DPRICETYPE (an integer), QTYUNIT.
    erp.set_prices(
        [
            ItemPrice("P1", "WEB", Decimal(1)),
            ItemPrice("P1", "WEB", Decimal(1), price_type=2),
            ItemPrice("P1", "WEB", Decimal(9), unit="BOX"),
            ItemPrice("P2", "MSRP", Decimal(2)),
            ItemPrice("P1", "WEB", Decimal(1), currency="CAD"),
        ],
        stamp=(20261123, 10000000),
    )
    erp.set_prices([ItemPrice("P2", "WEB", Decimal(2))], stamp=(20261123, 10000001))
    seen, after = [], None
    while True:
        page = reader.scan_changes(ICPRICP_STREAM, from_stamp=(0, 0), after=after, page_size=2)
        seen.extend(page)
        if len(page) < 2:
            break
        after = page[-1].position
    assert [row.key for row in seen] == [
        ("CAD", "P1", "WEB", "1", "EA", ""),
        ("USD", "P1", "WEB", "1", "BOX", ""),
        ("USD", "P1", "WEB", "1", "EA", ""),
        ("USD", "P1", "WEB", "2", "EA", ""),
        ("USD", "P2", "MSRP", "1", "EA", ""),
        ("USD", "P2", "WEB", "1", "EA", ""),  # CHAR padding stripped, later stamp last
    ]
    assert [ICPRICP_STREAM.notice_key(row.key) for row in seen[-2:]] == ["P2", "P2"]
    later = reader.scan_changes(ICPRICP_STREAM, from_stamp=(20261123, 10000001), after=None, page_size=10)
    assert [row.key[1:3] for row in later] == [("P2", "WEB")]


def test_fetch_prices_takes_base_prices_of_the_lists_and_currency_and_sees_orphans(
    stack: Any, reader: Sage300Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncline.erp import sage300

    monkeypatch.setattr(sage300, "MAX_IN_LIST", 2)
    erp = stack.erp()
    erp.add_items([(f"Q{i}", "x") for i in range(5)])
    erp.set_prices(
        [ItemPrice(f"Q{i}", "WEB", Decimal(i) + Decimal("0.5")) for i in range(5)]
        + [
            ItemPrice("Q1", "MSRP", Decimal(20)),
            ItemPrice("Q1", "WEB", Decimal(1), price_type=2),  # a sale price: not a base price
            ItemPrice("Q1", "WEB", Decimal(7), currency="EUR"),
            ItemPrice("Q1", "RETAIL", Decimal(8)),
            ItemPrice("ORPHAN", "WEB", Decimal(3)),  # no ICITEM row
        ]
    )
    rows = reader.fetch_prices(
        [f"Q{i}" for i in range(5)] + ["ORPHAN", "MISSING"], currency="USD", price_lists=("WEB", "MSRP")
    )
    assert sorted((r["ITEMNO"], r["PRICELIST"], r["UNITPRICE"]) for r in rows) == [
        ("ORPHAN", "WEB", Decimal("3.000000")),
        ("Q0", "WEB", Decimal("0.500000")),
        ("Q1", "MSRP", Decimal("20.000000")),
        ("Q1", "WEB", Decimal("1.500000")),
        ("Q2", "WEB", Decimal("2.500000")),
        ("Q3", "WEB", Decimal("3.500000")),
        ("Q4", "WEB", Decimal("4.500000")),
    ]
    assert {r["STOCKUNIT"] for r in rows if r["ITEMNO"] == "ORPHAN"} == {None}
    q1 = to_price([r for r in rows if r["ITEMNO"] == "Q1"], PriceSelection("WEB", "USD", "MSRP"))
    assert q1 is not None and (q1.base, q1.compare_at) == (Decimal("1.500000"), Decimal("20.000000"))


def _price(sku: str, base: str, version: int, compare_at: str | None = None) -> Price:
    return Price(
        sku=sku,
        currency="USD",
        base=Decimal(base),
        compare_at=None if compare_at is None else Decimal(compare_at),
        price_list="WEB",
        source_version=version,
        updated_at=datetime(2026, 11, 23, tzinfo=UTC),
    )


def test_the_storefront_price_upsert_never_replaces_a_newer_version(stack: Any) -> None:
    storefront = stack.storefront()
    target = PostgresStorefrontPrices(lambda: storefront)
    assert target.upsert_prices([_price("A", "10", 5, compare_at="12"), _price("B", "3", 5)]) == {"A", "B"}
    assert target.upsert_prices([_price("A", "9", 4), _price("B", "4", 6)]) == {"B"}  # A's is older
    assert target.upsert_prices([_price("B", "4", 6)]) == {"B"}  # the same version again: a harmless rewrite
    rows = storefront.execute("SELECT sku, price, compare_at, source_version FROM prices ORDER BY sku").fetchall()
    assert rows == [("A", Decimal("10.000000"), Decimal("12.000000"), 5), ("B", Decimal("4.000000"), None, 6)]
