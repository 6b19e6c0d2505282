"""Canonical entities beyond inventory levels (``syncline.models.InventoryLevel``).

Ids are strings everywhere: Shopify ids exceed 2^53 and must never pass through a float. Money is a
``Decimal`` with an ISO 4217 currency. Every entity carries the source's version and time of change,
which the conflict policies compare.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Annotated[str, Field(min_length=1, max_length=255)]
Sku = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
NonNegative = Annotated[Decimal, Field(ge=0)]


class _Canonical(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Versioned(_Canonical):
    source_version: int | None = Field(None, description="monotonic version in the source system, when it has one")
    updated_at: datetime = Field(description="when the source last changed the record")


class Price(Versioned):
    """The selling price of one SKU in one currency (and price list, where the source has several)."""

    sku: Sku
    currency: Currency
    base: NonNegative
    compare_at: NonNegative | None = Field(None, description="the struck-through 'was' price")
    price_list: str | None = None

    @model_validator(mode="after")
    def _compare_at_is_higher(self) -> Price:
        if self.compare_at is not None and self.compare_at < self.base:
            raise ValueError("compare_at must not be lower than base")
        return self


class ProductVariant(_Canonical):
    sku: Sku
    barcode: str | None = None
    title: str | None = None
    price: NonNegative | None = None
    compare_at: NonNegative | None = None
    weight_grams: NonNegative | None = None
    tracked: bool = True
    options: dict[str, str] = Field(default_factory=dict)


class Product(Versioned):
    product_id: Id
    title: str = Field(min_length=1, max_length=255)
    description: str | None = None
    vendor: str | None = None
    status: Literal["active", "draft", "archived"] = "active"
    tags: list[str] = Field(default_factory=list)
    variants: list[ProductVariant] = Field(min_length=1)


class OrderStatus(StrEnum):
    """Business states in order; see :data:`ORDER_STATUS_RANK` for the direction they may move."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


# An order status never moves backwards: higher rank wins; fulfilled and cancelled are terminal.
ORDER_STATUS_RANK: dict[OrderStatus, int] = {
    OrderStatus.PENDING: 0,
    OrderStatus.CONFIRMED: 1,
    OrderStatus.PARTIALLY_FULFILLED: 2,
    OrderStatus.FULFILLED: 3,
    OrderStatus.CANCELLED: 3,
}


class Address(_Canonical):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class OrderLine(_Canonical):
    line_id: Id
    sku: Sku
    quantity: Annotated[Decimal, Field(gt=0)]
    unit_price: NonNegative
    discount: NonNegative = Decimal(0)
    tax: NonNegative = Decimal(0)


class Order(Versioned):
    order_id: Id
    number: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    financial_status: Literal["pending", "authorized", "paid", "partially_refunded", "refunded", "voided"] = "pending"
    currency: Currency
    customer_id: Id | None = None
    email: str | None = None
    shipping_address: Address | None = None
    lines: list[OrderLine] = Field(min_length=1)
    total: NonNegative
    placed_at: datetime


class ShipmentLine(_Canonical):
    sku: Sku
    quantity: Annotated[Decimal, Field(gt=0)]


class Shipment(Versioned):
    shipment_id: Id
    order_id: Id
    status: Literal["pending", "shipped", "delivered", "returned", "cancelled"] = "shipped"
    carrier: str | None = None
    tracking_number: str | None = None
    location: str | None = Field(None, description="the location the goods left from (target location code)")
    lines: list[ShipmentLine] = Field(min_length=1)
    shipped_at: datetime | None = None


class Contact(Versioned):
    """A customer or CRM contact."""

    contact_id: Id
    email: str | None = Field(None, max_length=254)
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    account_id: Id | None = None
    lifecycle_stage: str | None = None
    address: Address | None = None
    marketing_opt_in: bool | None = None


class Account(Versioned):
    """A company (HubSpot company, Salesforce account)."""

    account_id: Id
    name: str = Field(min_length=1, max_length=255)
    domain: str | None = None
    industry: str | None = None
    address: Address | None = None


class Deal(Versioned):
    """A HubSpot deal or Salesforce opportunity."""

    deal_id: Id
    name: str = Field(min_length=1, max_length=255)
    stage: str
    amount: NonNegative | None = None
    currency: Currency | None = None
    close_date: date | None = None
    account_id: Id | None = None
    contact_ids: list[Id] = Field(default_factory=list)


class Asset(Versioned):
    """A maintained asset or a spare part in a CMMS warehouse (Fracttal)."""

    asset_id: Id
    code: str = Field(min_length=1, max_length=64, description="the ERP item number for spare parts")
    kind: Literal["asset", "spare_part"]
    description: str | None = None
    warehouse: str | None = None
    quantity: NonNegative | None = Field(None, description="stock of a spare part in its warehouse")
    unit: str | None = None


AdjustmentKind = Literal["receipt", "shipment", "transfer_out", "transfer_in", "cycle_count", "manual"]


class InventoryAdjustment(_Canonical):
    """A change to stock, applied exactly once per ``idempotency_key``.

    ``quantity`` is signed for ``manual`` and positive for the other movement kinds (their sign is
    the kind's); for ``cycle_count`` it is the counted on-hand quantity.
    """

    idempotency_key: Id
    sku: Sku
    location: str = Field(min_length=1, max_length=64)
    kind: AdjustmentKind
    quantity: Decimal
    reason: str | None = Field(None, max_length=500)
    reference: str | None = Field(None, max_length=255, description="the document behind it: PO, shipment, count sheet")
    source_system: str
    occurred_at: datetime

    @model_validator(mode="after")
    def _sign_matches_kind(self) -> InventoryAdjustment:
        if self.kind not in {"manual"} and self.quantity < 0:
            raise ValueError(f"{self.kind} quantity must not be negative (the kind gives the direction)")
        if self.kind == "manual" and self.quantity == 0:
            raise ValueError("a manual adjustment of zero changes nothing")
        return self

    def change_from(self, on_hand: Decimal) -> Decimal:
        """The signed change this adjustment makes to ``on_hand``."""
        if self.kind in {"receipt", "transfer_in"}:
            return self.quantity
        if self.kind in {"shipment", "transfer_out"}:
            return -self.quantity
        if self.kind == "cycle_count":
            return self.quantity - on_hand
        return self.quantity
