"""`syncline reconcile` of pairs with a Salesforce org or a generic REST system, on the local stack (the Salesforce
and generic REST sandboxes over real HTTP, the OMS, a record table and the emulated ERP in PostgreSQL): two-way
contacts and polled records, and ERP stock into a REST target. Each side is listed in full through its own API's
paging (SOQL's nextRecordsUrl, the REST list's cursor or offset), discrepancies nobody notified are found exactly,
--apply settles them through the pair's own write path, and a second compare agrees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncline.adapters.pg_records import PostgresRecords
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.topology import rest_poll_schedule_id
from tests.e2e.reconcile_helpers import cli, found, sandbox_stack
from tests.e2e.test_salesforce_oms import CRM

PIM = """
[systems.pim]
kind = "rest"
secret = "syncline/pim"
base_url = "https://pim.example.com"
auth = { kind = "bearer" }
poll_seconds = 120

[systems.pim.entities.product]
key_field = "sku"
list = { path = "/api/products", records_path = "results" }
get = { path = "/api/products/{key}", record_path = "data" }
upsert = { path = "/api/products/{key}", method = "PUT", record_path = "data" }
pagination = { style = "cursor", page_size = 2, cursor_path = "next.cursor" }

[systems.pim.entities.product.fields]
sku = "code"
title = "name"
price = { source = "price", transform = "decimal" }
updated_at = "updated_at"

[systems.catalog]
kind = "postgres"
secret = "syncline/catalog"
table = "catalog_records"

[[pairs]]
name = "pim-catalog"
source = "pim"
target = "catalog"
entity = "product"
direction = "two_way"
"""

POS = """
[systems.pos]
kind = "rest"
secret = "syncline/pos"
base_url = "https://pos.example.com"
auth = { kind = "api_key", header = "X-API-Key" }

[systems.pos.entities.inventory_level]
key_field = "key"
list = { path = "/api/stock", records_path = "items" }
get = { path = "/api/stock/{key}", record_path = "data" }
upsert = { path = "/api/stock/{key}", method = "PUT", record_path = "data" }
pagination = { style = "offset", page_size = 2, total_path = "total" }

[systems.pos.entities.inventory_level.fields]
key = "id"
sku = "item.sku"
location = "store"
available = { source = "qty", transform = "decimal" }
source_version = { source = "version", transform = "int" }

