"""The canonical model: entities every connector maps to and from, and the versioned events about them.

Each connector declares how its system's shape maps onto these models; the engine only ever sees
these. The events are published as JSON Schema files under ``schemas/v1`` (``make schemas``), and a
test fails when a change to the models would break a consumer of an existing schema version.
"""

from syncline.canonical.entities import (
    Account,
    Address,
    Asset,
    Contact,
    Deal,
    InventoryAdjustment,
    Order,
    OrderLine,
    OrderStatus,
    Price,
    Product,
    ProductVariant,
    Shipment,
    ShipmentLine,
)
from syncline.canonical.events import EVENT_TYPES, SCHEMA_VERSION, CanonicalEvent

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Account",
    "Address",
    "Asset",
    "CanonicalEvent",
    "Contact",
    "Deal",
    "InventoryAdjustment",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Price",
    "Product",
    "ProductVariant",
    "Shipment",
    "ShipmentLine",
]
