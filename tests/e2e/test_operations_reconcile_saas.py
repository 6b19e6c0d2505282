"""`syncline reconcile` of one-way ERP inventory into SaaS targets, on the local stack with the Shopify and Fracttal
sandboxes over real HTTP: planted discrepancies are found exactly, --apply repairs them through the sync worker's
write path, products the ERP lacks are left (and the report says why), and once the store agrees the pair is 100 %."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.conftest import load_event
from tests.e2e.helpers import bus_tap
from tests.e2e.reconcile_helpers import cli, found, sandbox_stack
from tests.e2e.test_fracttal_spare_parts import CMMS

STORE = """
[systems.store_a]
kind = "shopify"
secret = "syncline/store-a"
shop = "store-a.myshopify.com"
[systems.store_a.locations]
main = "1001"
east = "1002"

[[pairs]]
name = "erp-store-a"
source = "sage300"
target = "store_a"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
"2" = "east"
"""


SKUS = [f"SKU{i:03d}" for i in range(6)]
MAIN, EAST = "gid://shopify/Location/1001", "gid://shopify/Location/1002"


@pytest.fixture
def shop(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, STORE) as local:
        yield local


@pytest.fixture
def cmms_stack(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, CMMS) as local:
        yield local


def test_reconcile_into_shopify_finds_repairs_and_leaves_what_it_must(shop: LocalStack, tmp_path: Path) -> None:
    # Given six SKUs at two locations synced from the ERP into the store
    erp, sandbox = shop.erp(), shop.sandboxes["store_a"]
    erp.add_items([(sku, f"Item {sku}") for sku in SKUS])
    erp.set_stock(
        [Stock(sku, location, Decimal(10 + i), committed=Decimal(1)) for i, sku in enumerate(SKUS) for location in "12"]
    )
    items = shop.seed_shopify("store_a", SKUS)
    shop.poll_erp()
    shop.settle()
    assert sandbox.quantity(items["SKU001"], MAIN) == 10

    # ...then a merchant's edit, an ERP row deleted, an ERP change never polled, a level removed from the store,
    # and a product nobody mapped (not Syncline's: never compared)
    sandbox.set_available(items["SKU001"], MAIN, 500)
    with shop.postgres.connect("sage300") as admin:
        admin.execute("DELETE FROM ICILOC WHERE ITEMNO = 'SKU002' AND LOCATION = '2'")
    erp.set_stock([Stock("SKU003", "1", Decimal(40), committed=Decimal(1))])
    with sandbox.lock:
        del sandbox.levels[(items["SKU004"], EAST)]
    stranger = sandbox.add_product("Not in the ERP", [{"sku": "ZZZ", "price": "1.00"}]).inventory_item_ids[0]
    sandbox.stock(stranger, MAIN, available=3)

    # When the pair is compared (dry run)
    code, dry = cli(shop, "reconcile", "erp-store-a", "--json", "--report", str(tmp_path / "dry.json"))

    # Then exactly the planted discrepancies are reported, the SaaS ones with what apply will do about them
    assert code == 4
    before = dry["before"]
    assert found(before) == {
        ("mismatch", "SKU001|main"),
        ("missing_in_source", "SKU002|east"),
        ("mismatch", "SKU003|main"),
        ("missing_in_target", "SKU004|east"),
    }
    by_key = {d["key"]: d for d in before["discrepancies"]}
    assert by_key["SKU001|main"]["fields"] == {"available": ["10", "500"]}
    assert "never deletes" in by_key["SKU002|east"]["note"]
    assert "does not stock" in by_key["SKU004|east"]["note"]
    assert (before["compared"], before["in_agreement"], before["counts"]["mismatch"]) == (12, 8, 2)
    assert before["source"] == "sage300 (sage300)" and before["target"] == "store_a (shopify)"
    assert sandbox.quantity(items["SKU001"], MAIN) == 500  # a dry run writes nothing
    code, text = cli(shop, "reconcile", "erp-store-a", "--report", str(tmp_path / "dry-text.json"))
    assert code == 4 and "consistency 66.6667%" in text
    assert "note (1): left: store_a is a SaaS target and reconcile never deletes its products" in text

    # When --apply runs
    code, applied = cli(shop, "reconcile", "erp-store-a", "--apply", "--json", "--report", str(tmp_path / "a.json"))

    # Then the quantities are repaired through the worker's write path, the state cache committed...
    assert code == 4
    assert (applied["applied"]["upserted"], applied["applied"]["left"], applied["applied"]["unchanged"]) == (2, 1, 1)
    assert sandbox.quantity(items["SKU001"], MAIN) == 10 and sandbox.quantity(items["SKU003"], MAIN) == 39
    state = boto3.client("dynamodb").get_item(
        TableName=shop.resources.table, Key={"pk": {"S": "ST#erp-store-a#inventory_level#SKU003|main"}}
    )
    assert "Item" in state
    # ...the product the ERP lost is left in the store, and the unstocked level is not stocked by Syncline
    assert (items["SKU002"], EAST) in sandbox.levels
    assert found(applied["after"]) == {("missing_in_source", "SKU002|east"), ("missing_in_target", "SKU004|east")}

    # When the merchant stocks SKU004 at east and removes SKU002 there, and apply runs again
    sandbox.stock(items["SKU004"], EAST, available=0)
    with sandbox.lock:
        del sandbox.levels[(items["SKU002"], EAST)]
    code, again = cli(shop, "reconcile", "erp-store-a", "--apply", "--json", "--report", str(tmp_path / "b.json"))

    # Then the pair converges: 100 % consistent
    assert code == 0, again["after"]["discrepancies"]
    assert sandbox.quantity(items["SKU004"], EAST) == 13
    code, text = cli(shop, "reconcile", "erp-store-a", "--report", str(tmp_path / "c.json"))
    assert code == 0 and "consistency 100.0000%" in text
    # ...and the scheduled reconciler measures the store pair the same way
    invocation = shop.functions["reconciler"].invoke(load_event("reconcile_scheduled.json"))
    assert invocation.error is None
    summary = next(s for s in invocation.response["pairs"] if s["pair"] == "erp-store-a")
    assert (summary["compared"], summary["consistency"]) == (11, 1.0)  # SKU002|east is gone from both


def test_reconcile_into_fracttal_compares_the_warehouse_within_the_pairs_filters(
    cmms_stack: LocalStack, tmp_path: Path
) -> None:
    # Given spare parts synced into the CMMS warehouse (other SKUs and locations are not the pair's business)
    cmms, erp = cmms_stack.sandboxes["cmms"], cmms_stack.erp()
    for code in ("SP-100", "SP-200", "SP-400"):
        cmms.add_item("MAIN-WH", code, stock=0, unit_cost_stock=4.5)
    cmms.add_item("MAIN-WH", "FG-9", stock=1)  # outside the pair's SKU prefixes: not compared
    erp.add_items([("SP-100", "Bearing"), ("SP-200", "Belt"), ("SP-300", "Not in the CMMS"), ("FG-1", "Product")])
    erp.set_stock(
        [
            Stock("SP-100", "1", Decimal(7)),
            Stock("SP-100", "2", Decimal(99)),
            Stock("SP-200", "1", Decimal(3)),
            Stock("SP-300", "1", Decimal(5)),
            Stock("FG-1", "1", Decimal(40)),
        ]
    )
    cmms_stack.poll_erp()
    cmms_stack.settle()
    assert cmms.stock("MAIN-WH", "SP-200") == 3
    # ...then a hand edit in the CMMS and an ERP change never polled
    with cmms.lock:
        cmms.items[(cmms._warehouse_id("MAIN-WH"), "SP-200")]["stock"] = 50
    erp.set_stock([Stock("SP-100", "1", Decimal(6))])

    # When compared
    code, dry = cli(cmms_stack, "reconcile", "erp-cmms-spares", "--json", "--report", str(tmp_path / "d.json"))

    # Then: two mismatches, a part the CMMS does not stock, a part the ERP does not have
    assert code == 4
    assert found(dry["before"]) == {
        ("mismatch", "SP-100|main"),
        ("mismatch", "SP-200|main"),
        ("missing_in_target", "SP-300|main"),
        ("missing_in_source", "SP-400|main"),
    }
    stock = next(d for d in dry["before"]["discrepancies"] if d["key"] == "SP-200|main")["fields"]["stock"]
    assert [Decimal(value) for value in stock] == [3, 50]

    # When applied: stock written through the worker's path, nothing created, nothing deleted
    code, applied = cli(
        cmms_stack, "reconcile", "erp-cmms-spares", "--apply", "--json", "--report", str(tmp_path / "a")
    )
    assert code == 4
    assert (applied["applied"]["upserted"], applied["applied"]["unchanged"], applied["applied"]["left"]) == (2, 1, 1)
    assert (cmms.stock("MAIN-WH", "SP-100"), cmms.stock("MAIN-WH", "SP-200")) == (6, 3)
    assert found(applied["after"]) == {("missing_in_target", "SP-300|main"), ("missing_in_source", "SP-400|main")}

    # When the CMMS stocks SP-300 and drops SP-400, apply converges the pair
    cmms.add_item("MAIN-WH", "SP-300", stock=0)
    with cmms.lock:
        del cmms.items[(cmms._warehouse_id("MAIN-WH"), "SP-400")]
    code, again = cli(cmms_stack, "reconcile", "erp-cmms-spares", "--apply", "--json", "--report", str(tmp_path / "b"))
    assert code == 0, again["after"]["discrepancies"]
    assert cmms.stock("MAIN-WH", "SP-300") == 5
    assert again["after"]["consistency"] == 1.0
    invocation = cmms_stack.functions["reconciler"].invoke(load_event("reconcile_scheduled.json"))
    assert invocation.error is None
    summary = next(s for s in invocation.response["pairs"] if s["pair"] == "erp-cmms-spares")
    assert (summary["compared"], summary["consistency"]) == (3, 1.0)


TWO_STORES = """
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

