"""The demo's realistic configuration beyond the storefront: two Shopify stores fed by the ERP and kept in
agreement with each other, store orders into the OMS, and the ERP's spare parts into the Fracttal CMMS,
each against its local sandbox over real HTTP; plus the table per pair that ends the demo."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from syncline.config import DEFAULT_PATH
from syncline.local.sage300 import ItemPrice, Sage300Emulator, Stock
from syncline.local.stack import LocalStack
from syncline.topology import Topology

STORE_SKUS = [f"SKU-{i:04d}" for i in range(10)]  # what the stores sell (at the main warehouse)
SPARE_PARTS = [(f"SP-{i:03d}", name) for i, name in enumerate(["Bearing", "V-belt", "Filter", "Seal kit", "Fuse"])]
WAREHOUSE = "PLANT-1"
PRICE_LIST, COMPARE_AT_LIST, CURRENCY = "WEB", "MSRP", "USD"  # the stores' ERP price list, and the 'was' price
DEMO_SYSTEMS = f"""
# --- the demo's stores, OMS and CMMS (appended to functions/syncline.toml by `syncline demo`) ---
[systems.store_a]
kind = "shopify"
secret = "syncline/store-a"
shop = "demo-store-a.myshopify.com"
[systems.store_a.locations]
main = "7001"

[systems.store_b]
kind = "shopify"
secret = "syncline/store-b"
shop = "demo-store-b.myshopify.com"
[systems.store_b.locations]
main = "8001"

[systems.oms]
kind = "oms"
secret = "syncline/oms"

[systems.cmms]
kind = "fracttal"
secret = "syncline/fracttal"
token_url = "https://app.fracttal.com/oauth/token"
warehouse_code = "{WAREHOUSE}"

[webhooks.store-a]
scheme = "shopify"
secret = "syncline/webhooks/store-a"
system = "store_a"
[webhooks.store-a.topics."inventory_levels/update"]
entity = "inventory_level"
key = ["inventory_item_id", "location_id"]
[webhooks.store-a.topics."orders/create"]
entity = "order"
key = ["id"]
[webhooks.store-a.topics."orders/updated"]
entity = "order"
key = ["id"]

[webhooks.store-b]
scheme = "shopify"
secret = "syncline/webhooks/store-b"
system = "store_b"
[webhooks.store-b.topics."inventory_levels/update"]
entity = "inventory_level"
key = ["inventory_item_id", "location_id"]

[[pairs]]
name = "erp-store-a"
source = "sage300"
target = "store_a"
entity = "inventory_level"
locations = {{ "1" = "main" }}
filters = {{ sku_prefixes = ["SKU-000"], locations = ["1"] }}

[[pairs]]
name = "erp-store-b"
source = "sage300"
target = "store_b"
entity = "inventory_level"
locations = {{ "1" = "main" }}
filters = {{ sku_prefixes = ["SKU-000"], locations = ["1"] }}

[[pairs]]
name = "stores-inventory"
source = "store_a"
target = "store_b"
entity = "inventory_level"
direction = "two_way"

[[pairs]]
name = "store-a-orders"
source = "store_a"
target = "oms"
entity = "order"

[systems.crm]
kind = "hubspot"
secret = "syncline/hubspot"
app_id = "1357924"

[webhooks.crm]
scheme = "hubspot"
secret = "syncline/webhooks/crm"
system = "crm"
[webhooks.crm.topics."contact.creation"]
entity = "contact"
key = ["objectId"]
[webhooks.crm.topics."contact.propertyChange"]
entity = "contact"
key = ["objectId"]

[[pairs]]
name = "crm-customers"
source = "crm"
target = "oms"
entity = "contact"
direction = "two_way"

[[pairs]]
name = "oms-shipments"
source = "oms"
target = "store_a"
entity = "shipment"

[[pairs]]
name = "erp-storefront-prices"
source = "sage300"
target = "storefront"
entity = "price"
prices = {{ price_list = "{PRICE_LIST}", currency = "{CURRENCY}", compare_at_price_list = "{COMPARE_AT_LIST}" }}

