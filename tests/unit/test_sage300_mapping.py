from decimal import Decimal
from typing import Any

import pytest

from syncline.erp.sage300 import MappingError, to_inventory_level

LOCATIONS = {"1": "main"}


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ITEMNO": "A-100",
        "LOCATION": "1",
        "QTYONHAND": Decimal("12.0000"),
        "QTYCOMMIT": Decimal("2.0000"),
        "QTYSALORDR": Decimal("0"),
        "QTYONORDER": Decimal("5.0000"),
        "AUDTDATE": 20261123,
        "AUDTTIME": 10000000,
        "DESC": "Widget",
        "STOCKUNIT": "EA",
        "INACTIVE": 0,
        "ITEM_AUDTDATE": 20261122,
        "ITEM_AUDTTIME": 0,
    }
    row.update(overrides)
    return row


def test_row_maps_to_canonical_level_in_target_location_codes() -> None:
    level = to_inventory_level(_row(), LOCATIONS)
    assert (level.sku, level.location) == ("A-100", "main")
    assert (level.on_hand, level.reserved, level.available, level.on_order) == (
        Decimal("12"),
        Decimal("2"),
        Decimal("10"),
        Decimal("5"),
    )
    assert level.source_version == 2026112310000000  # the newer of the row and item stamps


def test_oversold_stock_is_available_zero_not_negative() -> None:
    assert to_inventory_level(_row(QTYCOMMIT=Decimal(20)), LOCATIONS).available == 0


def test_scale_does_not_change_the_content_hash() -> None:
    a = to_inventory_level(_row(QTYONHAND=Decimal("12.0000")), LOCATIONS)
    b = to_inventory_level(_row(QTYONHAND=Decimal(12), AUDTTIME=11000000), LOCATIONS)
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != to_inventory_level(_row(QTYONHAND=Decimal(13)), LOCATIONS).content_hash()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"QTYONHAND": Decimal(-1)}, "negative quantity: QTYONHAND"),
        ({"LOCATION": "9"}, "location '9' is not mapped"),
        ({"AUDTTIME": 99999999}, "unparsable audit stamp"),
        ({"ITEM_AUDTDATE": 0}, "unparsable audit stamp"),
        ({"QTYCOMMIT": None}, "QTYCOMMIT is empty"),
    ],
)
def test_rows_that_cannot_sync_say_why(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(MappingError, match=reason):
        to_inventory_level(_row(**overrides), LOCATIONS)
