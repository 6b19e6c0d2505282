"""Salesforce contacts <-> OMS customers, two-way, on the local stack: the Salesforce sandbox's Change Data Capture
events put on the org's partner event bus (Event Relay, emulated), routed by the topology's rule to the relay
function, published as notices; the OMS outbox drained onto the bus; the two-way worker keying both sides by the
contact's e-mail. Writes are counted on both sides, so an echo loop would show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.local.provision import local_bus_name
from syncline.local.stack import LocalStack
from tests.conftest import load_event
from tests.e2e.helpers import stack_with

EVENT_SOURCE = "aws.partner/salesforce.com/00DSB0000000001EAA/0YLSB0000000001AAA"
CRM = f"""
[systems.sfdc]
kind = "salesforce"
secret = "syncline/salesforce"
login_url = "https://example.my.salesforce.com"
event_source = "{EVENT_SOURCE}"

[systems.oms]
kind = "oms"
secret = "syncline/oms"

[[pairs]]
name = "sf-customers"
source = "sfdc"
target = "oms"
entity = "contact"
direction = "two_way"
"""
UPSERT = "PATCH /services/data/v62.0/composite/sobjects/Contact/Syncline_Id__c"
UPDATE = "PATCH /services/data/v62.0/composite/sobjects"
PAIR_QUEUE, RELAY_QUEUE = "twoway_sf_customers", "cdc_sfdc"


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, CRM) as local:
        yield local


def _count_oms_writes(stack: LocalStack) -> Callable[[], int]:
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
    columns = ("customer_id", "first_name", "last_name", "phone", "lifecycle_stage")
    row = stack.oms().execute(f"SELECT {', '.join(columns)} FROM customers WHERE lower(email) = %s", [email]).fetchone()
    return None if row is None else dict(zip(columns, row, strict=True))


def _sf_writes(sandbox: Any) -> int:
    return int(sandbox.requests[UPSERT] + sandbox.requests[UPDATE])


def test_a_contact_edited_in_salesforce_reaches_the_oms_and_back_once_each_way(stack: LocalStack) -> None:
    sfdc = stack.sandboxes["sfdc"]
    oms_writes = _count_oms_writes(stack)
    contact = sfdc.create("Contact", {"Email": "Ada@Example.com", "FirstName": "Ada", "LastName": "Lovelace"})

    # 1. A person creates then edits the contact in Salesforce: the OMS gets the customer, keyed by the e-mail.
    sfdc.edit("Contact", contact, {"Phone": "+44 20 7946 0000"})
    stack.settle()
    customer = _customer(stack, "ada@example.com")
    assert customer is not None
    assert (customer["first_name"], customer["last_name"], customer["phone"]) == ("Ada", "Lovelace", "+44 20 7946 0000")
    assert oms_writes() == 1
    assert _sf_writes(sfdc) == 0  # nothing written back: the OMS outbox row was our echo

    # 2. The OMS's application edits the customer (and a field Salesforce has no place for): Salesforce gets the
    #    name once; its change event names our client in changeOrigin, so it is dropped as an echo.
    stack.oms().execute(
        "UPDATE customers SET first_name = 'Augusta', lifecycle_stage = 'customer' WHERE email = 'ada@example.com'"
    )
    # Two messages: the outbox's notice to the pair's queue, and our write's change event to the relay's queue,
    # which publishes nothing (an echo publishing a notice would make a third).
    assert stack.settle() == 2
    assert sfdc.record("Contact", contact)["FirstName"] == "Augusta"
    assert sfdc.requests[UPDATE] == 1 and sfdc.requests[UPSERT] == 0  # the existing contact, updated by its Id
    assert sfdc.change_events[-1]["data"]["payload"]["ChangeEventHeader"]["changeOrigin"].endswith(";client=syncline")
    assert oms_writes() == 2  # the application's edit only: nothing came back
    assert _customer(stack, "ada@example.com")["lifecycle_stage"] == "customer"  # type: ignore[index]

    # 3. Nothing keeps moving, nothing was dead-lettered.
    assert stack.settle() == 0
    assert stack.dead_letters(PAIR_QUEUE) == [] and stack.dead_letters(RELAY_QUEUE) == []


def test_a_customer_created_in_the_oms_is_created_in_salesforce_once(stack: LocalStack) -> None:
    sfdc = stack.sandboxes["sfdc"]
    stack.oms().execute(
        "INSERT INTO customers (customer_id, email, first_name, last_name, lifecycle_stage, updated_at) "
        "VALUES ('C-7', 'Grace@Example.com', 'Grace', 'Hopper', 'lead', now())"
    )
    stack.settle()
    created = sfdc.by_external_id("Contact", "Syncline_Id__c", "grace@example.com")
    assert created is not None
    assert (created["FirstName"], created["LastName"], created["Email"]) == ("Grace", "Hopper", "grace@example.com")
    assert sfdc.requests[UPSERT] == 1 and sfdc.requests[UPDATE] == 0
    row = _customer(stack, "grace@example.com")
    assert row is not None and row["customer_id"] == "C-7" and row["lifecycle_stage"] == "lead"  # kept, not cleared
    assert stack.settle() == 0


def test_concurrent_edits_are_settled_by_the_pairs_policy(stack: LocalStack) -> None:
    sfdc = stack.sandboxes["sfdc"]
    contact = sfdc.create("Contact", {"Email": "alan@example.com", "FirstName": "Alan", "LastName": "Turing"})
    stack.settle()
    assert _customer(stack, "alan@example.com") is not None

    # Both sides change the same field before either change is synced: the later one (the OMS's) wins everywhere
    # under the pair's default policy, last writer wins.
    sfdc.edit("Contact", contact, {"FirstName": "Alan M."})
    stack.oms().execute(
        "UPDATE customers SET first_name = 'A. M.', updated_at = clock_timestamp() WHERE email = 'alan@example.com'"
    )
    stack.settle()
    assert sfdc.record("Contact", contact)["FirstName"] == "A. M."
    assert _customer(stack, "alan@example.com")["first_name"] == "A. M."  # type: ignore[index]
    assert stack.settle() == 0
    assert stack.dead_letters(PAIR_QUEUE) == []


def test_a_contact_salesforce_refuses_is_dead_lettered_with_the_reason(stack: LocalStack) -> None:
    # An OMS customer without a last name cannot become a Salesforce contact (LastName is required).
    stack.oms().execute(
        "INSERT INTO customers (customer_id, email, first_name, updated_at) VALUES ('C-9', 'x@example.com', 'X', now())"
    )
    stack.settle()
    letters = stack.dead_letters(PAIR_QUEUE)
    assert len(letters) == 1
    assert "no last name" in letters[0]["body"]["reason"]
    assert stack.sandboxes["sfdc"].by_external_id("Contact", "Syncline_Id__c", "x@example.com") is None


def test_a_relayed_event_that_is_no_change_event_is_parked_with_its_reason(stack: LocalStack) -> None:
    events = boto3.client("events")
    events.put_events(
        Entries=[
            {
                "EventBusName": local_bus_name(EVENT_SOURCE),
                "Source": EVENT_SOURCE,
                "DetailType": "ContactChangeEvent",
                "Detail": '{"payload": {"Name": "no header"}}',
            }
        ]
    )
    stack.settle()
    letters = stack.dead_letters(RELAY_QUEUE)
    assert len(letters) == 1 and "ChangeEventHeader" in letters[0]["body"]["reason"]


def test_the_sample_relay_event_publishes_the_users_change_and_drops_the_echo(stack: LocalStack) -> None:
    invocation = stack.functions[RELAY_QUEUE].invoke(load_event("salesforce_cdc_relay.json"))
    assert invocation.error is None and invocation.response == {"batchItemFailures": []}
    stack.settle()
    # The user's change became a notice; the worker finds no such contact in the org and parks it with the reason.
    # The echo (client=syncline) published nothing, so it left no letter.
    letters = stack.dead_letters(PAIR_QUEUE)
    assert [letter["body"]["notice"]["key"] for letter in letters] == ["003SB0000000000042"]
    assert "gone or has no e-mail" in letters[0]["body"]["reason"]


def test_a_field_salesforce_owns_keeps_its_value_though_the_oms_wrote_later(
    services: tuple[Any, Any], tmp_path: Path
) -> None:
    owned = (
        CRM + '\n[[pairs.field_groups]]\nfields = ["phone"]\npolicy = { rule = "source_authority", owner = "sfdc" }\n'
    )
    with stack_with(services, tmp_path, owned) as stack:
        sfdc = stack.sandboxes["sfdc"]
        contact = sfdc.create("Contact", {"Email": "kay@example.com", "LastName": "Johnson", "Phone": "+1 555 0100"})
        stack.settle()
        # Both change the phone before either change syncs; the OMS's is the later one, but Salesforce owns phone.
        sfdc.edit("Contact", contact, {"Phone": "+1 555 0199"})
        stack.oms().execute(
            "UPDATE customers SET phone = '+1 555 0000', first_name = 'Katherine', updated_at = clock_timestamp() "
            "WHERE email = 'kay@example.com'"
        )
        stack.settle()
        assert _customer(stack, "kay@example.com")["phone"] == "+1 555 0199"  # type: ignore[index]
        record = sfdc.record("Contact", contact)
        assert (record["Phone"], record["FirstName"]) == ("+1 555 0199", "Katherine")  # the rest: last writer wins
        assert stack.settle() == 0
        assert stack.dead_letters(PAIR_QUEUE) == []


def test_the_monitor_reports_the_pair_on_its_workers_queue_and_watches_the_relays(stack: LocalStack) -> None:
    sfdc = stack.sandboxes["sfdc"]
    sfdc.create("Contact", {"Email": "mae@example.com", "FirstName": "Mae", "LastName": "Jemison"})
    stack.settle()
    invocation = stack.functions["monitor"].invoke(load_event("monitor_scheduled.json"))
    assert invocation.error is None
    report = invocation.response
    pair = next(p for p in report["pairs"] if p["pair"] == "sf-customers")
    assert pair["queue"] == PAIR_QUEUE
    assert {q["queue"] for q in report["queues"]} >= {PAIR_QUEUE, RELAY_QUEUE}


def test_the_workers_share_the_token_the_scheduled_refresher_fetched(stack: LocalStack) -> None:
    sfdc = stack.sandboxes["sfdc"]
    refreshed = stack.run_schedule("refresh_tokens")
    assert refreshed.error is None and refreshed.response["systems"]["sfdc"]["fetched"] == 1
    sfdc.create("Contact", {"Email": "ida@example.com", "FirstName": "Ida", "LastName": "Rhodes"})
    stack.settle()
    assert _customer(stack, "ida@example.com") is not None
    assert sfdc.token_requests == 1  # the worker used the shared token (TK#sfdc), not a token of its own
