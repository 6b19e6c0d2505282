"""Canonical events: what Syncline publishes about a change, one versioned envelope per event type."""

from __future__ import annotations

from datetime import datetime
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
from syncline.models import InventoryLevel

SCHEMA_VERSION: Final = "1"
DataT = TypeVar("DataT", bound=BaseModel)


class CanonicalEvent(BaseModel, Generic[DataT]):
    """The envelope every canonical event shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: Annotated[str, Field(min_length=1, max_length=255)]
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
