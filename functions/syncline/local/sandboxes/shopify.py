"""A Shopify Admin GraphQL sandbox: the operations Syncline's connector sends, with Shopify's contract.

- ``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``; a missing or wrong token gets
  Shopify's 401 body. Operations are dispatched on ``operationName`` (or the operation's name in the
  document); selection sets are not interpreted, each operation returns the fields the connector asks for.
- Cost: each operation has a requested cost (object 1, connection 2 + first x node cost, mutation 10) and an
  actual one (from the nodes returned). A per-shop leaky bucket (``maximum_available``, ``restore_rate``)
  answers HTTP 200 with a ``THROTTLED`` error when the requested cost is more than is available, and every
  response carries ``extensions.cost`` with ``throttleStatus``. A query costing more than the whole bucket gets
  ``MAX_COST_EXCEEDED``.
- ``inventorySetQuantities``: all or nothing; ``changeFromQuantity`` (2026-01 and later) or
  ``compareQuantity`` compare-and-swap with ``CHANGE_FROM_QUANTITY_STALE`` / ``COMPARE_QUANTITY_STALE``
  user errors; ``@idempotent(key:)`` replays the first result for the same key and input, and refuses the key
  with other input (``IDEMPOTENCY_KEY_PARAMETER_MISMATCH``). Before 2026-01 the directive and
  ``changeFromQuantity`` do not exist in the schema.
- Orders have a fulfilment order each; ``fulfillmentCreate`` fulfils its lines up to what remains (all or nothing,
  ``userErrors`` otherwise), records the tracking, moves ``displayFulfillmentStatus`` to ``PARTIALLY_FULFILLED``
  or ``FULFILLED`` and sends ``orders/updated``.
- Ids are GIDs whose numeric parts start above 2^53. Cursors are opaque base64.
- Webhooks (``inventory_levels/update``, ``products/update``, ``orders/create``, ``orders/updated``) are REST-
  shaped bodies with integer ids, signed with the ``shopify`` scheme and sent with Shopify's headers.
- A ``rate_limit`` fault is Shopify's REST-style 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from syncline.local.sandboxes.base import Reply, Request, Sandbox, route

GID = "gid://shopify/"
UNAUTHORIZED: dict[str, Any] = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
QUANTITY_NAMES = ("available", "on_hand", "committed", "reserved", "incoming", "damaged", "quality_control")
_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)", re.MULTILINE)
_IDEMPOTENT = re.compile(r"@idempotent\s*\(\s*key\s*:\s*(?:\$(\w+)|\"([^\"]*)\")\s*\)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(gid: str) -> int:
    return int(gid.removeprefix(GID).split("?", 1)[0].rsplit("/", 1)[-1])


class LeakyBucket:
    """Shopify's cost bucket for one app on one shop (monotonic clock, injectable)."""

    def __init__(self, maximum: float, restore_rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum, self.restore_rate, self.clock = maximum, restore_rate, clock
        self.available = maximum
        self._at = clock()

    def refill(self) -> None:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self._at) * self.restore_rate)
        self._at = now

    def status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.restore_rate),
        }


@dataclass
class _Level:
    id: int
    quantities: dict[str, int]
    updated_at: dict[str, str]


@dataclass
class SeededProduct:
    product_id: str
    variant_ids: list[str]
    inventory_item_ids: list[str]


