"""`syncline reconcile` of a two-way pair on the local stack (two PostgreSQL stores sharing products; the price is
left to a person): every record either store holds is compared, --apply runs the pair's own two-way sync for the
keys that differ, so its policy decides, a price conflict goes to the review list instead of being overwritten,
and once a person decides the pair is 100 % consistent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.adapters.eventbridge import EventBridgePublisher
from syncline.adapters.pg_records import PostgresRecords
from syncline.local.emf import MetricLog
from syncline.local.stack import LocalStack
from syncline.models import ChangeNotice
from tests.conftest import load_event
from tests.e2e.helpers import stack_with
from tests.e2e.reconcile_helpers import cli, found, sandbox_stack

PAIR, QUEUE = "stores-products", "twoway_stores_products"
TWO_STORES = """
[systems.store_a]
kind = "postgres"
secret = "syncline/store-a"
table = "store_a_products"

[systems.store_b]
kind = "postgres"
secret = "syncline/store-b"
table = "store_b_products"

[[pairs]]
name = "stores-products"
source = "store_a"
target = "store_b"
entity = "product"
direction = "two_way"

[[pairs.field_groups]]
fields = ["price"]
policy = { rule = "manual_review" }
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, TWO_STORES) as local:
        yield local


def _stores(stack: LocalStack) -> tuple[PostgresRecords, PostgresRecords]:
    connection = stack.storefront()
    return (
        PostgresRecords("store_a", lambda: connection, "store_a_products"),
        PostgresRecords("store_b", lambda: connection, "store_b_products"),
    )


def _synced(stack: LocalStack, a: PostgresRecords, keys: list[str]) -> None:
    publisher = EventBridgePublisher(boto3.client("events"), stack.resources.bus, 100)
    for i, key in enumerate(keys):
        a.edit(key, {"title": f"Product {i}", "price": 10 + i})
    publisher.publish(
        [
            ChangeNotice(source_system="store_a", entity="product", key=key, observed_at=datetime.now(UTC))
            for key in keys
        ]
    )
    stack.drain(QUEUE)


def test_reconcile_of_a_two_way_pair_lets_the_pairs_policy_decide(stack: LocalStack, tmp_path: Path) -> None:
    # Given five products synced from store A to store B
    a, b = _stores(stack)
    _synced(stack, a, [f"P-{i}" for i in range(5)])
    assert b.read("P-4").values == {"title": "Product 4", "price": 14}  # type: ignore[union-attr]
    # ...then changes no notice ever reported: a title edited in B, the price edited in both (a conflict), a copy
    # deleted from B, and a product created in A
    b.edit("P-1", {"title": "Renamed in B", "price": 11})
    a.edit("P-2", {"title": "Product 2", "price": 20})
    b.edit("P-2", {"title": "Product 2", "price": 21})
    stack.storefront().execute("DELETE FROM store_b_products WHERE key = 'P-3'")
    a.edit("P-9", {"title": "New in A", "price": 99})

    # When the pair is compared
    code, dry = cli(stack, "reconcile", PAIR, "--json", "--report", str(tmp_path / "dry.json"))

    # Then every record either store holds is compared, and exactly the planted differences are found
    assert code == 4
    before = dry["before"]
    assert found(before) == {
        ("mismatch", "P-1"),
        ("mismatch", "P-2"),
        ("missing_in_target", "P-3"),
        ("missing_in_target", "P-9"),
    }
    assert next(d for d in before["discrepancies"] if d["key"] == "P-1")["fields"] == {
        "title": ["Product 1", "Renamed in B"]
    }
    assert (before["compared"], before["in_agreement"]) == (6, 2)

    # When applied: the pair's own sync runs for those keys
    code, applied = cli(stack, "reconcile", PAIR, "--apply", "--json", "--report", str(tmp_path / "apply.json"))

    # Then the title edit reaches A (last writer wins), the lost copy is restored, the new product reaches B...
    assert a.read("P-1").values == {"title": "Renamed in B", "price": 11}  # type: ignore[union-attr]
    assert b.read("P-3").values == a.read("P-3").values  # type: ignore[union-attr]
    assert b.read("P-9").values == {"title": "New in A", "price": 99}  # type: ignore[union-attr]
    # ...and the price conflict is not decided by reconcile: it goes to the review list, both copies untouched
    assert code == 4
    assert applied["applied"]["resynced"] == 3 and len(applied["applied"]["review"]) == 1
    assert found(applied["after"]) == {("mismatch", "P-2")}
    assert (a.read("P-2").values["price"], b.read("P-2").values["price"]) == (20, 21)  # type: ignore[union-attr]
    code, listed = cli(stack, "conflicts", "list", "--json")
    assert [conflict["id"] for conflict in listed] == applied["applied"]["review"]

    # When a person decides, the pair is 100 % consistent
    code, _ = cli(stack, "conflicts", "resolve", listed[0]["id"], "--take", "store_b", "--json")
    assert code == 0
    code, text = cli(stack, "reconcile", PAIR, "--report", str(tmp_path / "after.json"))
    assert code == 0 and "consistency 100.0000%" in text


