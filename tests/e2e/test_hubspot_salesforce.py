"""HubSpot contacts <-> Salesforce contacts, two-way by e-mail, on the local stack: HubSpot's signed webhooks and
Salesforce's change events (Event Relay, emulated) both feed the pair's worker. Salesforce has no lifecycle stage,
so the pair carries the fields both store and HubSpot's lifecycle stage is never cleared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

CRMS = """
[systems.hubspot]
kind = "hubspot"
secret = "syncline/hubspot"
app_id = "2468013"

[systems.sfdc]
kind = "salesforce"
secret = "syncline/salesforce"
event_source = "aws.partner/salesforce.com/00DSB0000000001EAA/0YLSB0000000001AAA"

[webhooks.crm-hubspot]
scheme = "hubspot"
secret = "syncline/webhooks/crm-hubspot"
system = "hubspot"
[webhooks.crm-hubspot.topics."contact.creation"]
entity = "contact"
key = ["objectId"]
[webhooks.crm-hubspot.topics."contact.propertyChange"]
entity = "contact"
key = ["objectId"]

[[pairs]]
name = "crm-contacts"
source = "hubspot"
target = "sfdc"
entity = "contact"
direction = "two_way"
"""
HUBSPOT_UPSERT = "POST /crm/v3/objects/contacts/batch/upsert"
SF_WRITES = (
    "PATCH /services/data/v62.0/composite/sobjects/Contact/Syncline_Id__c",
    "PATCH /services/data/v62.0/composite/sobjects",
)


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, CRMS) as local:
        yield local


def test_contacts_move_between_the_two_crms_once_each_way(stack: LocalStack) -> None:
    hubspot, sfdc = stack.sandboxes["hubspot"], stack.sandboxes["sfdc"]
    contact = hubspot.seed(
        "contacts", {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "lifecyclestage": "lead"}
    )
    hubspot.user_edit("contacts", contact, {"phone": "+44 1"})
    stack.settle()
    created = sfdc.by_external_id("Contact", "Syncline_Id__c", "ada@example.com")
    assert created is not None and (created["FirstName"], created["Phone"]) == ("Ada", "+44 1")
    assert sum(sfdc.requests[write] for write in SF_WRITES) == 1
    assert hubspot.requests[HUBSPOT_UPSERT] == 0  # Salesforce's change event of our write was an echo

    sfdc.edit("Contact", created["Id"], {"FirstName": "Augusta"})
    stack.settle()
    properties = hubspot.find("contacts", "email", "ada@example.com").properties
    assert (properties["firstname"], properties["lifecyclestage"]) == ("Augusta", "lead")  # not cleared
    assert hubspot.requests[HUBSPOT_UPSERT] == 1
    assert sum(sfdc.requests[write] for write in SF_WRITES) == 1
    assert stack.settle() == 0
    assert stack.dead_letters("twoway_crm_contacts") == [] and stack.dead_letters("cdc_sfdc") == []
