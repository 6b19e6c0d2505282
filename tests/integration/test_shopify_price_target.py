"""The Shopify price target against the Shopify sandbox over real HTTP: one productVariantsBulkUpdate per
product, carrying only the variants whose price or compare-at price differs; unmapped SKUs are not written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from syncline.canonical.entities import Price
from syncline.connectors.shopify import ShopifyPriceTarget
from syncline.local.sandboxes.shopify import ShopifySandbox
from tests.integration.test_shopify_connector import BIG, Shop, seed


@pytest.fixture
def shop() -> Iterator[Shop]:
    sandbox = ShopifySandbox(first_id=BIG, maximum_available=1000, restore_rate=50).start()
    try:
        yield seed(sandbox)
    finally:
        sandbox.stop()


def _price(sku: str, base: str, compare_at: str | None = None) -> Price:
    return Price(
        sku=sku,
        currency="USD",
        base=Decimal(base),
        compare_at=None if compare_at is None else Decimal(compare_at),
        price_list="WEB",
        source_version=1,
        updated_at=datetime(2026, 11, 23, tzinfo=UTC),
    )


def test_only_variants_showing_another_price_are_written_in_one_call_per_product(shop: Shop) -> None:
    items = dict(zip(["SHOE-41", "SHOE-42", "SHOE-43"], shop.items, strict=True))
    target = ShopifyPriceTarget(shop.admin(), items.get)
    prices = [
        _price("SHOE-41", "89.000000", "99.000000"),  # what the store shows already, at the ERP's scale
        _price("SHOE-42", "79.00", "89.00"),
        _price("SHOE-43", "95.00"),
        _price("NOT-SOLD", "1.00"),
    ]
    assert target.upsert_prices(prices) == {"SHOE-41", "SHOE-42", "SHOE-43"}
    assert target.unmapped == ["NOT-SOLD"]
    assert shop.sandbox.applied["productVariantsBulkUpdate"] == 1
    shown = {v["sku"]: (v["price"], v["compareAtPrice"]) for v in shop.sandbox.variants.values()}
    assert shown == {"SHOE-41": ("89.00", "99.00"), "SHOE-42": ("79.00", "89.00"), "SHOE-43": ("95.00", None)}

    # The same prices again (a redelivery past the state cache): the store agrees, nothing is written.
    assert target.upsert_prices(prices[:3]) == {"SHOE-41", "SHOE-42", "SHOE-43"}
    assert shop.sandbox.applied["productVariantsBulkUpdate"] == 1
    # Removing a compare-at price is a change too.
    target.upsert_prices([_price("SHOE-41", "89.00")])
    assert shop.sandbox.applied["productVariantsBulkUpdate"] == 2
    assert next(v for v in shop.sandbox.variants.values() if v["sku"] == "SHOE-41")["compareAtPrice"] is None
