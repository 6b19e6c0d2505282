"""Shopify Admin GraphQL API: inventory, products and prices, orders.

- Endpoint: ``POST {base_url}/admin/api/{api_version}/graphql.json``. The version is pinned by the caller;
  ``base_url`` defaults to ``https://{shop}`` and points at the sandbox locally.
- Auth: the ``X-Shopify-Access-Token`` header from a callable, asked for on every attempt; the token never
  appears in a log, an error or a ``repr``.
- Transport: ``HttpApi`` retries 429 / 5xx / timeouts / dropped connections. GraphQL throttling is different:
  Shopify answers HTTP 200 with ``errors[].extensions.code == "THROTTLED"``; the client waits the time the
  response's own ``throttleStatus`` implies and sends again, a bounded number of times.
- Rate limit: a ``CostLimiter`` (one bucket per shop, shared through DynamoDB) is charged the query's
  expected cost before each call and reconciled with ``extensions.cost`` after it.
- Inventory writes: ``inventorySetQuantities`` with compare-and-swap on the quantity read
  (``changeFromQuantity`` from 2026-01, ``compareQuantity`` before) and, from 2026-01, an ``@idempotent``
  key, so a retried request never applies twice. A stale compare is re-read and retried
  (``ShopifyInventoryTarget``) or raised as ``StaleWrite`` (``ShopifyInventoryRecords``, two-way sync).
- JSON: integers stay exact and decimals are parsed as ``Decimal``; ids are GID strings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

import httpx

from syncline.canonical.entities import Price, Shipment
from syncline.connectors import shopify_queries as q
from syncline.connectors.http import ApiError, HttpApi, RetryPolicy
from syncline.connectors.shopify_models import (
    InventoryIdentity,
    Page,
    QueryCost,
    ShopifyInventoryItem,
    ShopifyInventoryLevel,
    ShopifyOrder,
    ShopifyProduct,
    ShopifyVariant,
    parse_time,
)
from syncline.connectors.shopify_rate_limit import CostLimiter, throttled_wait
from syncline.models import InventoryLevel, split_inventory_key
from syncline.twoway import Copy, StaleWrite

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION: Final = "2026-01"
QUANTITY_NAMES: Final = ("available", "on_hand", "committed", "reserved", "incoming")
SET_LIMIT: Final = 250  # quantities per inventorySetQuantities call
STALE_CODES: Final = frozenset({"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"})
QuantityName = Literal["available", "on_hand"]


class ShopifyError(RuntimeError):
    """A GraphQL request Shopify refused (``errors``) or kept throttling. ``retryable``: trying later may help."""

    def __init__(self, message: str, *, codes: Sequence[str] = (), retryable: bool = False) -> None:
        self.codes, self.retryable = tuple(codes), retryable
        super().__init__(f"shopify: {message}"[:500])


class ShopifyUserError(ShopifyError):
    """A mutation ran but refused the input (``userErrors``), one entry per problem."""

    def __init__(self, operation: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = [dict(error) for error in errors]
        codes = [str(error.get("code") or "") for error in errors]
        text = "; ".join(f"{error.get('code') or ''} {error.get('message', '')}".strip() for error in errors)
        super().__init__(f"{operation}: {text}", codes=codes)


class InventoryStale(StaleWrite):
    """``inventorySetQuantities`` found a quantity other than the one it was told to change from."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = [dict(error) for error in errors]
        super().__init__("; ".join(str(error.get("message", "")) for error in errors)[:300])


@dataclass(frozen=True)
class QuantityChange:
    """Set ``quantity`` at (item, location), only if the current quantity is ``change_from`` (None: don't check)."""

    inventory_item_id: str
    location_id: str
    quantity: int
    change_from: int | None


@dataclass(frozen=True)
class AppliedChange:
    inventory_item_id: str
    location_id: str
    name: str
    delta: int
    quantity_after: int | None


@dataclass(frozen=True)
class InventoryAdjustment:
    id: str | None
    created_at: datetime | None
    changes: list[AppliedChange]


@dataclass(frozen=True)
class VariantPrice:
    variant_id: str
    price: Decimal
    compare_at_price: Decimal | None = None


def _supports_change_from(version: str) -> bool:
    return version == "unstable" or version >= q.FIRST_CHANGE_FROM_VERSION


