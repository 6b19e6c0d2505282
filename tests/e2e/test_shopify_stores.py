"""Sage 300 -> two Shopify stores (one-way inventory) and two-way inventory between the stores, on the local
stack with two Shopify sandboxes over real HTTP: the ERP poller, the sync workers, Shopify's signed webhooks
through the local API Gateway, the two-way worker, echoes and conflicts, all through the real handlers."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

SKUS = [f"SKU{i:03d}" for i in range(6)]
STORES = """
[systems.store_a]
kind = "shopify"
secret = "syncline/store-a"
shop = "store-a.myshopify.com"
[systems.store_a.locations]
main = "1001"
east = "1002"

[systems.store_b]
kind = "shopify"
secret = "syncline/store-b"
shop = "store-b.myshopify.com"
[systems.store_b.locations]
main = "2001"
east = "2002"

[webhooks.shopify-a]
scheme = "shopify"
secret = "syncline/webhooks/shopify-a"
system = "store_a"
[webhooks.shopify-a.topics."inventory_levels/update"]
entity = "inventory_level"
key = ["inventory_item_id", "location_id"]

[webhooks.shopify-b]
scheme = "shopify"
secret = "syncline/webhooks/shopify-b"
system = "store_b"
[webhooks.shopify-b.topics."inventory_levels/update"]
entity = "inventory_level"
key = ["inventory_item_id", "location_id"]

[webhooks.shopify-a.topics."orders/create"]
entity = "order"
key = ["id"]

[webhooks.shopify-a.topics."orders/updated"]
entity = "order"
key = ["id"]

[systems.oms]
kind = "oms"
secret = "syncline/oms"

[[pairs]]
name = "store-a-orders"
source = "store_a"
target = "oms"
entity = "order"

[[pairs]]
name = "erp-store-a"
source = "sage300"
target = "store_a"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
"2" = "east"

[[pairs]]
name = "erp-store-b"
source = "sage300"
target = "store_b"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
"2" = "east"

[[pairs]]
name = "stores-inventory"
source = "store_a"
target = "store_b"
entity = "inventory_level"
direction = "two_way"
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, STORES) as local:
        yield local


def _levels(stack: LocalStack, store: str, items: dict[str, str]) -> dict[tuple[str, str], int]:
    sandbox, locations = stack.sandboxes[store], stack.config.systems[store].locations  # type: ignore[union-attr]
    return {
        (sku, code): sandbox.quantity(item, f"gid://shopify/Location/{location}")
        for sku, item in items.items()
        for code, location in locations.items()
    }


def test_erp_stock_reaches_both_stores_and_store_edits_reach_each_other(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([(sku, f"Item {sku}") for sku in SKUS])
    erp.set_stock(
        [Stock(sku, location, Decimal(10 + i), committed=Decimal(1)) for i, sku in enumerate(SKUS) for location in "12"]
    )
    items_a = stack.seed_shopify("store_a", SKUS)
    items_b = stack.seed_shopify("store_b", SKUS)

    # 1. The ERP's available stock (on hand - committed) lands in both stores; their webhooks are echoes.
    stack.poll_erp()
    stack.settle()
    expected = {(sku, code): 9 + i for i, sku in enumerate(SKUS) for code in ("main", "east")}
    assert _levels(stack, "store_a", items_a) == expected
    assert _levels(stack, "store_b", items_b) == expected
    applied = {name: sandbox.applied["inventorySetQuantities"] for name, sandbox in stack.sandboxes.items()}

    # 2. A sale in store A (a merchant's change, notified by webhook) reaches store B, once.
    stack.sandboxes["store_a"].set_available(items_a["SKU002"], "gid://shopify/Location/1001", 5)
    stack.settle()
    assert _levels(stack, "store_b", items_b)[("SKU002", "main")] == 5
    assert stack.sandboxes["store_b"].applied["inventorySetQuantities"] == applied["store_b"] + 1  # once, no loop
    assert stack.sandboxes["store_a"].applied["inventorySetQuantities"] == applied["store_a"]  # A not written back

    # 3. Nothing is left in any DLQ, and nothing keeps moving.
    for queue in stack.topology.queues:
        assert stack.dead_letters(queue.id) == [], queue.id
    assert stack.settle() == 0


def test_a_webhook_for_an_unmapped_item_is_dead_lettered_with_its_reason(stack: LocalStack) -> None:
    stack.seed_shopify("store_a", ["SKU900"])
    sandbox = stack.sandboxes["store_a"]
    product = sandbox.add_product("Not mapped", [{"sku": "NOPE-1", "price": "1.00"}])
    item = product.inventory_item_ids[0]
    sandbox.stock(item, "gid://shopify/Location/1001", available=3)
    sandbox.set_available(item, "gid://shopify/Location/1001", 2)
    stack.settle()
    (letter,) = stack.dead_letters("twoway_stores_inventory")
    assert "is not mapped" in letter["body"]["reason"] and "syncline map" in letter["body"]["reason"]


def test_store_orders_reach_the_oms_and_their_status_never_moves_back(stack: LocalStack) -> None:
    from syncline.connectors.oms_pg import OmsDatabase

    items = stack.seed_shopify("store_a", ["SKU100"], available=10)
    sandbox = stack.sandboxes["store_a"]
    variant = next(v for v, data in sandbox.variants.items() if data["sku"] == "SKU100")
    order_id = sandbox.add_order([(variant, 2)])
    stack.settle()
    oms = OmsDatabase(lambda: stack._connect("oms"), origin=None)
    stored = oms.get_order(order_id)
    assert stored is not None and stored.lines[0].sku == "SKU100" and stored.lines[0].quantity == 2
    sandbox.update_order(order_id, fulfillment_status="FULFILLED")
    stack.settle()
    fulfilled = oms.get_order(order_id)
    assert fulfilled is not None and fulfilled.status == "fulfilled"
    assert stack.dead_letters("sync_oms_order") == []
    assert items


def test_concurrent_changes_in_the_erp_and_both_stores_converge_without_a_loop(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([(sku, f"Item {sku}") for sku in SKUS])
    erp.set_stock([Stock(sku, "1", Decimal(10)) for sku in SKUS])
    items_a, items_b = stack.seed_shopify("store_a", SKUS), stack.seed_shopify("store_b", SKUS)
    stack.poll_erp()
    stack.settle()
    a, b = stack.sandboxes["store_a"], stack.sandboxes["store_b"]
    writes = a.applied["inventorySetQuantities"] + b.applied["inventorySetQuantities"]
    # The same record changes in all three systems before anything is synced.
    erp.set_stock([Stock("SKU003", "1", Decimal(20))])
    a.set_available(items_a["SKU003"], "gid://shopify/Location/1001", 7)
    b.set_available(items_b["SKU003"], "gid://shopify/Location/2001", 4)
    stack.poll_erp()
    stack.settle()
    final_a = a.quantity(items_a["SKU003"], "gid://shopify/Location/1001")
    final_b = b.quantity(items_b["SKU003"], "gid://shopify/Location/2001")
    assert final_a == final_b == 20  # the ERP's change was applied last: it wins in both stores
    # Bounded: the ERP's write to each store, plus at most one two-way write each; then nothing moves.
    assert a.applied["inventorySetQuantities"] + b.applied["inventorySetQuantities"] - writes <= 4
    assert stack.settle() == 0
    assert _levels(stack, "store_a", items_a) == _levels(stack, "store_b", items_b)