[[pairs]]
name = "stores-inventory"
source = "store_a"
target = "store_b"
entity = "inventory_level"
direction = "two_way"
"""


@pytest.fixture
def stores(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, TWO_STORES) as local:
        yield local


def test_reconcile_of_two_shopify_stores_reads_every_level_and_the_newest_change_wins(
    stores: LocalStack, tmp_path: Path
) -> None:
    # Given two stores stocking the same SKUs at the same canonical locations
    a, b = stores.sandboxes["store_a"], stores.sandboxes["store_b"]
    items_a, items_b = stores.seed_shopify("store_a", SKUS[:3]), stores.seed_shopify("store_b", SKUS[:3])
    # ...then a sale in A and a recount in B that no webhook reported, and a level B no longer stocks
    a.set_available(items_a["SKU001"], MAIN, 5)
    b.set_available(items_b["SKU002"], "gid://shopify/Location/2002", 7)
    with b.lock:
        del b.levels[(items_b["SKU000"], "gid://shopify/Location/2002")]

    code, dry = cli(stores, "reconcile", "stores-inventory", "--json", "--report", str(tmp_path / "dry.json"))
    assert code == 4
    assert found(dry["before"]) == {
        ("mismatch", "SKU001|main"),
        ("mismatch", "SKU002|east"),
        ("missing_in_target", "SKU000|east"),
    }
    assert (dry["before"]["compared"], dry["before"]["in_agreement"]) == (6, 3)
    unstocked = next(d for d in dry["before"]["discrepancies"] if d["kind"] == "missing_in_target")
    assert "stocks the item" in unstocked["note"]

    # When applied: the pair's sync settles each key by its policy (last writer wins), in both directions
    code, applied = cli(stores, "reconcile", "stores-inventory", "--apply", "--json", "--report", str(tmp_path / "a"))
    assert b.quantity(items_b["SKU001"], "gid://shopify/Location/2001") == 5
    assert a.quantity(items_a["SKU002"], EAST) == 7
    # ...and a level the store does not stock is not stocked by Syncline: the write is refused and reported
    assert code == 4
    assert applied["applied"]["resynced"] == 2
    assert [key for key, _ in applied["applied"]["rejected"]] == ["SKU000|east"]
    assert found(applied["after"]) == {("missing_in_target", "SKU000|east")}


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

[[pairs]]
name = "store-a-orders"
source = "store_a"
target = "oms"
entity = "order"
"""


