"""Canonical models and the published JSON Schemas: compatible changes pass, breaking ones are caught."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from syncline.canonical import InventoryAdjustment, Price
from syncline.canonical.events import EVENT_TYPES, PriceChanged
from syncline.canonical.schemas import breaking_changes, generate, load

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_published_schemas_are_what_the_models_generate_or_a_compatible_extension() -> None:
    # Given the schemas committed under schemas/v1, when the models generate theirs now,
    # then nothing a v1 consumer relies on has changed (run `make schemas` after a compatible change).
    published = load()
    assert set(published) == set(EVENT_TYPES), "run `make schemas` to publish new event types"
    assert breaking_changes(published, generate()) == []


def test_the_checker_catches_each_kind_of_breaking_change() -> None:
    published = {"PriceChanged": PriceChanged.model_json_schema(mode="serialization")}
    price = published["PriceChanged"]["$defs"]["Price"]

    removed = copy.deepcopy(published)
    del removed["PriceChanged"]["$defs"]["Price"]["properties"]["compare_at"]
    assert breaking_changes(published, removed) == ["PriceChanged.data.compare_at: property removed"]

    retyped = copy.deepcopy(published)
    retyped["PriceChanged"]["$defs"]["Price"]["properties"]["sku"] = {"type": "integer"}
    assert any("PriceChanged.data.sku: type changed" in p for p in breaking_changes(published, retyped))

    required = copy.deepcopy(published)
    required["PriceChanged"]["$defs"]["Price"]["required"] = [*price["required"], "price_list"]
    assert breaking_changes(published, required) == ["PriceChanged.data.price_list: now required"]

    narrowed = copy.deepcopy(published)
    narrowed["PriceChanged"]["$defs"]["Price"]["properties"]["currency"]["pattern"] = "^EUR$"
    assert any("pattern changed" in p for p in breaking_changes(published, narrowed))

    assert breaking_changes(published, {}) == ["PriceChanged: event type removed"]


def test_adding_an_optional_property_or_an_event_type_is_compatible() -> None:
    published = {"PriceChanged": PriceChanged.model_json_schema(mode="serialization")}
    extended = copy.deepcopy(published)
    extended["PriceChanged"]["$defs"]["Price"]["properties"]["channel"] = {"type": "string"}
    extended["NewThing"] = {"type": "object"}
    assert breaking_changes(published, extended) == []


def test_enum_values_may_be_added_but_not_removed() -> None:
    published = {"E": {"type": "object", "properties": {"s": {"enum": ["a", "b"], "type": "string"}}}}
    assert (
        breaking_changes(
            published, {"E": {"type": "object", "properties": {"s": {"enum": ["a", "b", "c"], "type": "string"}}}}
        )
        == []
    )
    assert breaking_changes(
        published, {"E": {"type": "object", "properties": {"s": {"enum": ["a"], "type": "string"}}}}
    ) == ["E.s: enum values removed: b"]


def test_price_rules_and_ids_beyond_float_precision() -> None:
    with pytest.raises(ValidationError, match="compare_at must not be lower than base"):
        Price(sku="A", currency="EUR", base=Decimal(10), compare_at=Decimal(9), updated_at=NOW)
    event = PriceChanged(
        event_id="e1",
        occurred_at=NOW,
        source_system="shopify-store-a",
        key="gid://shopify/ProductVariant/9007199254740993",
        data=Price(sku="A", currency="EUR", base=Decimal("10.50"), updated_at=NOW),
    )
    assert PriceChanged.model_validate_json(event.model_dump_json()).key.endswith("9007199254740993")


@pytest.mark.parametrize(
    ("kind", "quantity", "on_hand", "change"),
    [
        ("receipt", 5, 10, 5),
        ("shipment", 3, 10, -3),
        ("transfer_out", 2, 10, -2),
        ("transfer_in", 2, 10, 2),
        ("cycle_count", 7, 10, -3),
        ("manual", -4, 10, -4),
    ],
)
def test_adjustment_kinds_give_the_direction(kind: str, quantity: int, on_hand: int, change: int) -> None:
    adjustment = InventoryAdjustment(
        idempotency_key="k",
        sku="A",
        location="main",
        kind=kind,
        quantity=Decimal(quantity),  # type: ignore[arg-type]
        source_system="erp",
        occurred_at=NOW,
    )
    assert adjustment.change_from(Decimal(on_hand)) == change


def test_movement_quantities_are_unsigned() -> None:
    with pytest.raises(ValidationError, match="shipment quantity must not be negative"):
        InventoryAdjustment(
            idempotency_key="k",
            sku="A",
            location="main",
            kind="shipment",
            quantity=Decimal(-1),
            source_system="erp",
            occurred_at=NOW,
        )
