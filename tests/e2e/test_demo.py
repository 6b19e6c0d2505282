"""`syncline demo` runs its four rounds on a fresh local stack and ends with everything in agreement."""

from __future__ import annotations

import io

from rich.console import Console

from syncline.local.demo import run_demo


def test_the_demo_ends_consistent_with_a_row_per_pair() -> None:
    out = io.StringIO()
    figures = run_demo(items=20, changes=5, seed=3, console=Console(file=out, width=160))
    assert figures["consistency"]["in_agreement"] == figures["consistency"]["syncable"] > 0
    assert figures["stores_agree"]["equal"] == figures["stores_agree"]["compared"] == 10
    pairs = {row["pair"]: row for row in figures["pairs"]}
    assert set(pairs) == {
        "erp-storefront-inventory",
        "erp-store-a",
        "erp-store-b",
        "stores-inventory",
        "store-a-orders",
        "crm-customers",
        "oms-shipments",
        "erp-cmms-spares",
        "erp-storefront-prices",
        "erp-store-a-prices",
        "erp-store-b-prices",
    }
    assert pairs["erp-storefront-inventory"]["dlq"] == 3  # the three rows no storefront can take
    assert pairs["erp-storefront-prices"]["dlq"] == 2  # a negative price, a price of an item missing from ICITEM
    parked = {"erp-storefront-inventory", "erp-storefront-prices"}
    assert all(row["dlq"] == 0 for name, row in pairs.items() if name not in parked)
    prices = figures["prices"]
    assert prices["storefront_agree"] == prices["syncable"] == 20  # every demo item's web price
    assert prices["stores_agree"] == prices["store_prices"] == 20  # 10 variants in each store
    # The stores sell SKU-0000..0009: each price written once at first, then the changed ones (round 2) once;
    # round 3's duplicates wrote nothing.
    assert pairs["erp-store-a-prices"]["synced"] == pairs["erp-store-b-prices"]["synced"] == 13
    assert pairs["store-a-orders"]["synced"] == 2  # placed, then fulfilled (the shipment's status came back)
    assert pairs["oms-shipments"]["synced"] == 1  # the OMS's shipment fulfilled the store order, once
    assert pairs["crm-customers"]["synced"] == 2  # one customer each way
    assert figures["crm_agrees"]
    assert pairs["stores-inventory"]["settled"] == 1  # SKU-0005 changed in both stores at once
    assert pairs["erp-cmms-spares"]["synced"] == 4  # the fifth spare part is not stocked in the CMMS
    text = out.getvalue()
    assert "Per sync pair" in text and "the two stores agree on 10 of 10 records" in text
    assert "HubSpot and the OMS agree on both customers" in text
    assert "prices: the storefront matches the ERP's web prices for 20 of 20 syncable items" in text
