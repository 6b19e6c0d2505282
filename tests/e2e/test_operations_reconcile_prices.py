"""`syncline reconcile` of one-way price pairs on the local stack: the emulated ERP's ICPRICP prices, mapped as the
price worker maps them, against the storefront's prices table and a Shopify store's variants (the sandbox over real
HTTP, SKUs through the identity map). Discrepancies no notice reported are found exactly, --apply writes the current
ERP prices through the worker's own write path, and a second compare agrees."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncline.local.sage300 import ItemPrice
from syncline.local.stack import LocalStack
from tests.e2e.reconcile_helpers import cli, found, sandbox_stack
from tests.e2e.test_price_sync import PRICES

SKUS = ["SKU-A", "SKU-B", "SKU-C"]


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, PRICES) as local:
        yield local


def _synced(stack: LocalStack) -> None:
    """Three items priced in the ERP (and one it cannot map), synced into both targets by the workers."""
    erp = stack.erp()
    erp.add_items([(sku, f"Item {sku}") for sku in SKUS] + [("SKU-NEG", "Typo")])
    stack.seed_shopify("store_a", SKUS)
    erp.set_prices(
        [
            ItemPrice("SKU-A", "WEB", Decimal("19.99")),
            ItemPrice("SKU-A", "MSRP", Decimal("24.99")),
            ItemPrice("SKU-B", "WEB", Decimal("5.50")),
            ItemPrice("SKU-C", "WEB", Decimal("7.00")),
            ItemPrice("SKU-NEG", "WEB", Decimal("-1.00")),
            ItemPrice("SKU-C", "DEALER", Decimal("1.00")),  # another list: not the pair's business
        ]
    )
    stack.poll_erp()
    stack.settle()


def _variant(stack: LocalStack, sku: str) -> dict[str, Any]:
    return next(v for v in stack.sandboxes["store_a"].variants.values() if v["sku"] == sku)


def test_reconcile_of_a_storefront_price_pair_repairs_through_the_guarded_upsert(
    stack: LocalStack, tmp_path: Path
) -> None:
    _synced(stack)
    code, clean = cli(stack, "reconcile", "erp-storefront-prices", "--json", "--report", str(tmp_path / "0.json"))
    assert code == 0, clean
    assert (clean["before"]["compared"], clean["before"]["unmappable"]) == (3, 1)  # SKU-NEG: the DLQ's

    # Given a hand edit, a lost row, a price nobody polled yet and a row the ERP never priced
    shop = stack.storefront()
    shop.execute("UPDATE prices SET price = 1 WHERE sku = 'SKU-A'")
    shop.execute("DELETE FROM prices WHERE sku = 'SKU-B'")
    stack.erp().set_prices([ItemPrice("SKU-C", "WEB", Decimal("8.25"))])
    shop.execute(
        "INSERT INTO prices (sku, price_list, currency, price, source_version, source_updated_at) "
        "VALUES ('SKU-OLD', 'WEB', 'USD', 3, 1, now())"
    )

    # When compared: exactly those, with the ERP's values against the storefront's
    code, dry = cli(stack, "reconcile", "erp-storefront-prices", "--json", "--report", str(tmp_path / "d.json"))
    assert code == 4
    assert found(dry["before"]) == {
        ("mismatch", "SKU-A"),
        ("missing_in_target", "SKU-B"),
        ("mismatch", "SKU-C"),
        ("missing_in_source", "SKU-OLD"),
    }
    by_key = {d["key"]: d for d in dry["before"]["discrepancies"]}
    assert by_key["SKU-A"]["fields"] == {"price": ["19.99", "1"]}
    assert by_key["SKU-C"]["fields"] == {"price": ["8.25", "7"]}
    assert "never unpublishes a price" in by_key["SKU-OLD"]["note"]

    # When applied: the current ERP prices are written; the row the ERP lacks is left
    code, applied = cli(
        stack, "reconcile", "erp-storefront-prices", "--apply", "--json", "--report", str(tmp_path / "a.json")
    )
    assert (applied["applied"]["upserted"], applied["applied"]["left"], applied["applied"]["rejected"]) == (3, 1, [])
    assert found(applied["after"]) == {("missing_in_source", "SKU-OLD")} and code == 4
    rows = dict(shop.execute("SELECT sku, price FROM prices WHERE price_list = 'WEB'").fetchall())
    assert rows == {"SKU-A": Decimal("19.99"), "SKU-B": Decimal("5.50"), "SKU-C": Decimal("8.25"), "SKU-OLD": 3}

    # Then, once the operator removes what the note names, a second compare agrees on every price
    shop.execute("DELETE FROM prices WHERE sku = 'SKU-OLD'")
    code, again = cli(stack, "reconcile", "erp-storefront-prices", "--json", "--report", str(tmp_path / "b.json"))
    assert code == 0
    assert (again["before"]["compared"], again["before"]["consistency"]) == (3, 1.0)


def test_reconcile_of_a_shopify_price_pair_writes_only_the_variants_that_differ(
    stack: LocalStack, tmp_path: Path
) -> None:
    _synced(stack)
    sandbox = stack.sandboxes["store_a"]
    code, clean = cli(stack, "reconcile", "erp-store-a-prices", "--json", "--report", str(tmp_path / "0.json"))
    assert code == 0, clean
    assert clean["before"]["compared"] == 3  # SKU-NEG is mapped to no variant: not this store's business

    # Given hand edits in the store and a price nobody polled yet
    with sandbox.lock:
        _variant(stack, "SKU-A")["price"] = "1.00"
        _variant(stack, "SKU-B")["compareAtPrice"] = "9.00"
    stack.erp().set_prices([ItemPrice("SKU-C", "WEB", Decimal("8.25"))])
    updates = sandbox.applied["productVariantsBulkUpdate"]

    code, dry = cli(stack, "reconcile", "erp-store-a-prices", "--json", "--report", str(tmp_path / "d.json"))
    assert code == 4
    assert found(dry["before"]) == {("mismatch", "SKU-A"), ("mismatch", "SKU-B"), ("mismatch", "SKU-C")}
    by_key = {d["key"]: d for d in dry["before"]["discrepancies"]}
    assert by_key["SKU-B"]["fields"] == {"compare_at": [None, "9"]}

    # When applied: one update per product that differs, through the price worker's write path
    code, applied = cli(
        stack, "reconcile", "erp-store-a-prices", "--apply", "--json", "--report", str(tmp_path / "a.json")
    )
    assert code == 0, applied
    assert (applied["applied"]["upserted"], applied["applied"]["rejected"]) == (3, [])
    assert sandbox.applied["productVariantsBulkUpdate"] == updates + 3
    shown = _variant(stack, "SKU-A")
    assert (Decimal(shown["price"]), Decimal(shown["compareAtPrice"])) == (Decimal("19.99"), Decimal("24.99"))
    assert _variant(stack, "SKU-B")["compareAtPrice"] is None
    assert Decimal(_variant(stack, "SKU-C")["price"]) == Decimal("8.25")

    # Then a second compare agrees, and a second apply writes nothing
    code, again = cli(stack, "reconcile", "erp-store-a-prices", "--apply", "--json", "--report", str(tmp_path / "b"))
    assert code == 0
    assert (again["before"]["compared"], again["before"]["consistency"]) == (3, 1.0)
    assert sandbox.applied["productVariantsBulkUpdate"] == updates + 3
