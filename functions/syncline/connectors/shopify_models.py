"""Typed records the Shopify connector returns, and their mapping to Syncline's canonical entities.

Ids stay Shopify GIDs (strings): their numeric parts exceed 2^53 and must never pass through a float.
Money stays ``Decimal`` (Shopify sends it as a string).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from syncline.canonical.entities import Order, OrderLine, OrderStatus, Price, Product, ProductVariant
from syncline.models import InventoryLevel

T = TypeVar("T")

GID_PREFIX = "gid://shopify/"


def gid(kind: str, number: int | str) -> str:
    """``gid://shopify/{kind}/{number}``; a GID passed in is returned unchanged."""
    text = str(number)
    return text if text.startswith(GID_PREFIX) else f"{GID_PREFIX}{kind}/{text}"


def gid_number(value: str) -> str:
    """The numeric part of a GID as text (an InventoryLevel GID carries ``?inventory_item_id=`` after it)."""
    if not value.startswith(GID_PREFIX):
        raise ValueError(f"not a Shopify GID: {value!r}")
    tail = value[len(GID_PREFIX) :].split("?", 1)[0]
    kind, _, number = tail.partition("/")
    if not kind or not number.isdigit():
        raise ValueError(f"not a Shopify GID: {value!r}")
    return number


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float


@dataclass(frozen=True)
class QueryCost:
    """``extensions.cost`` of one response (``actual`` is absent when the query was throttled)."""

    requested: float | None
    actual: float | None
    throttle: ThrottleStatus | None

    @classmethod
    def parse(cls, extensions: Any) -> QueryCost | None:
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        if not isinstance(cost, dict):
            return None
        status = cost.get("throttleStatus")
        throttle = (
            ThrottleStatus(
                float(status["maximumAvailable"]), float(status["currentlyAvailable"]), float(status["restoreRate"])
            )
            if isinstance(status, dict)
            else None
        )
        return cls(_number(cost.get("requestedQueryCost")), _number(cost.get("actualQueryCost")), throttle)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True)
class ShopifyInventoryLevel:
    id: str
    inventory_item_id: str
    location_id: str
    sku: str | None
    quantities: Mapping[str, int]
    updated_at: datetime | None

    def quantity(self, name: str) -> int:
        return self.quantities.get(name, 0)

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> ShopifyInventoryLevel:
        quantities = {q["name"]: int(q["quantity"]) for q in node.get("quantities") or []}
        stamps = [parse_time(q.get("updatedAt")) for q in node.get("quantities") or []]
        stamps.append(parse_time(node.get("updatedAt")))
        known = [stamp for stamp in stamps if stamp is not None]
        item = node.get("item") or {}
        return cls(
            id=node["id"],
            inventory_item_id=item.get("id", ""),
            location_id=(node.get("location") or {}).get("id", ""),
            sku=item.get("sku") or None,
            quantities=quantities,
            updated_at=max(known) if known else None,
        )

    def to_canonical(self, *, sku: str, location: str) -> InventoryLevel:
        """The canonical level in the target's codes (``sku``/``location`` from the identity map)."""
        updated = self.updated_at or datetime.now(UTC)
        return InventoryLevel(
            sku=sku,
            location=location,
            on_hand=Decimal(self.quantity("on_hand")),
            reserved=Decimal(self.quantity("committed") + self.quantity("reserved")),
            available=Decimal(self.quantity("available")),
            on_order=Decimal(self.quantity("incoming")),
            source_version=millis(updated) or 0,
            source_updated_at=updated,
        )


@dataclass(frozen=True)
class ShopifyInventoryItem:
    id: str
    sku: str | None
    tracked: bool
    variant_id: str | None
    product_id: str | None
    updated_at: datetime | None

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> ShopifyInventoryItem:
        variant = node.get("variant") or {}
        return cls(
            id=node["id"],
            sku=node.get("sku") or None,
            tracked=bool(node.get("tracked")),
            variant_id=variant.get("id"),
            product_id=(variant.get("product") or {}).get("id"),
            updated_at=parse_time(node.get("updatedAt")),
        )


@dataclass(frozen=True)
class ShopifyVariant:
    id: str
    sku: str | None
    barcode: str | None
    title: str | None
    price: Decimal | None
    compare_at_price: Decimal | None
    inventory_item_id: str | None
    updated_at: datetime | None

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> ShopifyVariant:
        return cls(
            id=node["id"],
            sku=node.get("sku") or None,
            barcode=node.get("barcode") or None,
            title=node.get("title"),
            price=_money(node.get("price")),
            compare_at_price=_money(node.get("compareAtPrice")),
            inventory_item_id=(node.get("inventoryItem") or {}).get("id"),
            updated_at=parse_time(node.get("updatedAt")),
        )

    def to_price(self, currency: str, *, fallback_time: datetime | None = None) -> Price:
        """The canonical price of this variant's SKU. A compare-at below the price shows no 'was' price."""
        if not self.sku or self.price is None:
            raise ValueError(f"variant {self.id} has no SKU or no price")
        compare_at = self.compare_at_price if self.compare_at_price and self.compare_at_price >= self.price else None
        updated = self.updated_at or fallback_time or datetime.now(UTC)
        return Price(
            sku=self.sku,
            currency=currency,
            base=self.price,
            compare_at=compare_at,
            source_version=millis(updated),
            updated_at=updated,
        )


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