class ShopifyAdmin:
    """A client of one shop's Admin GraphQL API at one pinned version."""

    def __init__(
        self,
        shop: str,
        *,
        access_token: Callable[[], str],
        api_version: str = DEFAULT_API_VERSION,
        base_url: str | None = None,
        limiter: CostLimiter | None = None,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        throttle_attempts: int = 8,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.shop = shop
        self.api_version = api_version
        self.limiter = limiter
        self.throttle_attempts = throttle_attempts
        self._token = access_token
        self.http = HttpApi(
            "shopify",
            base_url or f"https://{shop}",
            client=client,
            retry=retry,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            auth=lambda: {"X-Shopify-Access-Token": self._token()},
        )
        self._sleep = sleep or self.http.retry.sleep
        self.throttled = 0  # THROTTLED answers seen, for metrics and tests
        self.last_cost: QueryCost | None = None

    def __repr__(self) -> str:
        return f"ShopifyAdmin(shop={self.shop!r}, api_version={self.api_version!r})"

    @property
    def path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"

    @property
    def change_from_dialect(self) -> bool:
        """Whether this version takes ``changeFromQuantity`` and ``@idempotent`` (2026-01 and later)."""
        return _supports_change_from(self.api_version)

    # --- transport ----------------------------------------------------------------------------------

    def graphql(self, operation: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send one named operation and return its ``data``; wait and resend while Shopify answers THROTTLED."""
        values = dict(variables or {})
        payload = {"query": query, "operationName": operation, "variables": values}
        content = json.dumps(payload, separators=(",", ":")).encode()
        expected = q.expected_cost(operation, values)
        for attempt in range(1, self.throttle_attempts + 1):
            taken = self.limiter.acquire(expected) if self.limiter else 0.0
            response = self.http.post(self.path, content=content)
            body = _decode(response)
            cost = QueryCost.parse(body.get("extensions"))
            self.last_cost = cost
            errors = body.get("errors")
            throttled = isinstance(errors, list) and any(_code(error) == "THROTTLED" for error in errors)
            if self.limiter:
                self.limiter.reconcile(taken, cost, charged=not throttled)
            if throttled:
                self.throttled += 1
                if attempt < self.throttle_attempts:
                    self._sleep(self._throttle_wait(cost, expected, attempt))
                continue
            if errors:
                raise _graphql_error(operation, errors)
            data = body.get("data")
            if not isinstance(data, dict):
                raise ShopifyError(f"{operation}: response has no data", retryable=True)
            return data
        raise ShopifyError(
            f"{operation}: THROTTLED {self.throttle_attempts} times", codes=["THROTTLED"], retryable=True
        )

    def _throttle_wait(self, cost: QueryCost | None, expected: float, attempt: int) -> float:
        if cost is not None and cost.throttle is not None:
            return max(throttled_wait(cost.requested or expected, cost.throttle), 0.05)
        return self.http.retry.backoff(attempt)

    def close(self) -> None:
        self.http.close()

    # --- reads --------------------------------------------------------------------------------------

    def shop_info(self) -> dict[str, Any]:
        shop: dict[str, Any] = self.graphql("Shop", q.SHOP)["shop"]
        return shop

    def inventory_level(
        self, inventory_item_id: str, location_id: str, names: Sequence[str] = QUANTITY_NAMES
    ) -> ShopifyInventoryLevel | None:
        """The level of one item at one location; None when the item does not exist or is not stocked there."""
        data = self.graphql(
            "InventoryLevel",
            q.INVENTORY_LEVEL,
            {"itemId": inventory_item_id, "locationId": location_id, "names": list(names)},
        )
        item = data.get("inventoryItem")
        level = item.get("inventoryLevel") if isinstance(item, dict) else None
        return ShopifyInventoryLevel.parse(level) if isinstance(level, dict) else None

    def inventory_levels_page(
        self, location_id: str, *, first: int = 50, after: str | None = None, names: Sequence[str] = QUANTITY_NAMES
    ) -> Page[ShopifyInventoryLevel]:
        data = self.graphql(
            "LocationInventoryLevels",
            q.LOCATION_INVENTORY_LEVELS,
            {"locationId": location_id, "first": first, "after": after, "names": list(names)},
        )
        location = data.get("location")
        if not isinstance(location, dict):
            raise ShopifyError(f"location {location_id} not found")
        return _page(location["inventoryLevels"], ShopifyInventoryLevel.parse)

    def iter_inventory_levels(self, location_id: str, *, page_size: int = 50) -> Iterator[ShopifyInventoryLevel]:
        after: str | None = None
        while True:
            page = self.inventory_levels_page(location_id, first=page_size, after=after)
            yield from page.items
            if not page.has_next_page:
                return
            after = page.end_cursor

    def inventory_item(self, inventory_item_id: str) -> ShopifyInventoryItem | None:
        node = self.graphql("InventoryItem", q.INVENTORY_ITEM, {"id": inventory_item_id}).get("inventoryItem")
        return ShopifyInventoryItem.parse(node) if isinstance(node, dict) else None

    def product(self, product_id: str, *, variants: int = 100) -> ShopifyProduct | None:
        node = self.graphql("Product", q.PRODUCT, {"id": product_id, "variants": variants}).get("product")
        return ShopifyProduct.parse(node) if isinstance(node, dict) else None

    def products_page(
        self, *, first: int = 10, after: str | None = None, query: str | None = None, variants: int = 25
    ) -> Page[ShopifyProduct]:
        """One page of products (keep ``first`` x ``variants`` small: a query may cost at most 1,000 points)."""
        data = self.graphql(
            "Products", q.PRODUCTS, {"first": first, "after": after, "query": query, "variants": variants}
        )
        return _page(data["products"], ShopifyProduct.parse)

    def iter_products(self, *, page_size: int = 10, query: str | None = None) -> Iterator[ShopifyProduct]:
        after: str | None = None
        while True:
            page = self.products_page(first=page_size, after=after, query=query)
            yield from page.items
            if not page.has_next_page:
                return
            after = page.end_cursor

    def order(self, order_id: str, *, lines: int = 100) -> ShopifyOrder | None:
        node = self.graphql("Order", q.ORDER, {"id": order_id, "lines": lines}).get("order")
        return ShopifyOrder.parse(node) if isinstance(node, dict) else None

    def orders_page(
        self, *, first: int = 10, after: str | None = None, query: str | None = None, lines: int = 25
    ) -> Page[ShopifyOrder]:
        """One page of orders (``query`` uses Shopify's search syntax, e.g. ``updated_at:>2026-01-01``)."""
        data = self.graphql("Orders", q.ORDERS, {"first": first, "after": after, "query": query, "lines": lines})
        return _page(data["orders"], ShopifyOrder.parse)

    def iter_orders(self, *, page_size: int = 10, query: str | None = None) -> Iterator[ShopifyOrder]:
        after: str | None = None
        while True:
            page = self.orders_page(first=page_size, after=after, query=query)
            yield from page.items
            if not page.has_next_page:
                return
            after = page.end_cursor

    # --- writes -------------------------------------------------------------------------------------

    def set_inventory(
        self,
        changes: Sequence[QuantityChange],
        *,
        name: QuantityName = "available",
        reason: str = "correction",
        reference_document_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> InventoryAdjustment:
        """Set absolute quantities with compare-and-swap; raise ``InventoryStale`` if any compare failed.

        ``idempotency_key`` (2026-01 and later) makes a resent request return the first one's result; by
        default every call gets a fresh key (the HTTP layer's own retries resend the same body, so the same key).
        """
        if not changes or len(changes) > SET_LIMIT:
            raise ValueError(f"between 1 and {SET_LIMIT} quantity changes per call")
        modern = self.change_from_dialect
        compare = "changeFromQuantity" if modern else "compareQuantity"
        quantities = [
            {
                "inventoryItemId": change.inventory_item_id,
                "locationId": change.location_id,
                "quantity": change.quantity,
                compare: change.change_from,
            }
            for change in changes
        ]
        data_input: dict[str, Any] = {"name": name, "reason": reason, "quantities": quantities}
        if reference_document_uri:
            data_input["referenceDocumentUri"] = reference_document_uri
        if modern:
            variables: dict[str, Any] = {"input": data_input, "idempotencyKey": idempotency_key or str(uuid.uuid4())}
            document = q.INVENTORY_SET
        else:
            if any(change.change_from is None for change in changes):
                data_input["ignoreCompareQuantity"] = True  # one unchecked quantity opts the whole call out
            variables, document = {"input": data_input}, q.INVENTORY_SET_LEGACY
        result = self.graphql("InventorySet", document, variables)["inventorySetQuantities"]
        errors = result.get("userErrors") or []
        if any(str(error.get("code")) in STALE_CODES for error in errors):
            raise InventoryStale(errors)
        if errors:
            raise ShopifyUserError("inventorySetQuantities", errors)
        group = result.get("inventoryAdjustmentGroup") or {}
        return InventoryAdjustment(
            id=group.get("id"),
            created_at=parse_time(group.get("createdAt")),
            changes=[
                AppliedChange(
                    inventory_item_id=(change.get("item") or {}).get("id", ""),
                    location_id=(change.get("location") or {}).get("id", ""),
                    name=change.get("name", ""),
                    delta=int(change.get("delta") or 0),
                    quantity_after=change.get("quantityAfterChange"),
                )
                for change in group.get("changes") or []
            ],
        )

    def set_inventory_quantity(
        self,
        inventory_item_id: str,
        location_id: str,
        quantity: int,
        *,
        name: QuantityName = "available",
        attempts: int = 3,
    ) -> bool:
        """Make the quantity ``quantity``: read, compare-and-swap, re-read on a stale compare.

        Returns False when it already was; raises ``InventoryStale`` when every attempt lost a race.
        """
        for attempt in range(1, attempts + 1):
            level = self.inventory_level(inventory_item_id, location_id, names=(name,))
            if level is None:
                raise ShopifyError(f"{inventory_item_id} is not stocked at {location_id}", codes=["NOT_STOCKED"])
            current = level.quantity(name)
            if current == quantity:
                return False
            try:
                self.set_inventory([QuantityChange(inventory_item_id, location_id, quantity, current)], name=name)
            except InventoryStale:
                if attempt == attempts:
                    raise
                continue
            return True
        return False  # pragma: no cover - the loop returns or raises

    def update_variant_prices(self, product_id: str, prices: Sequence[VariantPrice]) -> list[ShopifyVariant]:
        """Set price and compare-at price of variants of one product (``productVariantsBulkUpdate``)."""
        variants = [
            {
                "id": price.variant_id,
                "price": str(price.price),
                "compareAtPrice": None if price.compare_at_price is None else str(price.compare_at_price),
            }
            for price in prices
        ]
        result = self.graphql(
            "VariantsBulkUpdate", q.VARIANTS_BULK_UPDATE, {"productId": product_id, "variants": variants}
        )["productVariantsBulkUpdate"]
        if result.get("userErrors"):
            raise ShopifyUserError("productVariantsBulkUpdate", result["userErrors"])
        return [ShopifyVariant.parse(node) for node in result.get("productVariants") or []]

    def update_product(
        self,
        product_id: str,
        *,
        title: str | None = None,
        description_html: str | None = None,
        vendor: str | None = None,
        tags: Sequence[str] | None = None,
        status: Literal["ACTIVE", "DRAFT", "ARCHIVED"] | None = None,
    ) -> ShopifyProduct:
        """Change product fields (``productUpdate``); fields left None are not sent, so they stay as they are."""
        fields = {"title": title, "descriptionHtml": description_html, "vendor": vendor, "status": status}
        product: dict[str, Any] = {"id": product_id, **{k: v for k, v in fields.items() if v is not None}}
        if tags is not None:
            product["tags"] = list(tags)
        result = self.graphql("ProductUpdate", q.PRODUCT_UPDATE, {"product": product, "variants": 100})["productUpdate"]
        if result.get("userErrors"):
            raise ShopifyUserError("productUpdate", result["userErrors"])
        return ShopifyProduct.parse(result["product"])


def _decode(response: httpx.Response) -> dict[str, Any]:
    """The JSON body, integers exact and decimals as ``Decimal`` (never a float)."""
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise ApiError("shopify", response.status_code, "response is not JSON", retryable=True) from exc
    if not isinstance(body, dict):
        raise ApiError("shopify", response.status_code, "response is not a JSON object", retryable=True)
    return body


def _code(error: Any) -> str:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return str(extensions.get("code") or "") if isinstance(extensions, dict) else ""


def _graphql_error(operation: str, errors: Any) -> ShopifyError:
    if not isinstance(errors, list):
        return ShopifyError(f"{operation}: {errors}")
    codes = [_code(error) for error in errors]
    messages = "; ".join(str(error.get("message", "")) if isinstance(error, dict) else str(error) for error in errors)
    retryable = any(code in {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"} for code in codes)
    return ShopifyError(f"{operation}: {messages}", codes=codes, retryable=retryable)


def _page(connection: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], Any]) -> Page[Any]:
    info = connection.get("pageInfo") or {}
    return Page(
        items=[parse(node) for node in connection.get("nodes") or []],
        has_next_page=bool(info.get("hasNextPage")),
        end_cursor=info.get("endCursor"),
    )


# --- Syncline ports ---------------------------------------------------------------------------------------


def _whole(value: Decimal, what: str) -> int:
    if value != value.to_integral_value():
        raise ValueError(f"{what} {value} is not a whole number; Shopify quantities are integers")
    return int(value)


class ShopifyInventoryTarget:
    """``InventoryTarget`` over Shopify: sets the canonical quantity (``available`` or ``on_hand``) of each
    level with compare-and-swap, in calls of up to 250, re-reading on a stale compare.

    ``identity`` maps (sku, location code) to (InventoryItem GID, Location GID). Levels it does not map, or
    whose item is not stocked at the location, are not written and not returned. Shopify keeps no source
    version, so 'never replacing a newer one' rests on the caller's state cache; the compare-and-swap only
    guarantees that a concurrent change made in Shopify is never overwritten unseen.
    """

    def __init__(
        self,
        admin: ShopifyAdmin,
        identity: InventoryIdentity,
        *,
        name: QuantityName = "available",
        attempts: int = 3,
        batch_size: int = SET_LIMIT,
        reason: str = "correction",
    ) -> None:
        self.admin, self.identity, self.name = admin, identity, name
        self.attempts, self.batch_size, self.reason = attempts, min(batch_size, SET_LIMIT), reason
        self.unmapped: list[str] = []

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        newest: dict[str, InventoryLevel] = {}
        for level in levels:
            if level.key not in newest or newest[level.key].source_version < level.source_version:
                newest[level.key] = level
        wanted: list[tuple[InventoryLevel, str, str, int]] = []
        for level in newest.values():
            ids = self.identity(level.sku, level.location)
            if ids is None:
                self.unmapped.append(level.key)
                logger.warning("shopify: no inventory item/location mapped for %s", level.key)
                continue
            quantity = level.available if self.name == "available" else level.on_hand
            wanted.append((level, ids[0], ids[1], _whole(quantity, f"{level.key} {self.name}")))
        written: set[str] = set()
        for start in range(0, len(wanted), self.batch_size):
            written |= self._write_batch(wanted[start : start + self.batch_size])
        return written

    def _write_batch(self, batch: Sequence[tuple[InventoryLevel, str, str, int]]) -> set[str]:
        for attempt in range(1, self.attempts + 1):
            agreed: set[str] = set()
            changes: list[QuantityChange] = []
            fingerprint = hashlib.sha256(f"{self.admin.shop}|{self.name}".encode())
            for level, item, location, quantity in batch:
                current = self.admin.inventory_level(item, location, names=(self.name,))
                if current is None:
                    logger.warning("shopify: %s is not stocked at its location; not written", level.key)
                    continue
                agreed.add(level.key)
                before = current.quantity(self.name)
                if before != quantity:
                    changes.append(QuantityChange(item, location, quantity, before))
                    fingerprint.update(f"|{item}|{location}|{before}>{quantity}@{level.source_version}".encode())
            if not changes:
                return agreed
            try:
                # The same levels read at the same quantities make the same key: a redelivered batch replays.
                self.admin.set_inventory(
                    changes, name=self.name, reason=self.reason, idempotency_key=fingerprint.hexdigest()[:40]
                )
            except InventoryStale:
                if attempt == self.attempts:
                    raise
                continue
            return agreed
        return set()  # pragma: no cover - the loop returns or raises


class ShopifyInventoryRecords:
    """A ``RecordSystem`` view of Shopify inventory for two-way sync.

    The key is ``SKU|LOCATION`` (canonical codes); the values are ``{name: quantity}``. The version is the
    quantity itself: it is exactly what Shopify's compare-and-swap checks, so ``write`` sends the version
    read as ``changeFromQuantity`` and raises ``StaleWrite`` when Shopify says it moved.
    """

    def __init__(
        self,
        admin: ShopifyAdmin,
        identity: InventoryIdentity,
        *,
        name: QuantityName = "available",
        system_name: str = "shopify",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.admin, self.identity, self.quantity_name = admin, identity, name
        self.name = system_name
        self.clock = clock

    def _ids(self, key: str) -> tuple[str, str] | None:
        sku, location = split_inventory_key(key)
        return self.identity(sku, location)

    def read(self, key: str) -> Copy | None:
        ids = self._ids(key)
        level = self.admin.inventory_level(*ids, names=(self.quantity_name,)) if ids else None
        if level is None:
            return None
        quantity = level.quantity(self.quantity_name)
        return Copy({self.quantity_name: quantity}, level.updated_at or self.clock(), version=_level_version(level))

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        """Set the quantity if the level is still the one read (``expected_version``: its change time in ms).

        The version is the time of the level's last change, not the quantity: an edit back to an earlier
        quantity is a change too (found by the chaos suite: with the quantity as version, such an edit looked
        like the agreed copy and lost to an older one). Shopify's own compare-and-swap on the quantity covers
        the moment between our re-read and the write."""
        ids = self._ids(key)
        if ids is None:
            raise ShopifyError(f"{key} is not mapped to a Shopify inventory item and location")
        quantity = _whole(Decimal(str(values[self.quantity_name])), f"{key} {self.quantity_name}")
        current = self.admin.inventory_level(*ids, names=(self.quantity_name,))
        if expected_version is not None and (current is None or _level_version(current) != expected_version):
            raise StaleWrite(f"{self.name}: {key} changed since it was read")
        before = current.quantity(self.quantity_name) if current is not None else None
        self.admin.set_inventory([QuantityChange(ids[0], ids[1], quantity, before)], name=self.quantity_name)
        after = self.admin.inventory_level(*ids, names=(self.quantity_name,))
        if after is None or after.quantity(self.quantity_name) != quantity:
            # Someone changed it right after our write: no version for ours, so theirs is never taken for our echo.
            return Copy({self.quantity_name: quantity}, self.clock(), version=None)
        return Copy({self.quantity_name: quantity}, after.updated_at or self.clock(), version=_level_version(after))


def _level_version(level: ShopifyInventoryLevel) -> int | None:
    """A level's version: the time of its last change in milliseconds (None when Shopify gives no time)."""
    return int(level.updated_at.timestamp() * 1000) if level.updated_at is not None else None


# --- fulfilments: OMS shipments -> the order's fulfilment in the store ------------------------------------

FULFILLABLE_ORDERS: Final = frozenset({"OPEN", "IN_PROGRESS"})
SHIPPED: Final = frozenset({"shipped", "delivered"})


@dataclass(frozen=True)
class FulfillmentPlan:
    """What ``fulfillmentCreate`` is to be sent for a shipment, or why nothing is (``skip``)."""

    skip: str | None = None
    fulfillment: Mapping[str, Any] = field(default_factory=dict)


def plan_fulfillment(state: Mapping[str, Any], shipment: Shipment) -> FulfillmentPlan:
    """Decide, from the order's fulfilment state as read (``OrderFulfillment``), what fulfilling ``shipment`` takes.

    Idempotent by construction: an order already fulfilled, a fulfilment already carrying the shipment's tracking
    number, or nothing left to ship of the shipment's SKUs plans nothing. Otherwise each shipment line takes what
    the open fulfilment orders still have to ship of its SKU, up to its quantity.
    """
    if shipment.status not in SHIPPED:
        return FulfillmentPlan(skip=f"shipment is {shipment.status}")
    if state.get("displayFulfillmentStatus") == "FULFILLED":
        return FulfillmentPlan(skip="order already fulfilled")
    tracking = shipment.tracking_number
    recorded = {
        str(info.get("number"))
        for fulfillment in state.get("fulfillments") or []
        for info in fulfillment.get("trackingInfo") or []
    }
    if tracking and tracking in recorded:
        return FulfillmentPlan(skip="shipment already recorded (its tracking number is on a fulfilment)")
    wanted: dict[str, Decimal] = {}
    for line in shipment.lines:
        wanted[line.sku] = wanted.get(line.sku, Decimal(0)) + line.quantity
    by_order: dict[str, list[dict[str, Any]]] = {}
    for order in (state.get("fulfillmentOrders") or {}).get("nodes") or []:
        if order.get("status") not in FULFILLABLE_ORDERS:
            continue
        for item in (order.get("lineItems") or {}).get("nodes") or []:
            left = wanted.get(str(item.get("sku") or ""), Decimal(0))
            take = min(int(item.get("remainingQuantity") or 0), int(left))
            if take > 0:
                wanted[str(item["sku"])] = left - take
                by_order.setdefault(str(order["id"]), []).append({"id": item["id"], "quantity": take})
    if not by_order:
        return FulfillmentPlan(skip="nothing of the shipment is left to fulfil")
    fulfillment: dict[str, Any] = {
        "lineItemsByFulfillmentOrder": [
            {"fulfillmentOrderId": order_id, "fulfillmentOrderLineItems": items} for order_id, items in by_order.items()
        ],
        "notifyCustomer": False,
    }
    if tracking or shipment.carrier:
        fulfillment["trackingInfo"] = {
            key: value for key, value in {"company": shipment.carrier, "number": tracking}.items() if value
        }
    return FulfillmentPlan(fulfillment=fulfillment)


class OrderNotInStore(LookupError):
    """The shipment's order is not in the store (not one of its orders, or deleted): retrying will not help."""

    retryable = False


class ShopifyFulfillments:
    """OMS shipments as fulfilments of a store's orders, each created once (``plan_fulfillment``)."""

    def __init__(self, admin: ShopifyAdmin) -> None:
        self.admin = admin

    def state(self, order_id: str) -> dict[str, Any] | None:
        data = self.admin.graphql(
            "OrderFulfillment",
            q.ORDER_FULFILLMENT,
            {"id": _gid("Order", order_id), "fulfillmentOrders": 5, "lines": 50},
        )
        order = data.get("order")
        return dict(order) if order else None

    def fulfill(self, shipment: Shipment, *, before_create: Callable[[], None] | None = None) -> str:
        """Create the shipment's fulfilment; returns "created" or the reason nothing was needed. A refusal is
        checked against the order as it is now (a concurrent worker may have fulfilled it first).
        ``before_create()`` runs once the plan says a fulfilment is needed, just before it is created; if it
        raises, nothing is created."""
        plan = self._plan(shipment)
        if plan.skip is not None:
            return plan.skip
        if before_create is not None:
            before_create()
        result = self.admin.graphql("FulfillmentCreate", q.FULFILLMENT_CREATE, {"fulfillment": dict(plan.fulfillment)})[
            "fulfillmentCreate"
        ]
        if result.get("userErrors"):
            again = self._plan(shipment)
            if again.skip is not None:
                return again.skip
            raise ShopifyUserError("fulfillmentCreate", result["userErrors"])
        return "created"

    def _plan(self, shipment: Shipment) -> FulfillmentPlan:
        state = self.state(shipment.order_id)
        if state is None:
            raise OrderNotInStore(f"order {shipment.order_id} of shipment {shipment.shipment_id} is not in the store")
        return plan_fulfillment(state, shipment)


def _gid(kind: str, value: str) -> str:
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


class ShopifyPriceTarget:
    """``PriceTarget`` over Shopify: each SKU's variant (found through its inventory item in the identity map)
    gets the price and compare-at price with ``productVariantsBulkUpdate``, one call per product, and only
    where the store shows something else, so a replay writes nothing. SKUs not mapped to the store are not
    written and not returned (the store does not sell them). Shopify keeps no source version: 'never older'
    rests on the caller's state cache. The shop's currency is the pair's; Shopify keeps one per shop.
    """

    def __init__(self, admin: ShopifyAdmin, inventory_item: Callable[[str], str | None]) -> None:
        self.admin, self.inventory_item = admin, inventory_item
        self.unmapped: list[str] = []

    def upsert_prices(self, prices: Sequence[Price]) -> set[str]:
        by_product: dict[str, list[tuple[Price, str]]] = {}
        for price in prices:
            item_id = self.inventory_item(price.sku)
            item = self.admin.inventory_item(item_id) if item_id else None
            if item is None or item.variant_id is None or item.product_id is None:
                self.unmapped.append(price.sku)
                logger.warning("shopify: no variant mapped for SKU %s; price not written", price.sku)
                continue
            by_product.setdefault(item.product_id, []).append((price, item.variant_id))
        agreed: set[str] = set()
        for product_id, wanted in by_product.items():
            product = self.admin.product(product_id)
            shown = {v.id: (v.price, v.compare_at_price) for v in product.variants} if product else {}
            changes = [
                VariantPrice(variant_id, price.base, price.compare_at)
                for price, variant_id in wanted
                if variant_id in shown and shown[variant_id] != (price.base, price.compare_at)
            ]
            if changes:
                self.admin.update_variant_prices(product_id, changes)
            agreed |= {price.sku for price, variant_id in wanted if variant_id in shown}
        return agreed