def test_the_scheduled_reconciler_measures_a_two_way_pair(stack: LocalStack) -> None:
    a, b = _stores(stack)
    _synced(stack, a, [f"P-{i}" for i in range(4)])
    b.edit("P-0", {"title": "Edited in B", "price": 10})
    log = MetricLog(stack.functions["reconciler"].log_file)

    invocation = stack.functions["reconciler"].invoke(load_event("reconcile_scheduled.json"))

    assert invocation.error is None
    summary = next(s for s in invocation.response["pairs"] if s["pair"] == PAIR)
    assert (summary["compared"], summary["in_agreement"], summary["counts"]["mismatch"]) == (4, 3, 1)
    assert 3 / 4 in log.read()["ConsistencyRatio"]
    assert b.read("P-0").values["title"] == "Edited in B"  # type: ignore[union-attr] # measured, never repaired


CRM = """
[systems.crm]
kind = "hubspot"
secret = "syncline/hubspot"
app_id = "2468013"

[systems.oms]
kind = "oms"
secret = "syncline/oms"

[webhooks.crm-hubspot]
scheme = "hubspot"
secret = "syncline/webhooks/crm-hubspot"
system = "crm"
[webhooks.crm-hubspot.topics."contact.propertyChange"]
entity = "contact"
key = ["objectId"]

[[pairs]]
name = "crm-customers"
source = "crm"
target = "oms"
entity = "contact"
direction = "two_way"
"""
UPSERT = "POST /crm/v3/objects/contacts/batch/upsert"


@pytest.fixture
def crm_stack(services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with sandbox_stack(services, tmp_path, monkeypatch, CRM) as local:
        yield local


def _reconcile(stack: LocalStack, report: Path, *flags: str) -> tuple[int, Any]:
    """Reconcile the pair; the JSON report file (HubSpot's webhooks run the local webhook function meanwhile, in
    threads of their own, so the report file is the reliable copy of what the command found)."""
    code, _ = cli(stack, "reconcile", "crm-customers", *flags, "--report", str(report))
    return code, json.loads(report.read_text())


def test_reconcile_of_hubspot_contacts_and_oms_customers_converges_without_an_echo_loop(
    crm_stack: LocalStack, tmp_path: Path
) -> None:
    # Given contacts HubSpot holds that no notice ever announced (an import), and one OMS customer of its own
    crm, oms = crm_stack.sandboxes["crm"], crm_stack.oms()
    for first, last in (("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing")):
        crm.seed("contacts", {"email": f"{first}@Example.com", "firstname": first, "lastname": last})
    oms.execute(
        "INSERT INTO customers (customer_id, email, first_name, last_name, updated_at) "
        "VALUES ('C-7', 'edsger@example.com', 'Edsger', 'Dijkstra', now())"
    )
    oms.execute("DELETE FROM outbox")  # its notice was lost

    # When compared: keyed by e-mail on both sides
    code, dry = _reconcile(crm_stack, tmp_path / "dry.json")
    assert code == 4
    assert found(dry["before"]) == {
        ("missing_in_target", "ada@example.com"),
        ("missing_in_target", "grace@example.com"),
        ("missing_in_target", "alan@example.com"),
        ("missing_in_source", "edsger@example.com"),
    }

    # When applied, then each side gets the other's records through the pair's sync...
    code, applied = _reconcile(crm_stack, tmp_path / "apply.json", "--apply")
    assert code == 0, applied["after"]["discrepancies"]
    assert applied["applied"]["resynced"] == 4 and applied["after"]["consistency"] == 1.0
    edsger = crm.find("contacts", "email", "edsger@example.com")
    assert edsger is not None and edsger.properties["lastname"] == "Dijkstra"
    # ...and the writes coming back (the OMS outbox, HubSpot's webhooks) are echoes: nothing more is written
    upserts = crm.requests[UPSERT]
    crm_stack.settle()
    assert crm.requests[UPSERT] == upserts
    assert crm_stack.dead_letters("twoway_crm_customers") == []

    # When the OMS's application edits a customer and the notice is lost, reconcile finds it and the policy
    # (last writer wins) carries it to HubSpot
    oms.execute("UPDATE customers SET phone = '+1 555 0100' WHERE customer_id = 'C-7'")
    oms.execute("DELETE FROM outbox")
    code, dry = _reconcile(crm_stack, tmp_path / "dry2.json")
    assert code == 4 and found(dry["before"]) == {("mismatch", "edsger@example.com")}
    code, applied = _reconcile(crm_stack, tmp_path / "apply2.json", "--apply")
    assert code == 0
    assert crm.find("contacts", "email", "edsger@example.com").properties["phone"] == "+1 555 0100"  # type: ignore[union-attr]
