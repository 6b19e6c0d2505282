"""OMS shipments -> Shopify fulfilment status on the local stack: an order placed in the store reaches the OMS,
a shipment the OMS's application records is drained from its outbox, and the shipment worker fulfils the order in
the store once, with its tracking; the store's orders/updated webhook brings the status back to the OMS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncline.connectors.oms_pg import OmsDatabase
from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

ORDERS = """
[systems.store_a]
kind = "shopify"
secret = "syncline/store-a"
shop = "store-a.myshopify.com"
[systems.store_a.locations]
main = "1001"

[systems.oms]
kind = "oms"
secret = "syncline/oms"

[webhooks.shopify-a]
scheme = "shopify"
secret = "syncline/webhooks/shopify-a"
system = "store_a"
[webhooks.shopify-a.topics."orders/create"]
entity = "order"
key = ["id"]
[webhooks.shopify-a.topics."orders/updated"]
entity = "order"
key = ["id"]

[[pairs]]
name = "store-a-orders"
source = "store_a"
target = "oms"
entity = "order"

"""
STORE = (
    ORDERS
    + """[[pairs]]
name = "oms-shipments"
source = "oms"
target = "store_a"
entity = "shipment"
"""
)


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, STORE) as local:
        yield local


def _ship(stack: LocalStack, shipment_id: str, order_id: str, lines: list[tuple[str, int]], tracking: str) -> None:
    """The OMS's own application records a shipment (not Syncline: its outbox row is a change to publish)."""
    oms = stack.oms()
    with oms.transaction():
        oms.execute(
            "INSERT INTO shipments (shipment_id, order_id, status, carrier, tracking_number, updated_at) "
            "VALUES (%s, %s, 'shipped', 'UPS', %s, now())",
            [shipment_id, order_id, tracking],
        )
        for number, (sku, quantity) in enumerate(lines, start=1):
            oms.execute(
                "INSERT INTO shipment_lines (shipment_id, line_no, sku, quantity) VALUES (%s, %s, %s, %s)",
                [shipment_id, number, sku, quantity],
            )


def test_shipments_in_the_oms_fulfil_the_store_order_once_each(stack: LocalStack) -> None:
    stack.seed_shopify("store_a", ["SKU-1", "SKU-2"], available=10)
    store = stack.sandboxes["store_a"]
    variant = {data["sku"]: gid for gid, data in store.variants.items()}
    order_id = store.add_order([(variant["SKU-1"], 2), (variant["SKU-2"], 1)])
    stack.settle()
    connection = stack.oms()
    oms = OmsDatabase(lambda: connection, origin=None)
    assert oms.get_order(order_id) is not None

    # 1. A first parcel with one of the two SKUs: the order is partially fulfilled, with the parcel's tracking.
    _ship(stack, "SH-1", order_id, [("SKU-1", 2)], "1Z-FIRST")
    stack.settle()
    assert store.orders[order_id]["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert [f["trackingInfo"][0]["number"] for f in store.fulfillments[order_id]] == ["1Z-FIRST"]

    # 2. The OMS touches the first shipment again (delivered): a notice, but nothing to fulfil twice.
    stack.oms().execute("UPDATE shipments SET status = 'delivered' WHERE shipment_id = 'SH-1'")
    stack.settle()
    assert store.applied["fulfillmentCreate"] == 1

    # 3. The rest ships: the order is fulfilled in the store, and the status comes back into the OMS.
    _ship(stack, "SH-2", order_id, [("SKU-2", 1)], "1Z-SECOND")
    stack.settle()
    assert store.orders[order_id]["displayFulfillmentStatus"] == "FULFILLED"
    assert store.applied["fulfillmentCreate"] == 2
    stored = oms.get_order(order_id)
    assert stored is not None and stored.status == "fulfilled"

    assert stack.settle() == 0
    for queue in stack.topology.queues:
        assert stack.dead_letters(queue.id) == [], queue.id


def test_a_shipment_for_an_order_the_store_does_not_have_is_dead_lettered(stack: LocalStack) -> None:
    stack.seed_shopify("store_a", ["SKU-1"])
    _ship(stack, "SH-9", "gid://shopify/Order/42", [("SKU-1", 1)], "1Z-NOWHERE")
    stack.settle()
    letters = stack.dead_letters("sync_store_a_shipment")
    assert [letter["body"]["notice"]["key"] for letter in letters] == ["SH-9"]
    assert "not in the store" in letters[0]["body"]["reason"]
    assert stack.sandboxes["store_a"].applied["fulfillmentCreate"] == 0