@pytest.fixture
def orders_stack(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, ORDERS) as local:
        yield local


def _oms_orders(stack: LocalStack) -> dict[str, tuple[str, str]]:
    rows = stack.oms().execute("SELECT order_id, status, financial_status FROM orders").fetchall()
    return {order_id: (status, financial) for order_id, status, financial in rows}


def test_reconcile_of_an_order_pair_reruns_the_orders_that_differ_through_the_worker(
    orders_stack: LocalStack, tmp_path: Path
) -> None:
    # Given three store orders whose notices were lost, and one the OMS synced earlier
    store = orders_stack.sandboxes["store_a"]
    variant = store.add_product("Mug", [{"sku": "MUG-1", "price": "12.50"}]).variant_ids[0]
    first, second, third = (store.add_order([(variant, n)]) for n in (1, 2, 3))
    code, synced = cli(
        orders_stack, "reconcile", "store-a-orders", "--apply", "--json", "--report", str(tmp_path / "0")
    )
    assert code == 0 and found(synced["before"]) == {("missing_in_target", o) for o in (first, second, third)}
    assert set(_oms_orders(orders_stack)) == {first, second, third}
    assert synced["after"]["consistency"] == 1.0

    # ...then the store fulfils one and refunds another (notices lost again), the OMS holds an order the store no
    # longer has, and one of its own (not the store's: never compared)
    store.update_order(first, fulfillment_status="FULFILLED")
    store.update_order(second, financial_status="REFUNDED")
    with store.lock:
        del store.orders[third]
    orders_stack.oms().execute(
        "INSERT INTO orders (order_id, status, financial_status, currency, total, placed_at, updated_at) "
        "VALUES ('POS-1', 'confirmed', 'paid', 'USD', 5, now(), now())"
    )
    orders_stack.oms().execute(
        "INSERT INTO order_lines (order_id, line_id, sku, quantity, unit_price) VALUES ('POS-1', '1', 'MUG-1', 1, 5)"
    )

    # When compared
    code, dry = cli(orders_stack, "reconcile", "store-a-orders", "--json", "--report", str(tmp_path / "d.json"))

    # Then exactly those: two status mismatches and an order the store lacks (left, with the reason)
    assert code == 4
    assert found(dry["before"]) == {("mismatch", first), ("mismatch", second), ("missing_in_source", third)}
    by_key = {d["key"]: d for d in dry["before"]["discrepancies"]}
    assert by_key[first]["fields"]["status"] == ["fulfilled", "confirmed"]
    assert "never deletes an order" in by_key[third]["note"]

    # When applied: the two orders go through the order worker's guarded upsert; the third is left
    code, applied = cli(
        orders_stack, "reconcile", "store-a-orders", "--apply", "--json", "--report", str(tmp_path / "a")
    )
    assert (applied["applied"]["upserted"], applied["applied"]["left"]) == (2, 1)
    assert _oms_orders(orders_stack)[first][0] == "fulfilled"
    assert _oms_orders(orders_stack)[second][1] == "refunded"
    assert code == 4 and found(applied["after"]) == {("missing_in_source", third)}