@dataclass(frozen=True)
class ShopifyProduct:
    id: str
    title: str
    description_html: str | None
    vendor: str | None
    status: str
    tags: list[str]
    updated_at: datetime | None
    variants: list[ShopifyVariant] = field(default_factory=list)

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> ShopifyProduct:
        return cls(
            id=node["id"],
            title=node.get("title") or "",
            description_html=node.get("descriptionHtml"),
            vendor=node.get("vendor"),
            status=str(node.get("status") or "ACTIVE"),
            tags=list(node.get("tags") or []),
            updated_at=parse_time(node.get("updatedAt")),
            variants=[ShopifyVariant.parse(v) for v in (node.get("variants") or {}).get("nodes", [])],
        )

    def to_canonical(self) -> Product:
        """The canonical product; variants without a SKU are not synced (they have no key)."""
        variants = [
            ProductVariant(sku=v.sku, barcode=v.barcode, title=v.title, price=v.price, compare_at=v.compare_at_price)
            for v in self.variants
            if v.sku
        ]
        updated = self.updated_at or datetime.now(UTC)
        status = self.status.lower()
        return Product(
            product_id=self.id,
            title=self.title,
            description=self.description_html,
            vendor=self.vendor,
            status=status if status in {"active", "draft", "archived"} else "draft",
            tags=self.tags,
            variants=variants,
            source_version=millis(updated),
            updated_at=updated,
        )


@dataclass(frozen=True)
class ShopifyOrderLine:
    id: str
    sku: str | None
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class ShopifyOrder:
    id: str
    name: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime | None
    cancelled_at: datetime | None
    financial_status: str | None
    fulfillment_status: str | None
    currency: str
    customer_id: str | None
    total: Decimal
    lines: list[ShopifyOrderLine]

    @classmethod
    def parse(cls, node: Mapping[str, Any]) -> ShopifyOrder:
        total = ((node.get("totalPriceSet") or {}).get("shopMoney") or {}).get("amount")
        created = parse_time(node.get("createdAt"))
        if created is None:
            raise ValueError(f"order {node.get('id')} has no createdAt")
        return cls(
            id=node["id"],
            name=node.get("name"),
            email=node.get("email"),
            created_at=created,
            updated_at=parse_time(node.get("updatedAt")),
            cancelled_at=parse_time(node.get("cancelledAt")),
            financial_status=node.get("displayFinancialStatus"),
            fulfillment_status=node.get("displayFulfillmentStatus"),
            currency=str(node.get("currencyCode") or ""),
            customer_id=(node.get("customer") or {}).get("id"),
            total=_money(total) or Decimal(0),
            lines=[
                ShopifyOrderLine(
                    id=line["id"],
                    sku=line.get("sku") or None,
                    quantity=int(line.get("quantity") or 0),
                    unit_price=_money(((line.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount"))
                    or Decimal(0),
                )
                for line in (node.get("lineItems") or {}).get("nodes", [])
            ],
        )

    def to_canonical(self) -> Order:
        """The canonical order (lines without a SKU or quantity are not synced)."""
        updated = self.updated_at or self.created_at
        return Order(
            order_id=self.id,
            number=self.name,
            status=_order_status(self),
            financial_status=_FINANCIAL.get(self.financial_status or "", "pending"),
            currency=self.currency,
            customer_id=self.customer_id,
            email=self.email,
            lines=[
                OrderLine(line_id=line.id, sku=line.sku, quantity=Decimal(line.quantity), unit_price=line.unit_price)
                for line in self.lines
                if line.sku and line.quantity > 0
            ],
            total=self.total,
            placed_at=self.created_at,
            source_version=millis(updated),
            updated_at=updated,
        )


_FINANCIAL: dict[str, str] = {
    "PENDING": "pending",
    "AUTHORIZED": "authorized",
    "PAID": "paid",
    "PARTIALLY_PAID": "pending",
    "PARTIALLY_REFUNDED": "partially_refunded",
    "REFUNDED": "refunded",
    "VOIDED": "voided",
    "EXPIRED": "voided",
}


def _order_status(order: ShopifyOrder) -> OrderStatus:
    if order.cancelled_at is not None:
        return OrderStatus.CANCELLED
    fulfillment = order.fulfillment_status or ""
    if fulfillment == "FULFILLED":
        return OrderStatus.FULFILLED
    if fulfillment == "PARTIALLY_FULFILLED":
        return OrderStatus.PARTIALLY_FULFILLED
    return OrderStatus.CONFIRMED


InventoryIdentity = Callable[[str, str], "tuple[str, str] | None"]
"""Maps (sku, location code) to (InventoryItem GID, Location GID); None when the pair is not mapped."""


def identity_from_mapping(mapping: Mapping[tuple[str, str], tuple[str, str]]) -> InventoryIdentity:
    """An identity callable over a plain mapping ``{(sku, location): (item GID, location GID)}``."""
    return lambda sku, location: mapping.get((sku, location))


def reverse_identity(
    mapping: Mapping[tuple[str, str], tuple[str, str]],
) -> Callable[[str, str], tuple[str, str] | None]:
    """(item GID, location GID) -> (sku, location code), for mapping Shopify levels back to canonical ones."""
    reverse = {value: key for key, value in mapping.items()}
    return lambda item, location: reverse.get((item, location))
