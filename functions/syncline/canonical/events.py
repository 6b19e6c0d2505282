"""Canonical events: what Syncline publishes about a change, one versioned envelope per event type."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from syncline.canonical.entities import (
    Account,
    Asset,
    Contact,
    Deal,
    InventoryAdjustment,
    Order,
    OrderStatus,
    Price,
    Product,
    Shipment,
)
from syncline.models import InventoryLevel, inventory_key

SCHEMA_VERSION: Final = "1"
MAX_EVENT_ID: Final = 255
DataT = TypeVar("DataT", bound=BaseModel)


class CanonicalEvent(BaseModel, Generic[DataT]):
    """The envelope every canonical event shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: Annotated[str, Field(min_length=1, max_length=MAX_EVENT_ID)]
    occurred_at: datetime
    source_system: str
    key: str
    trace_id: str | None = None
    data: DataT


class OrderStatusChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    previous: OrderStatus | None
    current: OrderStatus
    changed_at: datetime


class StockUpdated(CanonicalEvent[InventoryLevel]):
    event_type: Literal["StockUpdated"] = "StockUpdated"


class StockAdjusted(CanonicalEvent[InventoryAdjustment]):
    event_type: Literal["StockAdjusted"] = "StockAdjusted"


StockBand = Literal["out", "low", "ok"]
CrossingKind = Literal["below_reorder_point", "out_of_stock", "back_in_stock"]


class StockCrossing(BaseModel):
    """A level that moved into another band (``syncline.business_alerts``): what the alert says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: CrossingKind
    pair: str
    sku: str
    location: str
    previous_band: StockBand
    band: StockBand
    available: Decimal
    previous_available: Decimal | None = None
    reorder_point: Decimal | None
    source_version: int
    changed_at: datetime

    @property
    def key(self) -> str:
        return inventory_key(self.sku, self.location)


class StockLevelCrossed(CanonicalEvent[StockCrossing]):
    event_type: Literal["StockLevelCrossed"] = "StockLevelCrossed"


class PriceChanged(CanonicalEvent[Price]):
    event_type: Literal["PriceChanged"] = "PriceChanged"


class ProductUpdated(CanonicalEvent[Product]):
    event_type: Literal["ProductUpdated"] = "ProductUpdated"


class OrderReceived(CanonicalEvent[Order]):
    event_type: Literal["OrderReceived"] = "OrderReceived"


class OrderStatusChanged(CanonicalEvent[OrderStatusChange]):
    event_type: Literal["OrderStatusChanged"] = "OrderStatusChanged"


class ShipmentCreated(CanonicalEvent[Shipment]):
    event_type: Literal["ShipmentCreated"] = "ShipmentCreated"


class CustomerUpdated(CanonicalEvent[Contact]):
    event_type: Literal["CustomerUpdated"] = "CustomerUpdated"


class AccountUpdated(CanonicalEvent[Account]):
    event_type: Literal["AccountUpdated"] = "AccountUpdated"


class DealUpdated(CanonicalEvent[Deal]):
    event_type: Literal["DealUpdated"] = "DealUpdated"


class AssetUpdated(CanonicalEvent[Asset]):
    event_type: Literal["AssetUpdated"] = "AssetUpdated"


EVENT_TYPES: dict[str, type[CanonicalEvent[BaseModel]]] = {
    cls.__name__: cls  # type: ignore[misc]
    for cls in (
        StockUpdated,
        StockAdjusted,
        StockLevelCrossed,
        PriceChanged,
        ProductUpdated,
        OrderReceived,
        OrderStatusChanged,
        ShipmentCreated,
        CustomerUpdated,
        AccountUpdated,
        DealUpdated,
        AssetUpdated,
    )
}


def change_event_id(*parts: str) -> str:
    """An event id that names a change (its type first, then what identifies it), so every attempt to publish the
    same change carries the same id and the notifier's dedupe recognises it; hashed when it would not fit."""
    event_id = ":".join(parts)
    if len(event_id) <= MAX_EVENT_ID:
        return event_id
    return f"{parts[0]}:{hashlib.blake2b(event_id.encode(), digest_size=20).hexdigest()}"
