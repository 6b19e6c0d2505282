"""HubSpot contacts <-> OMS customers, two-way, on the local stack: a HubSpot sandbox sending signed v3 webhooks
through the local API Gateway, the OMS outbox drained onto the bus, the two-way worker keying both sides by the
contact's e-mail. Writes are counted on both sides, so an echo loop would show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

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
[webhooks.crm-hubspot.topics."contact.creation"]
entity = "contact"
key = ["objectId"]
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
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, CRM) as local:
        yield local


def _count_oms_writes(stack: LocalStack) -> Callable[[], int]:
    """Log every write to the OMS customers table (anyone's); returns a function reading the count."""
    oms = stack.oms()
    oms.execute(
        """
        CREATE TABLE customer_writes (customer_id text);
        CREATE FUNCTION log_customer_write() RETURNS trigger AS $$
        BEGIN INSERT INTO customer_writes VALUES (NEW.customer_id); RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER customer_writes AFTER INSERT OR UPDATE ON customers
            FOR EACH ROW EXECUTE FUNCTION log_customer_write();
        """
    )
    return lambda: int(oms.execute("SELECT count(*) FROM customer_writes").fetchone()[0])


def _customer(stack: LocalStack, email: str) -> dict[str, Any] | None:
    row = (
        stack.oms()
        .execute("SELECT customer_id, first_name, last_name, phone FROM customers WHERE email = %s", [email])
        .fetchone()
    )
    return None if row is None else dict(zip(("customer_id", "first_name", "last_name", "phone"), row, strict=True))


def test_a_contact_edited_in_hubspot_reaches_the_oms_and_back_once_each_way(stack: LocalStack) -> None:
    crm = stack.sandboxes["crm"]
    oms_writes = _count_oms_writes(stack)
    contact = crm.seed("contacts", {"email": "Ada@Example.com", "firstname": "Ada", "lastname": "Lovelace"})

    # 1. A person edits the contact in HubSpot: the OMS gets the customer, keyed by the e-mail, in one write.
    crm.user_edit("contacts", contact, {"phone": "+44 20 7946 0000"})
    stack.settle()
    assert _customer(stack, "ada@example.com") == {
        "customer_id": _customer(stack, "ada@example.com")["customer_id"],  # type: ignore[index]
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
    }
    assert oms_writes() == 1
    assert crm.requests[UPSERT] == 0  # nothing written back to HubSpot: the OMS's outbox row was our echo

    # 2. The OMS's own application edits the customer: HubSpot gets it once; its webhook is our echo.
    stack.oms().execute("UPDATE customers SET first_name = 'Augusta' WHERE email = 'ada@example.com'")
    stack.settle()
    assert crm.find("contacts", "email", "ada@example.com").properties["firstname"] == "Augusta"
    assert crm.requests[UPSERT] == 1
    assert oms_writes() == 2  # the application's edit only: nothing came back

    # 3. Nothing keeps moving, nothing was dead-lettered, every signed delivery was accepted.
    assert stack.settle() == 0
    assert crm.delivered and {status for _, status in crm.delivered} <= {200, 202}
    assert stack.dead_letters("twoway_crm_customers") == []


def test_a_contact_created_in_the_oms_is_created_in_hubspot(stack: LocalStack) -> None:
    crm = stack.sandboxes["crm"]
    stack.oms().execute(
        "INSERT INTO customers (customer_id, email, first_name, last_name, updated_at) "
        "VALUES ('C-7', 'Grace@Example.com', 'Grace', 'Hopper', now())"
    )
    stack.settle()
    created = crm.find("contacts", "email", "grace@example.com")
    assert created is not None
    assert (created.properties["firstname"], created.properties["lastname"]) == ("Grace", "Hopper")
    assert crm.requests[UPSERT] == 1
    row = _customer(stack, "Grace@Example.com")
    assert row is not None and row["customer_id"] == "C-7"  # the OMS keeps its own id; no second customer
    assert stack.settle() == 0


def test_concurrent_edits_are_settled_by_the_pairs_policy(stack: LocalStack) -> None:
    crm = stack.sandboxes["crm"]
    contact = crm.seed("contacts", {"email": "alan@example.com", "firstname": "Alan", "lastname": "Turing"})
    crm.user_edit("contacts", contact, {"phone": "+44 1"})
    stack.settle()
    assert _customer(stack, "alan@example.com") is not None

    # Both sides change the same field before either change is synced: the later one (the OMS's) wins everywhere
    # under the pair's default policy, last writer wins, and the other side's change is counted as settled.
    crm.user_edit("contacts", contact, {"firstname": "Alan M."})
    stack.oms().execute("UPDATE customers SET first_name = 'A. M.' WHERE email = 'alan@example.com'")
    stack.settle()
    assert crm.find("contacts", "email", "alan@example.com").properties["firstname"] == "A. M."
    assert _customer(stack, "alan@example.com")["first_name"] == "A. M."  # type: ignore[index]
    assert stack.settle() == 0
    assert stack.dead_letters("twoway_crm_customers") == []
