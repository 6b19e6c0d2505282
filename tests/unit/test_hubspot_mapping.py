"""HubSpot ↔ canonical mapping, declared as configuration: typing of HubSpot's text values, nesting, writes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from syncline.canonical.entities import Account, Address, Contact, Deal
from syncline.connectors.hubspot import DEFAULT_MAPPINGS, HubSpotObject, ObjectMapping, format_property, parse_property


def hubspot_object(
    object_id: str, properties: dict[str, str | None], updated: str = "2026-03-01T10:00:00.123Z"
) -> HubSpotObject:
    return HubSpotObject.model_validate(
        {"id": object_id, "properties": properties, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": updated}
    )


def test_a_contact_maps_to_the_canonical_contact_with_nested_address_and_version_from_updated_at() -> None:
    obj = hubspot_object(
        "501",
        {
            "email": "ada@example.com",
            "firstname": "Ada",
            "lastname": "",  # HubSpot's unset
            "phone": None,
            "city": "London",
            "zip": "N1 9GU",
            "associatedcompanyid": "77",
            "hs_object_id": "501",
        },
    )

    record = DEFAULT_MAPPINGS["contact"].to_record(obj)

    assert isinstance(record, Contact)
    assert record.contact_id == "501"
    assert (record.email, record.first_name, record.last_name, record.phone) == ("ada@example.com", "Ada", None, None)
    assert record.address == Address(city="London", postal_code="N1 9GU")
    assert record.account_id == "77"
    assert record.updated_at == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert record.source_version == int(record.updated_at.timestamp() * 1000) == 1772359200123


def test_a_deal_types_amount_as_decimal_and_closedate_as_a_day() -> None:
    obj = hubspot_object(
        "9",
        {
            "dealname": "Pumps",
            "dealstage": "closedwon",
            "amount": "1234.50",
            "deal_currency_code": "EUR",
            "closedate": "2026-04-30T00:00:00.000Z",
        },
    )

    deal = DEFAULT_MAPPINGS["deal"].to_record(obj)

    assert isinstance(deal, Deal)
    assert deal.amount == Decimal("1234.50")
    assert deal.close_date == date(2026, 4, 30)
    assert DEFAULT_MAPPINGS["deal"].to_properties(deal) == {
        "dealname": "Pumps",
        "dealstage": "closedwon",
        "amount": "1234.50",
        "deal_currency_code": "EUR",
        "closedate": "2026-04-30T00:00:00.000Z",
    }


def test_writes_leave_out_read_only_and_empty_fields_unless_told_to_clear() -> None:
    contact = Contact(
        contact_id="1", email="a@b.co", first_name="A", account_id="77", updated_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    mapping = DEFAULT_MAPPINGS["contact"]

    written = mapping.to_properties(contact)
    cleared = mapping.to_properties(contact, clear_missing=True)

    assert written == {"email": "a@b.co", "firstname": "A"}
    assert "associatedcompanyid" not in cleared  # HubSpot computes it
    assert cleared["lastname"] == "" and cleared["city"] == ""


def test_a_mapping_is_declared_in_configuration_form_with_a_custom_property() -> None:
    mapping = ObjectMapping.model_validate(
        {
            "entity": "company",
            "upsert_id_property": "erp_account_id",
            "properties": {"name": "name", "erp_account_id": "account_id", "numberofemployees": {"field": "industry"}},
        }
    )
    account = mapping.to_record(hubspot_object("3", {"name": "Acme", "erp_account_id": "C-100"}))

    assert isinstance(account, Account)
    # The HubSpot id is overridden by the declared property: the mapping decides what the canonical id is.
    assert account.account_id == "C-100"
    assert mapping.to_properties(account) == {"name": "Acme", "erp_account_id": "C-100"}


def test_an_invalid_mapping_is_refused() -> None:
    with pytest.raises(ValidationError):
        ObjectMapping.model_validate({"entity": "ticket", "properties": {}})
    with pytest.raises(ValidationError):
        ObjectMapping.model_validate({"entity": "deal", "properties": {"amount": {"field": "amount", "type": "money"}}})


def test_a_value_the_declared_type_cannot_read_fails_loudly() -> None:
    with pytest.raises(ValueError, match="not a number"):
        parse_property("12,5", "decimal")
    assert parse_property("1714435200000", "date") == date(2024, 4, 30)  # older properties hold epoch ms
    assert parse_property("true", "bool") is True
    assert format_property(Decimal("1E+2"), "decimal") == "100"
