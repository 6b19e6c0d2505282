"""Fracttal pure parts: the documented shapes and the spare-part sync decisions (with a fake client)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.canonical.entities import Asset
from syncline.connectors.fracttal import FracttalSettings, WarehouseItem, match_code, sync_spare_parts
from syncline.connectors.http import ApiError
from syncline.models import InventoryLevel
from tests.conftest import SHARED_FIXTURES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FIXTURE = json.loads((SHARED_FIXTURES / "fracttal" / "fracttal_api.json").read_text())


class FakeFracttal:
    def __init__(self, items: list[WarehouseItem], fail: dict[str, ApiError] | None = None) -> None:
        self.settings = FracttalSettings(warehouse_code="WH-1")
        self.items, self.fail = items, fail or {}
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def list_items(self, warehouse_code: str | None = None) -> Iterator[WarehouseItem]:
        yield from self.items

    def update_item(self, code: str, **changes: Any) -> dict[str, Any]:
        if code in self.fail:
            raise self.fail[code]
        self.writes.append((code, changes))
        return {}


def _level(sku: str, on_hand: str) -> InventoryLevel:
    q = Decimal(on_hand)
    return InventoryLevel(
        sku=sku,
        location="L",
        on_hand=q,
        reserved=Decimal(0),
        available=q,
        on_order=Decimal(0),
        source_version=1,
        source_updated_at=NOW,
    )


def test_documented_shapes_parse() -> None:
    single = WarehouseItem.model_validate(FIXTURE["endpoints"][0]["documented_response"]["data"])
    assert single.min_stock_level == 5  # spelled min_stoc_level in the documented example
    assert single.stock == 23 and single.unit_cost_stock == Decimal("23666.8")
    listed = WarehouseItem.model_validate(FIXTURE["endpoints"][1]["documented_response_first_item"])
    assert listed.code == "0003010001001521" and listed.max_stock_level is None
    assert listed.description == " MODULO   ZMR -0.6-PKZ2 (SM)    { 0003010001001521 }"  # kept verbatim


def test_codes_match_after_trimming_only() -> None:
    assert match_code("  0003010001001521 ") == "0003010001001521"
    assert match_code("A  B") == "A  B" and match_code("abc") != match_code("ABC")


def test_only_changed_quantities_are_written() -> None:
    fake = FakeFracttal(
        [
            WarehouseItem(code="A", stock=Decimal("1.0"), unit_cost_stock=Decimal(3)),
            WarehouseItem(code="B", stock=Decimal(2)),
            WarehouseItem(code="C ", stock=None),
        ]
    )
    summary = sync_spare_parts([_level("A", "1"), _level("B", "5"), _level("C", "0"), _level("Z", "1")], client=fake)  # type: ignore[arg-type]
    assert summary.unchanged == ["A"] and summary.updated == ["B", "C"] and summary.unmatched == ["Z"]
    assert fake.writes[0] == ("B", {"warehouse_code": "WH-1", "stock": Decimal(5), "unit_cost_stock": Decimal(0)})
    assert fake.writes[1][0] == "C "  # written back under Fracttal's own spelling of the code


def test_conflicting_duplicates_and_non_parts_are_not_written() -> None:
    fake = FakeFracttal([WarehouseItem(code="A", stock=Decimal(0)), WarehouseItem(code="M", stock=Decimal(0))])
    machine = Asset(asset_id="m", code="M", kind="asset", quantity=Decimal(3), updated_at=NOW)
    summary = sync_spare_parts([_level("A", "1"), _level("A", "2"), machine], client=fake)  # type: ignore[arg-type]
    assert summary.failed == {"A": "given twice with different quantities"}
    assert fake.writes == [] and not summary.ok


def test_refused_writes_are_reported_and_retryable_ones_raise() -> None:
    items = [WarehouseItem(code="A", stock=Decimal(0)), WarehouseItem(code="B", stock=Decimal(0))]
    refused = FakeFracttal(items, {"A": ApiError("fracttal", 400, "bad", retryable=False)})
    summary = sync_spare_parts([_level("A", "1"), _level("B", "1")], client=refused)  # type: ignore[arg-type]
    assert summary.failed == {"A": "bad"} and summary.updated == ["B"]

    down = FakeFracttal(items, {"A": ApiError("fracttal", 503, "down", retryable=True)})
    with pytest.raises(ApiError):
        sync_spare_parts([_level("A", "1")], client=down)  # type: ignore[arg-type]