SHIPMENTS = (
    ORDERS
    + """
[[pairs]]
name = "oms-shipments"
source = "oms"
target = "store_a"
entity = "shipment"
"""
)


@pytest.fixture
def shipments_stack(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, SHIPMENTS) as local:
        yield local


def _ship(stack: LocalStack, shipment_id: str, order_id: str, sku: str, quantity: int, status: str = "shipped") -> None:
    """The OMS's own application records a shipment (its outbox notice is never drained here: lost)."""
    oms = stack.oms()
    with oms.transaction():
        oms.execute(
            "INSERT INTO shipments (shipment_id, order_id, status, carrier, tracking_number, updated_at) "
            "VALUES (%s, %s, %s, 'UPS', %s, now())",
            [shipment_id, order_id, status, f"1Z-{shipment_id}"],
        )
        oms.execute(
            "INSERT INTO shipment_lines (shipment_id, line_no, sku, quantity) VALUES (%s, 1, %s, %s)",
            [shipment_id, sku, quantity],
        )


def test_reconcile_of_a_shipment_pair_fulfils_what_the_store_lacks_once(
    shipments_stack: LocalStack, tmp_path: Path
) -> None:
    # Given a store order that reached the OMS, and shipments the OMS recorded whose notices were lost
    stack = shipments_stack
    store = stack.sandboxes["store_a"]
    stack.seed_shopify("store_a", ["SKU-1", "SKU-2"], available=10)
    variant = {data["sku"]: gid for gid, data in store.variants.items()}
    order_id = store.add_order([(variant["SKU-1"], 2), (variant["SKU-2"], 1)])
    assert cli(stack, "reconcile", "store-a-orders", "--apply", "--report", str(tmp_path / "o.json"))[0] == 0
    _ship(stack, "SH-1", order_id, "SKU-1", 2)
    _ship(stack, "SH-2", order_id, "SKU-2", 1)
    _ship(stack, "SH-3", order_id, "SKU-2", 1, status="pending")  # not shipped: nothing the store should show
    stack.oms().execute(
        "INSERT INTO orders (order_id, status, financial_status, currency, total, placed_at, updated_at) "
        "VALUES ('POS-9', 'confirmed', 'paid', 'USD', 5, now(), now())"
    )
    _ship(stack, "SH-9", "POS-9", "SKU-1", 1)  # an order the store does not have

    # When compared: every shipped shipment lacks its fulfilment in the store
    code, dry = cli(stack, "reconcile", "oms-shipments", "--json", "--report", str(tmp_path / "d.json"))
    assert code == 4
    assert found(dry["before"]) == {("missing_in_target", s) for s in ("SH-1", "SH-2", "SH-9")}
    assert store.applied["fulfillmentCreate"] == 0

    # When applied: the shipment worker fulfils the order once per parcel, announcing each fulfilment on the bus
    # as the worker does; the foreign order is reported
    take = bus_tap(stack, "shipment-events", ["ShipmentCreated"])
    code, applied = cli(stack, "reconcile", "oms-shipments", "--apply", "--json", "--report", str(tmp_path / "a"))
    assert code == 4
    assert applied["applied"]["upserted"] == 2
    assert [key for key, _ in applied["applied"]["rejected"]] == ["SH-9"]
    assert "not in the store" in applied["applied"]["rejected"][0][1]
    assert store.orders[order_id]["displayFulfillmentStatus"] == "FULFILLED"
    assert sorted(f["trackingInfo"][0]["number"] for f in store.fulfillments[order_id]) == ["1Z-SH-1", "1Z-SH-2"]
    assert found(applied["after"]) == {("missing_in_target", "SH-9")}
    assert sorted(event["detail"]["event_id"] for event in take()) == [
        "ShipmentCreated:oms-shipments:SH-1",
        "ShipmentCreated:oms-shipments:SH-2",
    ]

    # When applied again, nothing is fulfilled twice, nor announced
    cli(stack, "reconcile", "oms-shipments", "--apply", "--report", str(tmp_path / "b.json"))
    assert store.applied["fulfillmentCreate"] == 2
    assert take() == []
