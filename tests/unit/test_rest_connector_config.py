"""The generic REST connector's pure parts: declared configuration, dotted-path mapping, transforms, paths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from syncline.connectors.rest import (
    RestConnector,
    RestEntityConfig,
    RestSystemConfig,
    convert,
    fill_path,
    get_path,
    same_origin,
    set_path,
)

POS_ITEM: dict[str, Any] = {
    "key_field": "sku",
    "fields": {
        "sku": {"source": "item.code", "transform": "upper"},
        "title": "item.name",
        "price": {"source": "pricing.0.amount", "transform": "decimal"},
        "currency": {"source": "pricing.0.currency", "transform": "upper"},
        "on_hand": {"source": "stock.on_hand", "transform": "int"},
        "email": {"source": "contact.email", "transform": "lower"},
        "active": {"source": "flags.active", "transform": "bool"},
    },
    "list": {"path": "/items", "records_path": "data"},
    "pagination": {"style": "page", "size_param": "per_page", "page_size": 50},
}


def test_a_source_record_maps_to_canonical_fields_through_dotted_paths_and_transforms() -> None:
    entity = RestEntityConfig.model_validate(POS_ITEM)
    raw = {
        "item": {"code": "ab-100", "name": "Pump"},
        "pricing": [{"amount": "12.50", "currency": "eur"}],
        "stock": {"on_hand": "7"},
        "contact": {"email": "Ops@Example.COM"},
        "flags": {"active": "yes"},
    }

    record = entity.to_canonical(raw)

    assert record == {
        "sku": "AB-100",
        "title": "Pump",
        "price": Decimal("12.50"),
        "currency": "EUR",
        "on_hand": 7,
        "email": "ops@example.com",
        "active": True,
    }


def test_a_canonical_record_maps_back_to_nested_json_with_exact_decimals() -> None:
    entity = RestEntityConfig.model_validate(
        {
            "key_field": "sku",
            "fields": {"sku": "item.code", "price": {"source": "price.amount", "transform": "decimal"}},
        }
    )

    assert entity.to_source({"sku": "A/1", "price": Decimal("0.10")}) == {
        "item": {"code": "A/1"},
        "price": {"amount": "0.10"},
    }
    assert entity.to_source({"sku": "A", "price": None}) == {"item": {"code": "A"}, "price": {"amount": None}}


def test_missing_source_values_are_left_out_and_bad_numbers_fail_loudly() -> None:
    entity = RestEntityConfig.model_validate(POS_ITEM)
    assert entity.to_canonical({"item": {"code": "x"}}) == {"sku": "X"}
    with pytest.raises(ValueError, match="whole number"):
        convert("7.5", "int")
    with pytest.raises(ValueError, match="not a number"):
        convert("seven", "decimal")


def test_configuration_is_validated() -> None:
    with pytest.raises(ValidationError, match="cursor_path"):
        RestEntityConfig.model_validate({**POS_ITEM, "pagination": {"style": "cursor"}})
    with pytest.raises(ValidationError, match="key_field"):
        RestEntityConfig.model_validate({**POS_ITEM, "key_field": "barcode"})
    with pytest.raises(ValidationError):
        RestEntityConfig.model_validate({**POS_ITEM, "fields": {"sku": {"source": "a", "transform": "float"}}})
    with pytest.raises(ValidationError):
        RestSystemConfig.model_validate({"system": "pos", "base_url": "ftp://pos", "entities": {}})


def test_an_authenticated_system_needs_a_credential_callable() -> None:
    config = RestSystemConfig.model_validate(
        {"system": "pos", "base_url": "https://pos.example", "auth": {"kind": "bearer"}, "entities": {}}
    )
    with pytest.raises(ValueError, match="credential"):
        RestConnector(config)
    connector = RestConnector(config, credential=lambda: "s3cret-token")
    assert "s3cret" not in repr(connector)
    assert connector._auth_headers() == {"Authorization": "Bearer s3cret-token"}


def test_keys_are_escaped_into_path_templates() -> None:
    assert fill_path("/items/{key}", "A/1 ?x") == "/items/A%2F1%20%3Fx"
    assert fill_path("/items", None) == "/items"
    with pytest.raises(ValueError, match="needs a key"):
        fill_path("/items/{key}", None)


def test_dotted_paths_and_origins() -> None:
    document: dict[str, Any] = {}
    set_path(document, "a.b.c", 1)
    assert document == {"a": {"b": {"c": 1}}}
    assert get_path({"a": [{"b": 2}]}, "a.0.b") == 2
    assert get_path({"a": [{"b": 2}]}, "a.5.b") is None
    assert get_path({"a": "text"}, "a.b") is None
    assert same_origin("https://api.pos.example/items?page=2", "https://api.pos.example/v1")
    assert not same_origin("https://evil.example/items", "https://api.pos.example")
    assert not same_origin("http://api.pos.example/items", "https://api.pos.example")