[[pairs]]
name = "erp-pos-stock"
source = "sage300"
target = "pos"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
[pairs.filters]
locations = ["1"]
"""


@pytest.fixture
def crm(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, CRM) as local:
        yield local


@pytest.fixture
def pim(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, PIM) as local:
        local.sandboxes["pim"].collections["products"].pagination = "cursor"
        yield local


@pytest.fixture
def pos(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, POS) as local:
        local.sandboxes["pos"].collections["stock"].pagination = "offset"
        yield local


def _first_name(stack: LocalStack, email: str) -> str | None:
    row = stack.oms().execute("SELECT first_name FROM customers WHERE lower(email) = %s", [email]).fetchone()
    return None if row is None else str(row[0])


def test_reconcile_of_salesforce_contacts_and_oms_customers_settles_what_no_event_reported(
    crm: LocalStack, tmp_path: Path
) -> None:
    # Given four contacts synced from Salesforce, listed two per SOQL page
    sfdc = crm.sandboxes["sfdc"]
    sfdc.page_size = 2
    ids = {
        f"{name.lower()}@example.com": sfdc.create(
            "Contact", {"Email": f"{name}@Example.com", "FirstName": name, "LastName": "Doe"}
        )
        for name in ("Ada", "Bob", "Cy", "Di")
    }
    crm.settle()
    code, clean = cli(crm, "reconcile", "sf-customers", "--json", "--report", str(tmp_path / "0.json"))
    assert code == 0, clean
    assert (clean["before"]["compared"], clean["before"]["consistency"]) == (4, 1.0)

    # ...then changes no event delivered: an edit in the OMS, a contact new in Salesforce, a customer new in the OMS
    oms = crm.oms()
    oms.execute(
        "UPDATE customers SET first_name = 'Adele', updated_at = clock_timestamp() WHERE email = 'ada@example.com'"
    )
    sfdc.create("Contact", {"Email": "eve@example.com", "FirstName": "Eve", "LastName": "Doe"})
    oms.execute(
        "INSERT INTO customers (customer_id, email, first_name, last_name, lifecycle_stage, updated_at) "
        "VALUES ('C-9', 'fay@example.com', 'Fay', 'Doe', 'lead', now())"
    )

    # When compared: exactly those three are found
    code, dry = cli(crm, "reconcile", "sf-customers", "--json", "--report", str(tmp_path / "d.json"))
    assert code == 4
    assert found(dry["before"]) == {
        ("mismatch", "ada@example.com"),
        ("missing_in_target", "eve@example.com"),
        ("missing_in_source", "fay@example.com"),
    }
    mismatch = next(d for d in dry["before"]["discrepancies"] if d["kind"] == "mismatch")
    assert mismatch["fields"] == {"first_name": ["Ada", "Adele"]}  # the OMS's lifecycle stage is not compared

    # When applied: the pair's sync settles each, in both directions
    code, applied = cli(crm, "reconcile", "sf-customers", "--apply", "--json", "--report", str(tmp_path / "a.json"))
    assert code == 0, applied
    assert applied["applied"]["resynced"] == 3 and applied["applied"]["rejected"] == []
    assert sfdc.record("Contact", ids["ada@example.com"])["FirstName"] == "Adele"
    assert _first_name(crm, "eve@example.com") == "Eve"
    created = sfdc.by_external_id("Contact", "Syncline_Id__c", "fay@example.com")
    assert created is not None and created["FirstName"] == "Fay"

    # Then a second compare agrees on all six
    code, again = cli(crm, "reconcile", "sf-customers", "--json", "--report", str(tmp_path / "b.json"))
    assert code == 0
    assert (again["before"]["compared"], again["before"]["consistency"]) == (6, 1.0)


def test_reconcile_of_a_polled_rest_system_and_a_record_table_settles_what_no_poll_saw(
    pim: LocalStack, tmp_path: Path
) -> None:
    # Given five products polled from the PIM into the table, the PIM listing two per page
    products = pim.sandboxes["pim"].collections["products"].records
    for i in range(1, 6):
        products[f"P-{i}"] = {
            "code": f"P-{i}",
            "name": f"Part {i}",
            "price": "10.00",
            "updated_at": "2026-11-23T10:00:00+00:00",
        }
    assert pim.run_schedule(rest_poll_schedule_id("pim")).error is None
    pim.settle()
    code, clean = cli(pim, "reconcile", "pim-catalog", "--json", "--report", str(tmp_path / "0.json"))
    assert code == 0, clean
    assert (clean["before"]["compared"], clean["before"]["consistency"]) == (5, 1.0)

    # ...then changes before any poll: a rename in the PIM, a product gone from it, an edit in the table, a new one
    catalog = PostgresRecords("catalog", pim.storefront, "catalog_records")
    products["P-1"] = {**products["P-1"], "name": "Pump", "updated_at": datetime.now(UTC).isoformat()}
    del products["P-2"]
    catalog.edit("P-3", {"title": "Part 3", "price": "11.50"})
    products["P-6"] = {"code": "P-6", "name": "Part 6", "price": "6.00", "updated_at": datetime.now(UTC).isoformat()}

    # When compared: exactly those four are found
    code, dry = cli(pim, "reconcile", "pim-catalog", "--json", "--report", str(tmp_path / "d.json"))
    assert code == 4
    assert found(dry["before"]) == {
        ("mismatch", "P-1"),
        ("missing_in_source", "P-2"),
        ("mismatch", "P-3"),
        ("missing_in_target", "P-6"),
    }

    # When applied: each is settled by the pair's sync (P-2, gone from the PIM only, is restored from the table)
    code, applied = cli(pim, "reconcile", "pim-catalog", "--apply", "--json", "--report", str(tmp_path / "a.json"))
    assert code == 0, applied
    assert applied["applied"]["resynced"] == 4 and applied["applied"]["rejected"] == []
    assert catalog.read("P-1").values["title"] == "Pump"  # type: ignore[union-attr]
    assert products["P-2"]["name"] == "Part 2"
    assert products["P-3"]["price"] == "11.50"
    assert catalog.read("P-6").values == {"title": "Part 6", "price": "6.00"}  # type: ignore[union-attr]

    # Then a second compare agrees on all six
    code, again = cli(pim, "reconcile", "pim-catalog", "--json", "--report", str(tmp_path / "b.json"))
    assert code == 0
    assert (again["before"]["compared"], again["before"]["consistency"]) == (6, 1.0)


def test_reconcile_of_erp_stock_into_a_rest_target_writes_through_the_worker_and_never_deletes(
    pos: LocalStack, tmp_path: Path
) -> None:
    # Given four levels synced into the POS (listed two per page) and one at a location the pair does not carry
    stock = pos.sandboxes["pos"].collections["stock"].records
    erp = pos.erp()
    erp.add_items([(f"SKU-{i}", f"Item {i}") for i in range(1, 6)])
    erp.set_stock([Stock(f"SKU-{i}", "1", Decimal(10 + i)) for i in range(1, 5)] + [Stock("SKU-5", "2", Decimal(3))])
    pos.poll_erp()
    pos.settle()
    assert set(stock) == {f"SKU-{i}|main" for i in range(1, 5)}
    code, clean = cli(pos, "reconcile", "erp-pos-stock", "--json", "--report", str(tmp_path / "0.json"))
    assert code == 0, clean
    assert (clean["before"]["compared"], clean["before"]["consistency"]) == (4, 1.0)

    # ...then a hand edit in the POS, a level lost there, a recount nobody polled yet, a level the ERP never had
    with pos.sandboxes["pos"].lock:
        stock["SKU-1|main"]["qty"] = "99"
        del stock["SKU-2|main"]
        stock["SKU-9|main"] = {"id": "SKU-9|main", "item": {"sku": "SKU-9"}, "store": "main", "qty": "1", "version": 1}
    erp.set_stock([Stock("SKU-3", "1", Decimal(4))])

    # When compared: exactly those four
    code, dry = cli(pos, "reconcile", "erp-pos-stock", "--json", "--report", str(tmp_path / "d.json"))
    assert code == 4
    assert found(dry["before"]) == {
        ("mismatch", "SKU-1|main"),
        ("missing_in_target", "SKU-2|main"),
        ("mismatch", "SKU-3|main"),
        ("missing_in_source", "SKU-9|main"),
    }
    by_key = {d["key"]: d for d in dry["before"]["discrepancies"]}
    assert by_key["SKU-1|main"]["fields"] == {"available": ["11", "99"]}
    assert "never deletes from pos" in by_key["SKU-9|main"]["note"]

    # When applied: the current ERP levels go through the worker's write path; the POS's own level is left
    code, applied = cli(pos, "reconcile", "erp-pos-stock", "--apply", "--json", "--report", str(tmp_path / "a.json"))
    assert (applied["applied"]["upserted"], applied["applied"]["left"], applied["applied"]["deleted"]) == (3, 1, 0)
    assert found(applied["after"]) == {("missing_in_source", "SKU-9|main")} and code == 4
    assert (Decimal(stock["SKU-1|main"]["qty"]), Decimal(stock["SKU-3|main"]["qty"])) == (11, 4)
    assert Decimal(stock["SKU-2|main"]["qty"]) == 12 and "SKU-9|main" in stock

    # Then, once the operator removes it as the note says, a second compare agrees
    with pos.sandboxes["pos"].lock:
        del stock["SKU-9|main"]
    code, again = cli(pos, "reconcile", "erp-pos-stock", "--json", "--report", str(tmp_path / "b.json"))
    assert code == 0
    assert (again["before"]["compared"], again["before"]["consistency"]) == (4, 1.0)
