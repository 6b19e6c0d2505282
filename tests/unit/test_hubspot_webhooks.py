"""HubSpot webhook v3 events → ChangeNotices, with Syncline's own writes dropped as echoes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from syncline.connectors.hubspot import WebhookTranslator
from tests.conftest import SHARED_FIXTURES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FIXTURES = json.loads((SHARED_FIXTURES / "crm" / "crm_webhook_payloads.json").read_text())["hubspot"]


def translator(app_id: str | None = "777") -> WebhookTranslator:
    return WebhookTranslator(app_id=app_id, clock=lambda: NOW)


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": 10,
        "subscriptionId": 1,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1_795_000_000_000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 501,
        "propertyName": "firstname",
        "propertyValue": "Ada",
        "changeSource": "CRM_UI",
        "sourceId": "userId:1",
    }
    return {**base, **fields}


def test_the_documented_creation_batch_becomes_one_upsert_notice() -> None:
    body = FIXTURES["authoritative_example"]["raw_body"].encode()

    notices = translator().notices(body)

    assert len(notices) == 1
    notice = notices[0]
    assert (notice.source_system, notice.entity, notice.key, notice.operation) == (
        "hubspot",
        "contact",
        "123",
        "upsert",
    )
    assert notice.triggered_at == datetime.fromtimestamp(1564113600, UTC)
    assert notice.observed_at == NOW
    assert notice.delivery_id == "1-1564113600000"


@pytest.mark.parametrize("type_key", FIXTURES["property_change_example_secondary"]["accept_both_keys"])
def test_the_property_change_example_is_read_under_either_type_key(type_key: str) -> None:
    (quoted,) = FIXTURES["property_change_example_secondary"]["body_as_commonly_quoted"]
    payload = {k: v for k, v in quoted.items() if k != "subscriptionType"} | {type_key: quoted["subscriptionType"]}

    (notice,) = translator().notices([payload])

    assert (notice.entity, notice.key, notice.operation) == ("contact", "1246965", "upsert")


def test_our_own_integration_writes_are_dropped_and_counted_as_echoes() -> None:
    webhooks = translator(app_id="777")
    events = [
        event(objectId=1, changeSource="INTEGRATION", sourceId="777"),
        event(objectId=2, changeSource="INTEGRATION", sourceId="888"),  # another integration: a real change
        event(objectId=3, changeSource="CRM_UI", sourceId="777"),  # a person, whatever the id says
        event(objectId=4, changeSource="INTEGRATION", sourceId="app:777"),
        event(objectId=5, changeSource="INTEGRATION", sourceId="7777"),  # not a prefix match
    ]

    keys = sorted(n.key for n in webhooks.notices(events))

    assert keys == ["2", "3", "5"]
    assert webhooks.stats["echo"] == 2
    assert webhooks.stats["accepted"] == 3


def test_without_an_app_id_nothing_is_taken_for_an_echo() -> None:
    webhooks = translator(app_id=None)
    assert len(webhooks.notices([event(changeSource="INTEGRATION", sourceId="777")])) == 1
    assert webhooks.stats["echo"] == 0


def test_operations_follow_the_subscription_type_and_the_latest_event_per_record_wins() -> None:
    events = [
        event(objectId=1, subscriptionType="contact.creation", occurredAt=100),
        event(objectId=1, subscriptionType="contact.deletion", occurredAt=200),
        event(objectId=2, subscriptionType="company.deletion", occurredAt=300),
        event(objectId=2, subscriptionType="company.restore", occurredAt=400),
        event(objectId=3, subscriptionType="deal.privacyDeletion"),
        event(objectId=4, subscriptionType="object.propertyChange", objectTypeId="0-3"),
        event(objectId=5, subscriptionType="ticket.creation"),
        event(objectId=6, subscriptionType="contact.associationChange"),
    ]
    webhooks = translator()

    found = {(n.entity, n.key): n.operation for n in webhooks.notices(events)}

    assert found == {
        ("contact", "1"): "delete",
        ("company", "2"): "upsert",
        ("deal", "3"): "delete",
        ("deal", "4"): "upsert",
    }
    assert webhooks.stats["ignored"] == 2


def test_a_merge_updates_the_primary_and_deletes_the_merged_records() -> None:
    merge = event(subscriptionType="contact.merge", primaryObjectId=10, mergedObjectIds=[11, 12])
    del merge["objectId"]

    found = {n.key: n.operation for n in translator().notices([merge])}

    assert found == {"10": "upsert", "11": "delete", "12": "delete"}


def test_a_body_that_is_not_an_array_of_events_is_refused() -> None:
    with pytest.raises(ValueError, match="array"):
        translator().notices(b'{"objectId": 1}')
    webhooks = translator()
    assert webhooks.notices([42, event()]) and webhooks.stats["malformed"] == 1  # type: ignore[list-item]