[[pairs]]
name = "erp-store-a-prices"
source = "sage300"
target = "store_a"
entity = "price"
prices = {{ price_list = "{PRICE_LIST}", currency = "{CURRENCY}", compare_at_price_list = "{COMPARE_AT_LIST}" }}
filters = {{ sku_prefixes = ["SKU-000"] }}

[[pairs]]
name = "erp-store-b-prices"
source = "sage300"
target = "store_b"
entity = "price"
prices = {{ price_list = "{PRICE_LIST}", currency = "{CURRENCY}", compare_at_price_list = "{COMPARE_AT_LIST}" }}
filters = {{ sku_prefixes = ["SKU-000"] }}

[[pairs]]
name = "erp-cmms-spares"
source = "sage300"
target = "cmms"
entity = "inventory_level"
locations = {{ "1" = "plant" }}
filters = {{ sku_prefixes = ["SP-"], locations = ["1"] }}
"""


def write_demo_config(work_dir: Path) -> Path:
    """The shipped configuration plus the demo's stores, OMS and CMMS."""
    path = work_dir / "syncline.demo.toml"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + DEMO_SYSTEMS, encoding="utf-8")
    return path


def seed(stack: LocalStack, erp: Sage300Emulator) -> None:
    """Products in both stores (mapped by SKU in the identity map), spare parts in the ERP and the CMMS."""
    for store in ("store_a", "store_b"):
        stack.seed_shopify(store, STORE_SKUS)
    erp.add_items(SPARE_PARTS)
    erp.set_stock(Stock(code, "1", Decimal(4 + i)) for i, (code, _) in enumerate(SPARE_PARTS))
    cmms = stack.sandboxes["cmms"]
    for code, _ in SPARE_PARTS[:4]:  # the fifth is not stocked in the CMMS: reported, never created
        cmms.add_item(WAREHOUSE, code, stock=0, unit_cost_stock=12.5)


def seed_prices(erp: Sage300Emulator, items: int) -> None:
    """Web prices for every item, a higher MSRP (the 'compare at' price) for every third, a lower one for every
    seventh (dropped: it would strike through nothing), and two rows no store can take."""
    rows = []
    for i in range(items):
        web = Decimal(10 + i % 50) + Decimal("0.99")
        rows.append(ItemPrice(f"SKU-{i:04d}", PRICE_LIST, web, CURRENCY))
        if i % 3 == 0:
            rows.append(ItemPrice(f"SKU-{i:04d}", COMPARE_AT_LIST, web + 5, CURRENCY))
        elif i % 7 == 0:
            rows.append(ItemPrice(f"SKU-{i:04d}", COMPARE_AT_LIST, web - 1, CURRENCY))
    rows.append(ItemPrice("SKU-QC", PRICE_LIST, Decimal("-4.50"), CURRENCY))  # a typo in the ERP
    rows.append(ItemPrice("SKU-GONE", PRICE_LIST, Decimal("9.99"), CURRENCY))  # priced, missing from ICITEM
    erp.set_prices(rows)


def change_prices(erp: Sage300Emulator, skus: list[str]) -> None:
    """A price update on the web list (some of the stores' SKUs among them) and one new MSRP."""
    erp.set_prices(
        ItemPrice(sku, PRICE_LIST, Decimal(20 + n) + Decimal("0.49"), CURRENCY) for n, sku in enumerate(skus)
    )
    erp.set_prices([ItemPrice(STORE_SKUS[2], COMPARE_AT_LIST, Decimal("99.00"), CURRENCY)])


