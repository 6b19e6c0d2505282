"""Pure parts of the Shopify connector: parsing, mapping, the request it builds and how it reads the answer.

The transport is ``httpx.MockTransport`` (no socket is opened).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from syncline.connectors import shopify_queries as q
from syncline.connectors.http import RetryPolicy
from syncline.connectors.shopify import (
    InventoryStale,
    QuantityChange,
    ShopifyAdmin,
    ShopifyError,
    ShopifyInventoryTarget,
    ShopifyUserError,
)
from syncline.connectors.shopify_models import (
    ShopifyInventoryLevel,
    ShopifyOrder,
    ShopifyVariant,
    gid,
    gid_number,
    identity_from_mapping,
)
from syncline.models import InventoryLevel
from tests.conftest import SHARED_FIXTURES

TOKEN = "shpat_never_in_logs_0123456789"
COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 990, "restoreRate": 50.0},
}


def admin(
    handler: Callable[[httpx.Request], httpx.Response], *, version: str = "2026-01"
) -> tuple[ShopifyAdmin, list[float]]:
    slept: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))
    api = ShopifyAdmin(
        "shop.myshopify.com",
        access_token=lambda: TOKEN,
        api_version=version,
        client=client,
        retry=RetryPolicy(sleep=slept.append),
        sleep=slept.append,
    )
    return api, slept


def reply(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(body).encode())


def test_gids_keep_their_numeric_part_exact_and_level_gids_lose_their_query_string() -> None:
    level = "gid://shopify/InventoryLevel/523463154?inventory_item_id=30322695"
    assert gid_number(level) == "523463154"
    assert gid("InventoryItem", 271878346596884015) == "gid://shopify/InventoryItem/271878346596884015"
    assert gid_number(gid("Location", 2**63 - 1)) == str(2**63 - 1)
    with pytest.raises(ValueError, match="not a Shopify GID"):
        gid_number("gid://shopify/Location/12.5")


def test_the_documented_inventory_level_maps_to_a_canonical_level() -> None:
    fixture = json.loads((SHARED_FIXTURES / "shopify/graphql/inventory_level_query.json").read_text())
    level = ShopifyInventoryLevel.parse(fixture["documented_response_data"]["inventoryLevel"])
    assert level.inventory_item_id == "gid://shopify/InventoryItem/30322695"
    assert level.sku == "element-151"
    canonical = level.to_canonical(sku="ELEMENT-151", location="OTTAWA")
    assert (canonical.on_hand, canonical.available, canonical.on_order) == (Decimal(33), Decimal(2), Decimal(146))
    assert canonical.reserved == 31  # committed 1 + reserved 30


def test_a_compare_at_price_below_the_price_is_no_was_price() -> None:
    variant = ShopifyVariant.parse(
        {"id": "gid://shopify/ProductVariant/1", "sku": "A", "price": "10.00", "compareAtPrice": "8.00"}
    )
    assert variant.to_price("EUR").compare_at is None
    higher = ShopifyVariant.parse(
        {"id": "gid://shopify/ProductVariant/1", "sku": "A", "price": "10.00", "compareAtPrice": "12.50"}
    )
    assert higher.to_price("EUR").compare_at == Decimal("12.50")


@pytest.mark.parametrize(
    ("fulfillment", "cancelled", "expected"),
    [
        ("UNFULFILLED", None, "confirmed"),
        ("PARTIALLY_FULFILLED", None, "partially_fulfilled"),
        ("FULFILLED", None, "fulfilled"),
        ("UNFULFILLED", "2026-01-02T00:00:00Z", "cancelled"),
    ],
)
def test_order_status_mapping(fulfillment: str, cancelled: str | None, expected: str) -> None:
    order = ShopifyOrder.parse(
        {
            "id": "gid://shopify/Order/9007199254740993",
            "createdAt": "2026-01-01T00:00:00Z",
            "cancelledAt": cancelled,
            "displayFinancialStatus": "PAID",
            "displayFulfillmentStatus": fulfillment,
            "currencyCode": "USD",
            "totalPriceSet": {"shopMoney": {"amount": "19.98"}},
            "lineItems": {
                "nodes": [
                    {
                        "id": "gid://shopify/LineItem/1",
                        "sku": "A",
                        "quantity": 2,
                        "originalUnitPriceSet": {"shopMoney": {"amount": "9.99"}},
                    }
                ]
            },
        }
    )
    canonical = order.to_canonical()
    assert canonical.status == expected
    assert canonical.order_id == "gid://shopify/Order/9007199254740993"
    assert canonical.total == Decimal("19.98")


def test_big_integers_and_decimals_in_a_response_are_never_floats() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = (
            b'{"data":{"shop":{"id":"gid://shopify/Shop/1","n":9007199254740993,"x":0.1}},"extensions":{"cost":'
            + json.dumps(COST).encode()
            + b"}}"
        )
        return httpx.Response(200, content=body)

    api, _ = admin(handler)
    shop = api.shop_info()
    assert shop["n"] == 9007199254740993
    assert shop["x"] == Decimal("0.1")


def test_requests_carry_the_token_header_the_version_and_a_named_operation() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply({"data": {"inventoryItem": None}, "extensions": {"cost": COST}})

    api, _ = admin(handler, version="2025-10")
    assert api.inventory_item("gid://shopify/InventoryItem/1") is None
    assert seen[0].url.path == "/admin/api/2025-10/graphql.json"
    assert seen[0].headers["X-Shopify-Access-Token"] == TOKEN
    body = json.loads(seen[0].content)
    assert body["operationName"] == "InventoryItem"
    assert body["query"].lstrip().startswith("query InventoryItem(")
    assert TOKEN not in repr(api)


@pytest.mark.parametrize(
    ("version", "compare_field", "idempotent"),
    [
        ("2025-10", "compareQuantity", False),
        ("2026-01", "changeFromQuantity", True),
        ("2026-04", "changeFromQuantity", True),
    ],
)
def test_inventory_writes_use_the_compare_and_swap_of_the_pinned_version(
    version: str, compare_field: str, idempotent: bool
) -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        data = {
            "inventorySetQuantities": {
                "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1", "changes": []},
                "userErrors": [],
            }
        }
        return reply({"data": data, "extensions": {"cost": COST}})

    api, _ = admin(handler, version=version)
    api.set_inventory(
        [QuantityChange("gid://shopify/InventoryItem/1", "gid://shopify/Location/2", 7, 5)], idempotency_key="key-1"
    )
    sent = bodies[0]
    assert sent["variables"]["input"]["quantities"][0][compare_field] == 5
    assert ("@idempotent(key: $idempotencyKey)" in sent["query"]) is idempotent
    assert (sent["variables"].get("idempotencyKey") == "key-1") is idempotent


def test_a_stale_compare_is_a_stale_write_and_other_user_errors_are_user_errors() -> None:
    answers = iter(
        [
            {
                "code": "CHANGE_FROM_QUANTITY_STALE",
                "field": ["input", "quantities", "0", "changeFromQuantity"],
                "message": "stale",
            },
            {"code": "INVALID_LOCATION", "field": ["input", "quantities", "0", "locationId"], "message": "nope"},
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        data = {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [next(answers)]}}
        return reply({"data": data, "extensions": {"cost": COST}})

    api, _ = admin(handler)
    change = [QuantityChange("gid://shopify/InventoryItem/1", "gid://shopify/Location/2", 7, 5)]
    with pytest.raises(InventoryStale):
        api.set_inventory(change)
    with pytest.raises(ShopifyUserError) as refused:
        api.set_inventory(change)
    assert refused.value.codes == ("INVALID_LOCATION",)


def test_throttled_waits_what_the_throttle_status_implies_then_sends_again() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            status = {"maximumAvailable": 1000.0, "currentlyAvailable": 2, "restoreRate": 50.0}
            return reply(
                {
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": {
                        "cost": {"requestedQueryCost": 102, "actualQueryCost": None, "throttleStatus": status}
                    },
                }
            )
        return reply({"data": {"inventoryItem": None}, "extensions": {"cost": COST}})

    api, slept = admin(handler)
    api.inventory_item("gid://shopify/InventoryItem/1")
    assert calls == 2
    assert api.throttled == 1
    assert slept == [pytest.approx(2.0)]  # 100 points short at 50 points/s


def test_throttled_without_end_gives_up_with_a_retryable_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})

    api, _ = admin(handler)
    api.throttle_attempts = 3
    with pytest.raises(ShopifyError) as failed:
        api.inventory_item("gid://shopify/InventoryItem/1")
    assert failed.value.retryable
    assert api.throttled == 3


def test_max_cost_exceeded_is_not_retried() -> None:
    fixtures = json.loads((SHARED_FIXTURES / "shopify/graphql/cost_extension_responses.json").read_text())
    body = next(r for r in fixtures["responses"] if r["id"] == "max-cost-exceeded")["body"]
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return reply(body)

    api, _ = admin(handler)
    with pytest.raises(ShopifyError) as failed:
        api.products_page(first=250, variants=250)
    assert failed.value.codes == ("MAX_COST_EXCEEDED",)
    assert not failed.value.retryable
    assert calls == 1


def test_expected_cost_follows_shopifys_connection_rule() -> None:
    assert q.expected_cost("LocationInventoryLevels", {"first": 10}) == 33
    assert q.expected_cost("Product", {"variants": 100}) == 203
    assert q.expected_cost("InventorySet", {}) == q.MUTATION_COST


def test_the_target_skips_what_identity_does_not_map_and_refuses_fractions() -> None:
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - nothing may be sent
        raise AssertionError("no request expected")

    api, _ = admin(handler)
    target = ShopifyInventoryTarget(api, identity_from_mapping({}))
    level = InventoryLevel(
        sku="A",
        location="L",
        on_hand=Decimal(1),
        reserved=Decimal(0),
        available=Decimal(1),
        on_order=Decimal(0),
        source_version=1,
        source_updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert target.upsert_inventory([level]) == set()
    assert target.unmapped == ["A|L"]
    mapped = ShopifyInventoryTarget(
        api, identity_from_mapping({("A", "L"): ("gid://shopify/InventoryItem/1", "gid://shopify/Location/2")})
    )
    with pytest.raises(ValueError, match="not a whole number"):
        mapped.upsert_inventory([level.model_copy(update={"available": Decimal("1.5")})])
