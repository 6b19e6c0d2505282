"""Salesforce pure parts: CDC parsing, echo recognition, mapping and collection results."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.canonical.entities import Contact
from syncline.connectors.salesforce import (
    account_from_sobject,
    contact_from_sobject,
    contact_to_sobject,
    deal_from_sobject,
    is_echo,
    notices_from_cdc,
    parse_change_event,
    parse_save_results,
)
from tests.conftest import SHARED_FIXTURES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _event(**header: Any) -> dict[str, Any]:
    """The documented CDC message template, filled in (placeholders replaced where a test cares)."""
    fixture = json.loads((SHARED_FIXTURES / "crm" / "crm_webhook_payloads.json").read_text())
    message = copy.deepcopy(fixture["salesforce_cdc"]["message_structure_template"]["template"])
    message["data"]["payload"]["ChangeEventHeader"] |= {
        "entityName": "Contact",
        "recordIds": ["003SB0000000000001"],
        "changeType": "UPDATE",
        "changeOrigin": "",
        "transactionKey": "0002343d-9d90-e395-ed20-cf416ba652ad",
        "sequenceNumber": 1,
        "commitTimestamp": 1763899200000,
        "commitNumber": 10231794226,
        "changedFields": ["Phone", "LastModifiedDate"],
    } | header
    message["data"]["event"]["replayId"] = 42
    return message


def test_a_cdc_message_becomes_one_notice_per_record() -> None:
    event = parse_change_event(_event(recordIds=["003A", "003B"]))

    assert (event.entity_name, event.change_type, event.changed_fields) == (
        "Contact",
        "UPDATE",
        ("Phone", "LastModifiedDate"),
    )
    assert event.commit_timestamp == datetime(2025, 11, 23, 12, 0, tzinfo=UTC)
    notices = event.notices(NOW)
    assert [(n.source_system, n.entity, n.key, n.operation) for n in notices] == [
        ("salesforce", "contact", "003A", "upsert"),
        ("salesforce", "contact", "003B", "upsert"),
    ]
    assert notices[0].source_version == 10231794226
    assert notices[0].delivery_id == "42:003A" and notices[0].triggered_at == event.commit_timestamp


@pytest.mark.parametrize(
    ("origin", "echo"),
    [
        ("com/salesforce/api/rest/62.0;client=syncline", True),
        ("com/salesforce/api/soap/49.0;client=syncline", True),
        ("com/salesforce/api/soap/49.0;client=Astro", False),
        ("com/salesforce/api/rest/62.0;client=synclinex", False),
        ("com/salesforce/api/rest/62.0", False),
        ("client=syncline", False),  # not after an API name: not Salesforce's format
        ("", False),
    ],
)
def test_echoes_are_recognised_by_the_exact_client_id(origin: str, echo: bool) -> None:
    assert is_echo(origin) is echo
    assert parse_change_event(_event(changeOrigin=origin)).echo is echo


def test_deletes_gaps_and_wildcards() -> None:
    deleted = parse_change_event(_event(changeType="DELETE", changedFields=[]))
    assert deleted.notices(NOW)[0].operation == "delete"
    gap = parse_change_event(_event(changeType="GAP_UPDATE"))
    assert gap.gap and gap.operation == "upsert"
    assert parse_change_event(_event(changeType="GAP_DELETE")).operation == "delete"

    batch = notices_from_cdc([_event(recordIds=["003*"])], observed_at=NOW)
    assert batch.notices == [] and batch.needs_reconcile == ["Contact"]


def test_pub_sub_bitmaps_are_kept_as_they_come_and_bare_payloads_parse() -> None:
    message = _event(changedFields=["0x650004E0"])
    assert parse_change_event(message).changed_fields == ("0x650004E0",)
    bare = parse_change_event(message["data"]["payload"])
    assert bare.entity_name == "Contact" and bare.replay_id is None


def test_batches_drop_echoes_and_unknown_entities() -> None:
    messages = [
        _event(),
        _event(changeOrigin="com/salesforce/api/rest/62.0;client=syncline"),
        _event(entityName="Case"),
        _event(entityName="Opportunity", recordIds=["006A"]),
    ]
    batch = notices_from_cdc(messages, observed_at=NOW)
    assert (batch.echoes, batch.unknown_entities) == (1, 1)
    assert [(n.entity, n.key) for n in batch.notices] == [("contact", "003SB0000000000001"), ("deal", "006A")]


def test_a_message_without_a_header_is_refused() -> None:
    with pytest.raises(ValueError, match="ChangeEventHeader"):
        parse_change_event({"data": {"payload": {"Name": "x"}}})
    with pytest.raises(ValueError, match="entityName"):
        parse_change_event(_event(entityName=""))


def test_mapping_to_canonical_records() -> None:
    contact = contact_from_sobject(
        {
            "attributes": {"type": "Contact"},
            "Id": "003A",
            "LastName": "Lovelace",
            "HasOptedOutOfEmail": True,
            "MailingCountry": "United Kingdom",
            "MailingCity": "London",
            "LastModifiedDate": "2026-11-23T12:00:00.000+0000",
        }
    )
    assert contact.marketing_opt_in is False
    assert contact.address is not None and contact.address.city == "London" and contact.address.country is None
    assert contact.updated_at == NOW
    account = account_from_sobject(
        {"Id": "001A", "Name": "Acme", "Website": "acme.example", "LastModifiedDate": "2026-11-23T12:00:00Z"}
    )
    assert account.domain == "acme.example" and account.address is None
    deal = deal_from_sobject(
        {
            "Id": "006A",
            "Name": "D",
            "StageName": "Closed Won",
            "Amount": 10.1,
            "CloseDate": "2026-12-01",
            "LastModifiedDate": "2026-11-23T12:00:00.000+0000",
        },
        currency="USD",
    )
    assert (deal.amount, deal.currency, deal.close_date) == (Decimal("10.1"), "USD", date(2026, 12, 1))


def test_canonical_contact_to_sobject_uses_the_external_id() -> None:
    contact = Contact(contact_id="c-1", last_name="L", marketing_opt_in=True, updated_at=NOW)
    fields = contact_to_sobject(contact, external_id_field="Syncline_Id__c")
    assert fields["Syncline_Id__c"] == "c-1" and fields["HasOptedOutOfEmail"] is False


def test_save_results_keep_request_order_and_errors() -> None:
    body = [
        {"id": "003A", "success": True, "errors": [], "created": True},
        {
            "id": None,
            "success": False,
            "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "dup", "fields": ["Email"]}],
        },
    ]
    ok, bad = parse_save_results(["k1", "k2"], body)
    assert ok.key == "k1" and ok.created is True
    assert bad.errors[0].status_code == "DUPLICATE_VALUE" and bad.errors[0].fields == ("Email",)
    with pytest.raises(ValueError):
        parse_save_results(["k1"], body)