def prices_agree(stack: LocalStack) -> dict[str, int]:
    """The ERP's web prices (and compare-at prices) against the storefront's prices table and both stores."""
    erp = stack.erp()
    known, prices = erp.item_numbers(), erp.prices()
    expected: dict[str, tuple[Decimal, Decimal | None]] = {}
    for (item, currency, price_list, kind, unit), price in prices.items():
        if (currency, price_list, kind, unit) == (CURRENCY, PRICE_LIST, 1, "EA") and item in known and price >= 0:
            msrp = prices.get((item, CURRENCY, COMPARE_AT_LIST, 1, "EA"))
            expected[item] = (price, msrp if msrp is not None and msrp > price else None)
    stored = {
        sku: (price, compare_at)
        for sku, price, compare_at in stack.storefront()
        .execute(
            "SELECT sku, price, compare_at FROM prices WHERE price_list = %s AND currency = %s", [PRICE_LIST, CURRENCY]
        )
        .fetchall()
    }
    sold = [sku for sku in STORE_SKUS if sku in expected]  # a demo with fewer items prices fewer of them
    in_stores = 0
    for store in ("store_a", "store_b"):
        variants = {data["sku"]: data for data in stack.sandboxes[store].variants.values()}
        for sku in sold:
            shown = variants[sku]
            compare = shown.get("compareAtPrice")
            in_stores += (Decimal(shown["price"]), None if compare is None else Decimal(compare)) == expected[sku]
    return {
        "syncable": len(expected),
        "storefront_agree": sum(1 for sku, value in expected.items() if stored.get(sku) == value),
        "storefront_rows": len(stored),
        "store_prices": 2 * len(sold),
        "stores_agree": in_stores,
    }