@dataclass
class _Outcome:
    data: Any
    actual: float | None = None
    webhooks: list[tuple[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] | None = None  # top-level GraphQL errors (the request was refused)


class ShopifySandbox(Sandbox):
    service: ClassVar[str] = "shopify"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        shop: str = "syncline-dev.myshopify.com",
        access_token: str | None = None,
        maximum_available: float = 1000.0,
        restore_rate: float = 50.0,
        first_id: int = 2**53 + 1,
        currency: str = "USD",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.shop = shop
        self.access_token = access_token or f"shpat_{secrets.token_hex(16)}"
        self.currency = currency
        self.webhook_api_version = "2026-01"  # the version the app's webhook subscriptions are on
        self.bucket = LeakyBucket(maximum_available, restore_rate, clock)
        self._next_id = first_id
        self.locations: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.variants: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.levels: dict[tuple[str, str], _Level] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        # order id -> its fulfilment orders (one per order here: one location) and the fulfilments made
        self.fulfillment_orders: dict[str, list[dict[str, Any]]] = {}
        self.fulfillments: dict[str, list[dict[str, Any]]] = {}
        self._idempotency: dict[str, tuple[str, Any]] = {}
        self.operations: Counter[str] = Counter()  # operation name -> requests served (not throttled)
        self.throttled = 0  # THROTTLED answers
        self.replays = 0  # idempotent replays
        self.applied: Counter[str] = Counter()  # mutations that changed data
        self.unauthorized = 0
        self._delivery_lock = threading.Lock()

    # --- seed data --------------------------------------------------------------------------------------

    def _id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id - 1

    def add_location(self, name: str, location_id: str | None = None) -> str:
        """A location (``location_id``: a GID or its number, as a shop's configuration names it)."""
        if location_id is None:
            location = f"{GID}Location/{self._id()}"
        else:
            location = location_id if location_id.startswith(GID) else f"{GID}Location/{location_id}"
        with self.lock:
            self.locations[location] = {"id": location, "name": name}
        return location

    def add_product(
        self,
        title: str,
        variants: Sequence[Mapping[str, Any]],
        *,
        vendor: str | None = None,
        tags: Sequence[str] = (),
        status: str = "ACTIVE",
        description_html: str = "",
    ) -> SeededProduct:
        """A product with variants (``sku``, ``price``, optional ``compare_at_price``, ``barcode``, ``title``)."""
        product_id = f"{GID}Product/{self._id()}"
        now = _now()
        seeded = SeededProduct(product_id, [], [])
        with self.lock:
            self.products[product_id] = {
                "id": product_id,
                "title": title,
                "descriptionHtml": description_html,
                "vendor": vendor,
                "status": status,
                "tags": list(tags),
                "updatedAt": now,
                "createdAt": now,
                "variants": seeded.variant_ids,
            }
            for spec in variants:
                variant_id, item_id = f"{GID}ProductVariant/{self._id()}", f"{GID}InventoryItem/{self._id()}"
                self.variants[variant_id] = {
                    "id": variant_id,
                    "sku": spec.get("sku"),
                    "barcode": spec.get("barcode"),
                    "title": spec.get("title") or "Default Title",
                    "price": str(Decimal(str(spec.get("price", "0")))),
                    "compareAtPrice": None
                    if spec.get("compare_at_price") is None
                    else str(Decimal(str(spec["compare_at_price"]))),
                    "updatedAt": now,
                    "product": product_id,
                    "inventoryItem": item_id,
                }
                self.items[item_id] = {
                    "id": item_id,
                    "sku": spec.get("sku"),
                    "tracked": True,
                    "updatedAt": now,
                    "variant": variant_id,
                }
                seeded.variant_ids.append(variant_id)
                seeded.inventory_item_ids.append(item_id)
        return seeded

    def stock(self, inventory_item_id: str, location_id: str, *, available: int = 0, **others: int) -> str:
        """Stock an item at a location; ``on_hand`` defaults to available + committed + reserved. Returns the level GID."""
        with self.lock:
            if inventory_item_id not in self.items or location_id not in self.locations:
                raise KeyError("unknown inventory item or location")
            quantities = dict.fromkeys(QUANTITY_NAMES, 0)
            quantities.update(others)
            quantities["available"] = available
            if "on_hand" not in others:
                quantities["on_hand"] = available + quantities["committed"] + quantities["reserved"]
            now = _now()
            level = _Level(self._id(), quantities, dict.fromkeys(QUANTITY_NAMES, now))
            self.levels[(inventory_item_id, location_id)] = level
        return self._level_gid(inventory_item_id, level)

    def set_available(self, inventory_item_id: str, location_id: str, available: int) -> None:
        """A change made in Shopify by someone else (a merchant, a POS sale): notified by webhook."""
        with self.lock:
            level = self.levels[(inventory_item_id, location_id)]
            hook = self._apply_quantity(inventory_item_id, location_id, level, "available", available)
        self.deliver(*hook)

    def quantity(self, inventory_item_id: str, location_id: str, name: str = "available") -> int:
        with self.lock:
            return self.levels[(inventory_item_id, location_id)].quantities[name]

    def add_order(
        self,
        lines: Sequence[tuple[str, int]],
        *,
        email: str | None = "buyer@example.com",
        financial_status: str = "PAID",
    ) -> str:
        """An order of (variant GID, quantity) lines, priced at the variants' prices; sends ``orders/create``."""
        order_id = f"{GID}Order/{self._id()}"
        now = _now()
        with self.lock:
            line_items = []
            total = Decimal(0)
            for variant_id, quantity in lines:
                variant = self.variants[variant_id]
                price = Decimal(variant["price"])
                total += price * quantity
                line_items.append(
                    {"id": f"{GID}LineItem/{self._id()}", "variant": variant_id, "quantity": quantity, "price": price}
                )
            number = 1001 + len(self.orders)
            order = {
                "id": order_id,
                "name": f"#{number}",
                "email": email,
                "createdAt": now,
                "updatedAt": now,
                "cancelledAt": None,
                "displayFinancialStatus": financial_status,
                "displayFulfillmentStatus": "UNFULFILLED",
                "lines": line_items,
                "total": total,
            }
            self.orders[order_id] = order
            self.fulfillment_orders[order_id] = [
                {
                    "id": f"{GID}FulfillmentOrder/{self._id()}",
                    "status": "OPEN",
                    "lines": [
                        {
                            "id": f"{GID}FulfillmentOrderLineItem/{self._id()}",
                            "sku": self.variants[variant_id]["sku"],
                            "remainingQuantity": quantity,
                        }
                        for variant_id, quantity in lines
                    ],
                }
            ]
            self.fulfillments[order_id] = []
            payload = self._order_payload(order)
        self.deliver("orders/create", payload)
        return order_id

    def update_order(
        self, order_id: str, *, fulfillment_status: str | None = None, financial_status: str | None = None
    ) -> None:
        """Change an order's status in Shopify; sends ``orders/updated``."""
        with self.lock:
            order = self.orders[order_id]
            if fulfillment_status:
                order["displayFulfillmentStatus"] = fulfillment_status
            if financial_status:
                order["displayFinancialStatus"] = financial_status
            order["updatedAt"] = _now()
            payload = self._order_payload(order)
        self.deliver("orders/updated", payload)

    # --- webhooks ---------------------------------------------------------------------------------------

    def deliver(self, topic: str, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """One event: the same ``X-Shopify-Event-Id`` and triggered time for every subscription it goes to."""
        event = {"X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Triggered-At": _now(), **dict(headers or {})}
        with self._delivery_lock:  # deliveries leave in the order the changes were made
            super().deliver(topic, payload, event)

    def webhook_headers(self, topic: str) -> dict[str, str]:
        return {
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-API-Version": self.webhook_api_version,
        }

    def rate_limited(self) -> Reply:
        return Reply(
            429,
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
            },
            {"Retry-After": "2.0"},
        )

    # --- serving ----------------------------------------------------------------------------------------

    @route("POST", r"/admin/api/(?P<version>\d{4}-\d{2}|unstable)/graphql\.json")
    def graphql(self, request: Request) -> Reply:
        token = request.headers.get("x-shopify-access-token", "")
        if not token or not secrets.compare_digest(token.encode(), self.access_token.encode()):
            with self.lock:
                self.unauthorized += 1
            return Reply(401, UNAUTHORIZED)
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(query, str) or not query.strip():
            return Reply(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = body.get("variables") or {}
        found = _OPERATION.search(query)
        operation = str(body.get("operationName") or (found.group(1) if found else ""))
        version = request.params["version"]
        refused = self._refusal(operation, version, query, variables)
        if refused:
            return Reply(200, {"errors": [refused]})
        reply, webhooks = self._execute(operation, version, query, variables)
        for topic, payload in webhooks:  # after the lock: a receiver may call back into the sandbox
            self.deliver(topic, payload)
        return reply

    def _refusal(self, operation: str, version: str, query: str, variables: Mapping[str, Any]) -> dict[str, Any] | None:
        if operation not in _HANDLERS:
            return {"message": f"sandbox: operation {operation!r} is not supported"}
        schema_error = self._schema_error(version, query, variables)
        return {"message": schema_error, "extensions": {"code": "argumentNotAccepted"}} if schema_error else None

    def _execute(
        self, operation: str, version: str, query: str, variables: Mapping[str, Any]
    ) -> tuple[Reply, list[tuple[str, Any]]]:
        requested = float(_requested_cost(operation, variables))
        with self.lock:
            self.bucket.refill()
            if requested > self.bucket.maximum:
                return Reply(200, _max_cost(requested, self.bucket.maximum)), []
            if requested > self.bucket.available:
                self.throttled += 1
                cost = {"requestedQueryCost": int(requested), "actualQueryCost": None}
                throttled = {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": _DOCS}}
                extensions = {"cost": {**cost, "throttleStatus": self.bucket.status()}}
                return Reply(200, {"errors": [throttled], "extensions": extensions}), []
            self.bucket.available -= requested
            outcome = _HANDLERS[operation](self, variables, query, version)
            actual = requested if outcome.actual is None else min(requested, outcome.actual)
            self.bucket.available = min(self.bucket.maximum, self.bucket.available + requested - actual)
            self.operations[operation] += 1
            cost = {"requestedQueryCost": int(requested), "actualQueryCost": int(actual)}
            document: dict[str, Any] = {
                "data": outcome.data,
                "extensions": {"cost": {**cost, "throttleStatus": self.bucket.status()}},
            }
            if outcome.errors:
                document["errors"] = outcome.errors
            return Reply(200, document), outcome.webhooks

    def _schema_error(self, version: str, query: str, variables: Mapping[str, Any]) -> str | None:
        modern = version == "unstable" or version >= "2026-01"
        if modern:
            return None
        if "@idempotent" in query:
            return "Directive 'idempotent' is not defined"
        quantities = ((variables.get("input") or {}) if isinstance(variables.get("input"), dict) else {}).get(
            "quantities"
        ) or []
        if any(isinstance(item, dict) and "changeFromQuantity" in item for item in quantities):
            return "InputObject 'InventoryQuantityInput' doesn't accept argument 'changeFromQuantity'"
        return None

    # --- reads ------------------------------------------------------------------------------------------

    def _level_gid(self, item_id: str, level: _Level) -> str:
        return f"{GID}InventoryLevel/{level.id}?inventory_item_id={_number(item_id)}"

    def _level_node(self, item_id: str, location_id: str, level: _Level, names: Iterable[str]) -> dict[str, Any]:
        chosen = [name for name in names if name in level.quantities]
        return {
            "id": self._level_gid(item_id, level),
            "updatedAt": max(level.updated_at.values()),
            "quantities": [
                {"name": name, "quantity": level.quantities[name], "updatedAt": level.updated_at[name]}
                for name in chosen
            ],
            "item": {"id": item_id, "sku": self.items[item_id]["sku"]},
            "location": {"id": location_id},
        }

    def _op_inventory_level(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        item_id, location_id = variables.get("itemId"), variables.get("locationId")
        if item_id not in self.items:
            return _Outcome({"inventoryItem": None})
        level = self.levels.get((item_id, location_id))  # type: ignore[arg-type]
        node = self._level_node(item_id, location_id, level, variables.get("names") or ()) if level else None  # type: ignore[arg-type]
        return _Outcome({"inventoryItem": {"id": item_id, "inventoryLevel": node}})

    def _op_location_levels(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        location_id = variables.get("locationId")
        if location_id not in self.locations:
            return _Outcome({"location": None}, actual=1)
        rows = sorted(
            ((level.id, item, level) for (item, location), level in self.levels.items() if location == location_id),
            key=lambda row: row[0],
        )
        nodes, info = _paginate(rows, variables, lambda row: row[0])
        data = [self._level_node(item, location_id, level, variables.get("names") or ()) for _, item, level in nodes]
        connection = {"pageInfo": info, "nodes": data}
        return _Outcome({"location": {"id": location_id, "inventoryLevels": connection}}, actual=3 + 3 * len(data))

    def _op_inventory_item(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        item = self.items.get(variables.get("id"))  # type: ignore[arg-type]
        if item is None:
            return _Outcome({"inventoryItem": None})
        variant = self.variants[item["variant"]]
        node = {**item, "variant": {"id": variant["id"], "product": {"id": variant["product"]}}}
        return _Outcome({"inventoryItem": node})

    def _product_node(self, product: Mapping[str, Any], first: int) -> dict[str, Any]:
        variants = [self._variant_node(self.variants[v]) for v in product["variants"][:first]]
        return {**{k: v for k, v in product.items() if k != "variants"}, "variants": {"nodes": variants}}

    def _variant_node(self, variant: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in variant.items() if k not in {"product", "inventoryItem"}},
            "inventoryItem": {"id": variant["inventoryItem"]},
        }

    def _op_product(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        product = self.products.get(variables.get("id"))  # type: ignore[arg-type]
        if product is None:
            return _Outcome({"product": None}, actual=1)
        first = int(variables.get("variants") or 0)
        node = self._product_node(product, first)
        return _Outcome({"product": node}, actual=3 + 2 * len(node["variants"]["nodes"]))

    def _op_products(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        rows = sorted(self.products.values(), key=lambda p: _number(p["id"]))
        nodes, info = _paginate(rows, variables, lambda p: _number(p["id"]))
        first = int(variables.get("variants") or 0)
        data = [self._product_node(product, first) for product in nodes]
        return _Outcome(
            {"products": {"pageInfo": info, "nodes": data}},
            actual=2 + sum(3 + 2 * len(p["variants"]["nodes"]) for p in data),
        )

    def _order_node(self, order: Mapping[str, Any], first: int) -> dict[str, Any]:
        def money(amount: Decimal) -> dict[str, Any]:
            return {"shopMoney": {"amount": str(amount), "currencyCode": self.currency}}

        return {
            **{k: v for k, v in order.items() if k not in {"lines", "total"}},
            "currencyCode": self.currency,
            "customer": None,
            "totalPriceSet": money(order["total"]),
            "lineItems": {
                "nodes": [
                    {
                        "id": line["id"],
                        "sku": self.variants[line["variant"]]["sku"],
                        "quantity": line["quantity"],
                        "originalUnitPriceSet": money(line["price"]),
                    }
                    for line in order["lines"][:first]
                ]
            },
        }

    def _op_order(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        order = self.orders.get(variables.get("id"))  # type: ignore[arg-type]
        if order is None:
            return _Outcome({"order": None}, actual=1)
        node = self._order_node(order, int(variables.get("lines") or 0))
        return _Outcome({"order": node}, actual=5 + 3 * len(node["lineItems"]["nodes"]))

    def _op_orders(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        rows = sorted(self.orders.values(), key=lambda o: _number(o["id"]))
        nodes, info = _paginate(rows, variables, lambda o: _number(o["id"]))
        data = [self._order_node(order, int(variables.get("lines") or 0)) for order in nodes]
        return _Outcome(
            {"orders": {"pageInfo": info, "nodes": data}},
            actual=2 + sum(5 + 3 * len(o["lineItems"]["nodes"]) for o in data),
        )

    def _op_order_fulfillment(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        order_id = str(variables.get("id"))
        order = self.orders.get(order_id)
        if order is None:
            return _Outcome({"order": None}, actual=1)
        first, lines = int(variables.get("fulfillmentOrders") or 0), int(variables.get("lines") or 0)
        node = {
            "id": order_id,
            "displayFulfillmentStatus": order["displayFulfillmentStatus"],
            "fulfillmentOrders": {
                "nodes": [
                    {
                        "id": fo["id"],
                        "status": fo["status"],
                        "lineItems": {"nodes": [dict(line) for line in fo["lines"][:lines]]},
                    }
                    for fo in self.fulfillment_orders[order_id][:first]
                ]
            },
            "fulfillments": [
                {"id": f["id"], "status": f["status"], "trackingInfo": list(f["trackingInfo"])}
                for f in self.fulfillments[order_id]
            ],
        }
        return _Outcome(
            {"order": node}, actual=3 + sum(1 + len(fo["lines"]) for fo in self.fulfillment_orders[order_id])
        )

    def _op_fulfillment_create(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        """``fulfillmentCreate``: all or nothing; each line at most its remaining quantity, fulfilment orders open."""
        given = variables.get("fulfillment") or {}
        owners = {fo["id"]: (order_id, fo) for order_id, fos in self.fulfillment_orders.items() for fo in fos}
        requests = given.get("lineItemsByFulfillmentOrder") or []
        if not requests:
            return _user_errors("fulfillmentCreate", [_error(["fulfillment"], "Line items are required", "")])
        take: list[tuple[dict[str, Any], int]] = []
        orders = set()
        for index, request in enumerate(requests):
            found = owners.get(str(request.get("fulfillmentOrderId")))
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index)]
            if found is None:
                return _user_errors("fulfillmentCreate", [_error(path, "Fulfillment order does not exist.", "")])
            order_id, fo = found
            orders.add(order_id)
            if fo["status"] not in {"OPEN", "IN_PROGRESS"}:
                message = f"Fulfillment order {fo['id']} has an unfulfillable status= {fo['status'].lower()}."
                return _user_errors("fulfillmentCreate", [_error(path, message, "")])
            wanted = request.get("fulfillmentOrderLineItems")
            lines = {line["id"]: line for line in fo["lines"]}
            if not wanted:  # none named: every line's remaining quantity
                take += [(line, line["remainingQuantity"]) for line in fo["lines"] if line["remainingQuantity"] > 0]
                continue
            for item in wanted:
                line = lines.get(str(item.get("id")))
                quantity = item.get("quantity")
                if line is None or not isinstance(quantity, int) or not 0 < quantity <= line["remainingQuantity"]:
                    message = "Invalid fulfillment order line item quantity requested."
                    return _user_errors("fulfillmentCreate", [_error(path, message, "")])
                take.append((line, quantity))
        if len(orders) != 1 or not take:
            message = "Fulfillment orders must belong to the same order and have something to fulfill."
            return _user_errors("fulfillmentCreate", [_error(["fulfillment"], message, "")])
        (order_id,) = orders
        for line, quantity in take:
            line["remainingQuantity"] -= quantity
        for fo in self.fulfillment_orders[order_id]:
            left = sum(line["remainingQuantity"] for line in fo["lines"])
            fo["status"] = "CLOSED" if left == 0 else "IN_PROGRESS" if fo["status"] == "OPEN" and take else fo["status"]
        tracking = given.get("trackingInfo") or {}
        fulfillment = {
            "id": f"{GID}Fulfillment/{self._id()}",
            "status": "SUCCESS",
            "trackingInfo": [{"company": tracking.get("company"), "number": tracking.get("number"), "url": None}]
            if tracking
            else [],
        }
        self.fulfillments[order_id].append(fulfillment)
        order = self.orders[order_id]
        every = [line for fo in self.fulfillment_orders[order_id] for line in fo["lines"]]
        order["displayFulfillmentStatus"] = (
            "FULFILLED" if all(line["remainingQuantity"] == 0 for line in every) else "PARTIALLY_FULFILLED"
        )
        order["updatedAt"] = _now()
        self.applied["fulfillmentCreate"] += 1
        return _Outcome(
            {"fulfillmentCreate": {"fulfillment": fulfillment, "userErrors": []}},
            webhooks=[("orders/updated", self._order_payload(order))],
        )

    def _op_shop(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        shop = {
            "id": f"{GID}Shop/1",
            "name": self.shop.split(".")[0],
            "myshopifyDomain": self.shop,
            "currencyCode": self.currency,
        }
        return _Outcome({"shop": shop}, actual=1)

    # --- mutations --------------------------------------------------------------------------------------

    def _op_inventory_set(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        directive = _IDEMPOTENT.search(query)
        key = (variables.get(directive.group(1)) if directive.group(1) else directive.group(2)) if directive else None
        if not key and (version == "unstable" or version >= "2026-04"):  # mandatory from 2026-04
            return _missing_key()
        data_input = variables.get("input") or {}
        fingerprint = json.dumps(data_input, sort_keys=True, default=str)
        if key is not None:
            previous = self._idempotency.get(str(key))
            if previous is not None:
                if previous[0] != fingerprint:
                    return _user_errors(
                        "inventorySetQuantities",
                        [
                            _error(
                                None,
                                "The same idempotency key cannot be used with different operation parameters.",
                                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                            )
                        ],
                    )
                self.replays += 1
                return _Outcome({"inventorySetQuantities": previous[1]})
        errors = self._check_set(data_input, modern=version == "unstable" or version >= "2026-01")
        if errors:
            return _user_errors("inventorySetQuantities", errors)
        name = data_input["name"]
        changes, hooks = [], []
        for entry in data_input["quantities"]:
            item_id, location_id = entry["inventoryItemId"], entry["locationId"]
            level = self.levels[(item_id, location_id)]
            before = dict(level.quantities)
            hook = self._apply_quantity(item_id, location_id, level, name, int(entry["quantity"]))
            for changed in ("available", "on_hand"):
                delta = level.quantities[changed] - before[changed]
                if delta or changed == name:
                    changes.append(
                        {
                            "name": changed,
                            "delta": delta,
                            "quantityAfterChange": level.quantities[changed],
                            "item": {"id": item_id},
                            "location": {"id": location_id},
                        }
                    )
            if level.quantities != before:
                hooks.append(hook)
        group = {
            "id": f"{GID}InventoryAdjustmentGroup/{self._id()}",
            "createdAt": _now(),
            "reason": data_input.get("reason"),
            "changes": changes,
        }
        result = {"inventoryAdjustmentGroup": group, "userErrors": []}
        if key is not None:
            self._idempotency[str(key)] = (fingerprint, result)
        self.applied["inventorySetQuantities"] += 1
        return _Outcome({"inventorySetQuantities": result}, webhooks=hooks)

    def _check_set(self, data_input: Mapping[str, Any], *, modern: bool) -> list[dict[str, Any]]:
        name = data_input.get("name")
        if name not in {"available", "on_hand"}:
            message = "The quantity name must be either 'available' or 'on_hand'."
            return [_error(["input", "name"], message, "INVALID_NAME")]
        if not data_input.get("reason"):
            return [_error(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")]
        ignore = bool(data_input.get("ignoreCompareQuantity"))
        errors = [
            self._check_quantity(["input", "quantities", str(index)], entry, str(name), modern=modern, ignore=ignore)
            for index, entry in enumerate(data_input.get("quantities") or [])
        ]
        return [error for error in errors if error is not None]

    def _check_quantity(  # noqa: PLR0911 - one return per Shopify error code
        self, path: list[str], entry: Mapping[str, Any], name: str, *, modern: bool, ignore: bool
    ) -> dict[str, Any] | None:
        item_id, location_id, quantity = entry.get("inventoryItemId"), entry.get("locationId"), entry.get("quantity")
        if item_id not in self.items:
            return _error(
                [*path, "inventoryItemId"], "The specified inventory item could not be found.", "INVALID_INVENTORY_ITEM"
            )
        if location_id not in self.locations:
            return _error([*path, "locationId"], "The specified location could not be found.", "INVALID_LOCATION")
        level = self.levels.get((str(item_id), str(location_id)))
        if level is None:
            message = "The specified inventory item is not stocked at the location."
            return _error([*path, "locationId"], message, "ITEM_NOT_STOCKED_AT_LOCATION")
        if not isinstance(quantity, int) or quantity < 0:
            return _error([*path, "quantity"], "The quantity can't be negative.", "INVALID_QUANTITY_NEGATIVE")
        if quantity > 1_000_000_000:
            message = "The total quantity can't be higher than 1,000,000,000."
            return _error([*path, "quantity"], message, "INVALID_QUANTITY_TOO_HIGH")
        current = level.quantities[name]
        if modern and "changeFromQuantity" in entry:
            expected = entry["changeFromQuantity"]  # an explicit null opts this quantity out of the check
            if expected is not None and expected != current:
                message = "The changeFromQuantity value does not match persisted value."
                return _error([*path, "changeFromQuantity"], message, "CHANGE_FROM_QUANTITY_STALE")
            return None
        if ignore:
            return None
        if "compareQuantity" not in entry:
            message = (
                "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity."
            )
            return _error([*path, "compareQuantity"], message, "COMPARE_QUANTITY_REQUIRED")
        if entry["compareQuantity"] != current:
            message = "The compareQuantity value does not match persisted value."
            return _error([*path, "compareQuantity"], message, "COMPARE_QUANTITY_STALE")
        return None

    def _apply_quantity(self, item_id: str, location_id: str, level: _Level, name: str, value: int) -> tuple[str, Any]:
        """Set one quantity (available and on_hand move together) and return its webhook."""
        delta = value - level.quantities[name]
        now = _now()
        for changed in ("available", "on_hand"):
            if delta:
                level.quantities[changed] += delta
                level.updated_at[changed] = now
        return "inventory_levels/update", {
            "inventory_item_id": _number(item_id),
            "location_id": _number(location_id),
            "available": level.quantities["available"],
            "updated_at": now,
            "admin_graphql_api_id": self._level_gid(item_id, level),
        }

    def _op_variants_bulk_update(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        product = self.products.get(variables.get("productId"))  # type: ignore[arg-type]
        name = "productVariantsBulkUpdate"
        if product is None:
            return _user_errors(
                name, [_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")], productVariants=None
            )
        updates, errors = [], []
        for index, entry in enumerate(variables.get("variants") or []):
            if entry.get("id") not in product["variants"]:
                errors.append(
                    _error(
                        ["variants", str(index), "id"],
                        "Product variant does not exist",
                        "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    )
                )
                continue
            try:
                price = None if entry.get("price") is None else Decimal(str(entry["price"]))
                compare = None if entry.get("compareAtPrice") is None else Decimal(str(entry["compareAtPrice"]))
            except InvalidOperation:
                errors.append(_error(["variants", str(index), "price"], "Price is invalid", "INVALID_INPUT"))
                continue
            if (price is not None and price < 0) or (compare is not None and compare < 0):
                errors.append(
                    _error(
                        ["variants", str(index), "price"],
                        "Price must be greater than or equal to 0",
                        "GREATER_THAN_OR_EQUAL_TO",
                    )
                )
                continue
            updates.append((entry, price, compare))
        if errors:
            return _user_errors(name, errors, productVariants=None)
        now = _now()
        for entry, price, compare in updates:
            variant = self.variants[entry["id"]]
            if price is not None:
                variant["price"] = str(price)
            if "compareAtPrice" in entry:
                variant["compareAtPrice"] = None if compare is None else str(compare)
            variant["updatedAt"] = now
        product["updatedAt"] = now
        self.applied[name] += 1
        nodes = [self._variant_node(self.variants[entry["id"]]) for entry, _, _ in updates]
        return _Outcome(
            {name: {"productVariants": nodes, "userErrors": []}},
            webhooks=[("products/update", self._product_payload(product))],
        )

    def _op_product_update(self, variables: Mapping[str, Any], query: str, version: str) -> _Outcome:
        changes = variables.get("product") or {}
        product = self.products.get(str(changes.get("id")))
        if product is None:
            return _Outcome(
                {
                    "productUpdate": {
                        "product": None,
                        "userErrors": [{"field": ["id"], "message": "Product does not exist"}],
                    }
                }
            )
        if "title" in changes and not str(changes["title"] or "").strip():
            return _Outcome(
                {
                    "productUpdate": {
                        "product": None,
                        "userErrors": [{"field": ["title"], "message": "Title can't be blank"}],
                    }
                }
            )
        for name in ("title", "descriptionHtml", "vendor", "status", "tags"):
            if name in changes:
                product[name] = list(changes[name]) if name == "tags" else changes[name]
        product["updatedAt"] = _now()
        self.applied["productUpdate"] += 1
        node = self._product_node(product, int(variables.get("variants") or 0))
        return _Outcome(
            {"productUpdate": {"product": node, "userErrors": []}},
            webhooks=[("products/update", self._product_payload(product))],
        )

    # --- REST-shaped webhook bodies -----------------------------------------------------------------------

    def _product_payload(self, product: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": _number(product["id"]),
            "admin_graphql_api_id": product["id"],
            "title": product["title"],
            "body_html": product["descriptionHtml"],
            "vendor": product["vendor"],
            "status": str(product["status"]).lower(),
            "tags": ", ".join(product["tags"]),
            "updated_at": product["updatedAt"],
            "variants": [
                {
                    "id": _number(variant["id"]),
                    "product_id": _number(product["id"]),
                    "sku": variant["sku"],
                    "price": variant["price"],
                    "compare_at_price": variant["compareAtPrice"],
                    "inventory_item_id": _number(variant["inventoryItem"]),
                    "admin_graphql_api_id": variant["id"],
                }
                for variant in (self.variants[v] for v in product["variants"])
            ],
        }

    def _order_payload(self, order: Mapping[str, Any]) -> dict[str, Any]:
        fulfillment = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(
            order["displayFulfillmentStatus"]
        )
        return {
            "id": _number(order["id"]),
            "admin_graphql_api_id": order["id"],
            "name": order["name"],
            "email": order["email"],
            "created_at": order["createdAt"],
            "updated_at": order["updatedAt"],
            "currency": self.currency,
            "financial_status": str(order["displayFinancialStatus"]).lower(),
            "fulfillment_status": fulfillment,
            "total_price": str(order["total"]),
            "line_items": [
                {
                    "id": _number(line["id"]),
                    "variant_id": _number(line["variant"]),
                    "product_id": _number(self.variants[line["variant"]]["product"]),
                    "sku": self.variants[line["variant"]]["sku"],
                    "quantity": line["quantity"],
                    "price": str(line["price"]),
                }
                for line in order["lines"]
            ],
        }


_DOCS = "https://shopify.dev/api/usage/rate-limits"


def _error(path: list[str] | None, message: str, code: str) -> dict[str, Any]:
    return {"field": path, "message": message, "code": code}


def _user_errors(mutation: str, errors: list[dict[str, Any]], **payload: Any) -> _Outcome:
    if mutation == "inventorySetQuantities":
        payload.setdefault("inventoryAdjustmentGroup", None)
    return _Outcome({mutation: {**payload, "userErrors": errors}})


def _missing_key() -> _Outcome:
    message = "The @idempotent directive is required for this mutation."
    return _Outcome(None, errors=[{"message": message, "extensions": {"code": "BAD_REQUEST"}}])


def _max_cost(requested: float, maximum: float) -> dict[str, Any]:
    message = (
        f"Query cost is {int(requested)}, which exceeds the single query max cost limit ({int(maximum)}).\n\n"
        "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
        "cost of a query is calculated.\n"
    )
    return {
        "errors": [
            {
                "message": message,
                "extensions": {
                    "code": "MAX_COST_EXCEEDED",
                    "cost": int(requested),
                    "maxCost": int(maximum),
                    "documentation": _DOCS,
                },
            }
        ]
    }


def _encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"last_id": position}).encode()).decode()


def _decode_cursor(cursor: Any) -> int | None:
    if not cursor:
        return None
    position = json.loads(base64.urlsafe_b64decode(str(cursor).encode()))["last_id"]
    return int(position)


def _paginate(
    rows: Sequence[Any], variables: Mapping[str, Any], position: Callable[[Any], int]
) -> tuple[list[Any], dict[str, Any]]:
    """Forward cursor pagination over rows sorted by ``position``."""
    first = int(variables.get("first") or 0)
    after = _decode_cursor(variables.get("after"))
    remaining = [row for row in rows if after is None or position(row) > after]
    page = remaining[:first]
    info = {
        "hasNextPage": len(remaining) > len(page),
        "endCursor": _encode_cursor(position(page[-1])) if page else None,
    }
    return page, info


def _requested_cost(operation: str, variables: Mapping[str, Any]) -> int:
    """Shopify's rule: an object costs 1, a connection 2 plus ``first`` times its node cost, a mutation 10."""

    def count(name: str) -> int:
        value = variables.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def connection(first: int, node: int) -> int:
        return 2 + first * node

    costs = {
        "InventoryLevel": 2,
        "InventoryItem": 2,
        "Shop": 1,
        "LocationInventoryLevels": 1 + connection(count("first"), 3),
        "Product": 1 + connection(count("variants"), 2),
        "Products": connection(count("first"), 1 + connection(count("variants"), 2)),
        "Order": 3 + connection(count("lines"), 3),
        "Orders": connection(count("first"), 3 + connection(count("lines"), 3)),
        "OrderFulfillment": 1 + connection(count("fulfillmentOrders"), 1 + connection(count("lines"), 1)) + 10,
    }
    return costs.get(operation, 10)


_Handler = Callable[[ShopifySandbox, Mapping[str, Any], str, str], _Outcome]
_HANDLERS: dict[str, _Handler] = {
    "InventoryLevel": ShopifySandbox._op_inventory_level,
    "LocationInventoryLevels": ShopifySandbox._op_location_levels,
    "InventoryItem": ShopifySandbox._op_inventory_item,
    "Product": ShopifySandbox._op_product,
    "Products": ShopifySandbox._op_products,
    "Order": ShopifySandbox._op_order,
    "Orders": ShopifySandbox._op_orders,
    "Shop": ShopifySandbox._op_shop,
    "OrderFulfillment": ShopifySandbox._op_order_fulfillment,
    "FulfillmentCreate": ShopifySandbox._op_fulfillment_create,
    "InventorySet": ShopifySandbox._op_inventory_set,
    "VariantsBulkUpdate": ShopifySandbox._op_variants_bulk_update,
    "ProductUpdate": ShopifySandbox._op_product_update,
}