def store_activity(stack: LocalStack) -> str:
    """A morning in the stores: sales in each, the same record changed in both, an order placed and fulfilled."""
    a, b = stack.sandboxes["store_a"], stack.sandboxes["store_b"]
    item = {sku: _item(stack, "store_a", sku) for sku in STORE_SKUS}
    item_b = {sku: _item(stack, "store_b", sku) for sku in STORE_SKUS}
    main_a, main_b = "gid://shopify/Location/7001", "gid://shopify/Location/8001"
    for sku in STORE_SKUS[1:4]:
        a.set_available(item[sku], main_a, max(0, a.quantity(item[sku], main_a) - 2))
    b.set_available(item_b[STORE_SKUS[4]], main_b, max(0, b.quantity(item_b[STORE_SKUS[4]], main_b) - 1))
    # Both stores change SKU-0005 before either is synced: the later change wins everywhere (last writer wins).
    a.set_available(item[STORE_SKUS[5]], main_a, 3)
    b.set_available(item_b[STORE_SKUS[5]], main_b, 2)
    variant = next(v for v, data in a.variants.items() if data["sku"] == STORE_SKUS[1])
    order = a.add_order([(variant, 1)])
    stack.settle()
    _ship(stack, "SH-1001", order, STORE_SKUS[1], "1Z-DEMO-1")  # the warehouse ships it: recorded in the OMS
    # The CRM and the OMS each change a customer.
    crm = stack.sandboxes["crm"]
    contact = crm.seed("contacts", {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"})
    crm.user_edit("contacts", contact, {"phone": "+44 20 7946 0000"})
    stack.oms().execute(
        "INSERT INTO customers (customer_id, email, first_name, last_name, updated_at) "
        "VALUES ('C-1', 'grace@example.com', 'Grace', 'Hopper', now())"
    )
    return (
        "3 sales in store A, 1 in store B, SKU-0005 changed in both at once, an order placed and shipped from the "
        "OMS, a contact edited in HubSpot, a customer created in the OMS"
    )


def _ship(stack: LocalStack, shipment_id: str, order_id: str, sku: str, tracking: str) -> None:
    """The OMS's own application records a shipment (its outbox makes it a change to publish)."""
    oms = stack.oms()
    with oms.transaction():
        oms.execute(
            "INSERT INTO shipments (shipment_id, order_id, status, carrier, tracking_number, updated_at) "
            "VALUES (%s, %s, 'shipped', 'UPS', %s, now())",
            [shipment_id, order_id, tracking],
        )
        oms.execute(
            "INSERT INTO shipment_lines (shipment_id, line_no, sku, quantity) VALUES (%s, 1, %s, 1)",
            [shipment_id, sku],
        )


def crm_and_oms_agree(stack: LocalStack) -> bool:
    """Both customers exist on both sides with the same names."""
    crm = stack.sandboxes["crm"]
    for email in ("ada@example.com", "grace@example.com"):
        contact = crm.find("contacts", "email", email)
        row = stack.oms().execute("SELECT first_name, last_name FROM customers WHERE email = %s", [email]).fetchone()
        if contact is None or row is None:
            return False
        if (contact.properties.get("firstname"), contact.properties.get("lastname")) != tuple(row):
            return False
    return True


def _item(stack: LocalStack, store: str, sku: str) -> str:
    sandbox = stack.sandboxes[store]
    variant = next(data for data in sandbox.variants.values() if data["sku"] == sku)
    return str(variant["inventoryItem"])


def stores_agree(stack: LocalStack) -> tuple[int, int]:
    """(records equal in both stores, records compared)."""
    a, b = stack.sandboxes["store_a"], stack.sandboxes["store_b"]
    equal = sum(
        a.quantity(_item(stack, "store_a", sku), "gid://shopify/Location/7001")
        == b.quantity(_item(stack, "store_b", sku), "gid://shopify/Location/8001")
        for sku in STORE_SKUS
    )
    return equal, len(STORE_SKUS)


def pair_figures(stack: LocalStack, log_file: Path) -> list[dict[str, Any]]:
    """Per pair, from the functions' own structured logs: changes seen, synced, skipped or echoes, conflicts,
    and what is in its dead-letter queue now."""
    config, topology = stack.config, stack.topology
    figures: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for line in log_file.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        message = record.get("message")
        if message == "batch synced" and record.get("pair"):
            row = figures[record["pair"]]
            row["seen"] += record.get("notices", 0)
            row["synced"] += record.get("synced", 0)
            row["skipped"] += record.get("skipped_unchanged", 0) + record.get("skipped_stale", 0)
        elif message == "batch synced":
            target = str(record.get("function_name", "")).removeprefix(f"{config.app}-sync_")
            if any(p.target == target and p.direction == "one_way" for p in config.pairs):
                row = figures[config.one_way_pair(target, "inventory_level").name]
                row["seen"] += record.get("notices", 0)
                row["synced"] += record.get("synced", 0)
                row["skipped"] += record.get("skipped_unchanged", 0) + record.get("skipped_stale", 0)
        elif message == "two-way batch":
            row = figures[record["pair"]]
            row["seen"] += record.get("notices", 0)
            row["synced"] += record.get("writes", 0)
            row["skipped"] += record.get("echoes", 0)
            row["settled"] += record.get("settled_by_policy", 0)
            row["review"] += record.get("conflicts", 0)
        elif message in {"order batch", "shipment batch"}:
            row = figures[record["pair"]]
            row["seen"] += record.get("notices", 0)
            row["synced"] += record.get("written", 0)
            row["skipped"] += len(record.get("skipped", {}))
    rows = []
    for pair in config.pairs:
        row = figures[pair.name]
        rows.append(
            {
                "pair": pair.name,
                "direction": "↔" if pair.direction == "two_way" else "→",
                "systems": f"{pair.source} {'↔' if pair.direction == 'two_way' else '→'} {pair.target}",
                "entity": pair.entity,
                "seen": row["seen"],
                "synced": row["synced"],
                "skipped": row["skipped"],
                "settled": row["settled"],
                "review": row["review"],
                "dlq": len(stack.dead_letters(_queue_of(topology, pair.name))),
            }
        )
    return rows


def _queue_of(topology: Topology, pair_name: str) -> str:
    return next(queue.id for queue in topology.queues if pair_name in queue.pairs)


def print_pairs(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(title="Per sync pair", title_justify="left")
    for column in ("pair", "systems", "entity", "changes seen", "synced", "skipped / echo", "conflicts", "DLQ"):
        table.add_column(column, justify="left" if column in {"pair", "systems", "entity"} else "right")
    for row in rows:
        conflicts = "-"
        if row["settled"] or row["review"]:
            conflicts = f"{row['settled']} by policy" + (f", {row['review']} for review" if row["review"] else "")
        table.add_row(
            row["pair"],
            row["systems"],
            row["entity"],
            str(row["seen"]),
            str(row["synced"]),
            str(row["skipped"]),
            conflicts,
            str(row["dlq"]),
        )
    console.print(table)
    console.print(
        "changes seen: notices the pair's worker received · synced: records written · skipped: already equal "
        "(one-way) or our own write coming back (two-way echo) · conflicts: records both stores changed, settled "
        "by the pair's policy (last writer wins) or left for `syncline conflicts`."
    )
