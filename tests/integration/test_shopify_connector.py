"""Contract tests: the Shopify connector against the Shopify sandbox over real HTTP.

Assertions are on what the sandbox counted (requests, THROTTLED answers, applied mutations, replays) and on
data, never on elapsed time. Sleeps are injected where a wait would otherwise slow the suite.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.shopify import (
    InventoryStale,
    QuantityChange,
    ShopifyAdmin,
    ShopifyInventoryRecords,
    ShopifyInventoryTarget,
    ShopifyUserError,
    VariantPrice,
)
from syncline.connectors.shopify_models import gid_number, identity_from_mapping
from syncline.connectors.shopify_rate_limit import CostLimiter
from syncline.local.sandboxes.shopify import ShopifySandbox
from syncline.models import InventoryLevel
from syncline.twoway import StaleWrite
from syncline.webhooks import verify

BIG = 2**63 - 10_000  # far above 2^53: a float would round every id


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Shop:
    sandbox: ShopifySandbox
    location: str
    other_location: str
    product: str
    variants: list[str]
    items: list[str]
    slept: list[float] = field(default_factory=list)

    def admin(self, **options: Any) -> ShopifyAdmin:
        options.setdefault("retry", RetryPolicy(sleep=self.slept.append))
        options.setdefault("sleep", self.slept.append)
        return ShopifyAdmin(
            self.sandbox.shop, access_token=lambda: self.sandbox.access_token, base_url=self.sandbox.url, **options
        )


def seed(sandbox: ShopifySandbox) -> Shop:
    location, other = sandbox.add_location("Warehouse"), sandbox.add_location("Store")
    product = sandbox.add_product(
        "Trail shoe",
        [
            {"sku": "SHOE-41", "price": "89.00", "compare_at_price": "99.00"},
            {"sku": "SHOE-42", "price": "89.00"},
            {"sku": "SHOE-43", "price": "92.50"},
        ],
        vendor="Syncline",
        tags=["shoes"],
    )
    for index, item in enumerate(product.inventory_item_ids):
        sandbox.stock(item, location, available=10 + index, committed=1)
    sandbox.stock(product.inventory_item_ids[0], other, available=3)
    return Shop(sandbox, location, other, product.product_id, product.variant_ids, product.inventory_item_ids)


@pytest.fixture
def shop() -> Iterator[Shop]:
    sandbox = ShopifySandbox(first_id=BIG, maximum_available=1000, restore_rate=50).start()
    try:
        yield seed(sandbox)
    finally:
        sandbox.stop()


class Receiver:
    """A webhook endpoint on loopback that keeps every delivery (headers and raw body)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/shopify"

    def topics(self) -> list[str]:
        return [headers["X-Shopify-Topic"] for headers, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def level(sku: str, location: str, available: int, version: int = 1) -> InventoryLevel:
    return InventoryLevel(
        sku=sku,
        location=location,
        on_hand=Decimal(available),
        reserved=Decimal(0),
        available=Decimal(available),
        on_order=Decimal(0),
        source_version=version,
        source_updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


# --- reads --------------------------------------------------------------------------------------------------


def test_reads_inventory_items_products_with_prices_and_orders(shop: Shop) -> None:
    admin = shop.admin()
    got = admin.inventory_level(shop.items[0], shop.location)
    assert got is not None
    assert (got.quantity("available"), got.quantity("committed"), got.quantity("on_hand")) == (10, 1, 11)
    assert got.sku == "SHOE-41"
    assert admin.inventory_level(shop.items[1], shop.other_location) is None  # not stocked there

    item = admin.inventory_item(shop.items[2])
    assert item is not None
    assert (item.sku, item.variant_id, item.product_id) == ("SHOE-43", shop.variants[2], shop.product)

    product = admin.product(shop.product)
    assert product is not None
    canonical = product.to_canonical()
    assert [v.sku for v in canonical.variants] == ["SHOE-41", "SHOE-42", "SHOE-43"]
    prices = {v.sku: v.to_price("USD") for v in product.variants}
    assert prices["SHOE-41"].base == Decimal("89.00")
    assert prices["SHOE-41"].compare_at == Decimal("99.00")
    assert prices["SHOE-43"].compare_at is None

    order_id = shop.sandbox.add_order([(shop.variants[0], 2), (shop.variants[2], 1)])
    order = admin.order(order_id)
    assert order is not None
    placed = order.to_canonical()
    assert placed.total == Decimal("270.50")
    assert [(line.sku, line.quantity) for line in placed.lines] == [("SHOE-41", Decimal(2)), ("SHOE-43", Decimal(1))]
    assert admin.order("gid://shopify/Order/1") is None


def test_cursor_pagination_visits_every_level_once(shop: Shop) -> None:
    extra = shop.sandbox.add_product("Sock", [{"sku": f"SOCK-{n}", "price": "5"} for n in range(4)])
    for item in extra.inventory_item_ids:
        shop.sandbox.stock(item, shop.location, available=1)
    admin = shop.admin()
    levels = list(admin.iter_inventory_levels(shop.location, page_size=3))
    assert len(levels) == 7
    assert len({lvl.id for lvl in levels}) == 7
    assert shop.sandbox.operations["LocationInventoryLevels"] == 3  # 3 + 3 + 1

    products = list(admin.iter_products(page_size=1))
    assert [p.title for p in products] == ["Trail shoe", "Sock"]
    for _ in range(3):
        shop.sandbox.add_order([(shop.variants[1], 1)])
    assert len(list(admin.iter_orders(page_size=2))) == 3
    assert shop.sandbox.operations["Orders"] == 2


def test_ids_above_2_to_the_53_stay_exact(shop: Shop) -> None:
    got = shop.admin().inventory_level(shop.items[0], shop.location)
    assert got is not None
    assert int(gid_number(got.inventory_item_id)) > 2**53
    assert got.inventory_item_id == shop.items[0]
    assert int(gid_number(got.location_id)) == int(gid_number(shop.location))
    assert float(int(gid_number(got.inventory_item_id))) != int(gid_number(got.inventory_item_id))  # a float would lie


# --- writes -------------------------------------------------------------------------------------------------


def test_prices_and_product_fields_are_written(shop: Shop) -> None:
    admin = shop.admin()
    updated = admin.update_variant_prices(
        shop.product, [VariantPrice(shop.variants[1], Decimal("79.00"), Decimal("89.00"))]
    )
    assert [(v.price, v.compare_at_price) for v in updated] == [(Decimal("79.00"), Decimal("89.00"))]
    product = admin.update_product(shop.product, title="Trail shoe v2", tags=["shoes", "sale"])
    assert (product.title, product.tags) == ("Trail shoe v2", ["shoes", "sale"])
    assert product.vendor == "Syncline"  # fields not sent stay as they were
    with pytest.raises(ShopifyUserError, match="Title can't be blank"):
        admin.update_product(shop.product, title=" ")
    with pytest.raises(ShopifyUserError) as refused:
        admin.update_variant_prices("gid://shopify/Product/1", [VariantPrice(shop.variants[0], Decimal(1))])
    assert refused.value.codes == ("PRODUCT_DOES_NOT_EXIST",)


def test_inventory_target_writes_with_compare_and_swap_and_rereads_when_stale(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = shop.admin()
    mapping = {("SHOE-41", "WH"): (shop.items[0], shop.location), ("SHOE-42", "WH"): (shop.items[1], shop.location)}
    target = ShopifyInventoryTarget(admin, identity_from_mapping(mapping))
    raced = False
    read = admin.inventory_level

    def read_then_race(item: str, location: str, names: Any = ()) -> Any:
        nonlocal raced
        current = read(item, location, names)
        if not raced:  # a POS sale lands between our read and our write
            raced = True
            shop.sandbox.set_available(shop.items[0], shop.location, 4)
        return current

    monkeypatch.setattr(admin, "inventory_level", read_then_race)
    written = target.upsert_inventory([level("SHOE-41", "WH", 25), level("SHOE-42", "WH", 11), level("X", "WH", 1)])
    assert written == {"SHOE-41|WH", "SHOE-42|WH"}  # SHOE-42 was already 11: agreed, nothing to set
    assert target.unmapped == ["X|WH"]
    assert shop.sandbox.quantity(shop.items[0], shop.location) == 25
    assert shop.sandbox.operations["InventorySet"] == 2  # the stale attempt and the one after the re-read
    assert shop.sandbox.applied["inventorySetQuantities"] == 1


def test_inventory_target_gives_up_with_stale_write_when_every_attempt_loses(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = shop.admin()
    target = ShopifyInventoryTarget(
        admin, identity_from_mapping({("S", "W"): (shop.items[0], shop.location)}), attempts=2
    )
    read = admin.inventory_level
    bump = iter(range(100, 200))

    def always_racing(item: str, location: str, names: Any = ()) -> Any:
        current = read(item, location, names)
        shop.sandbox.set_available(item, location, next(bump))
        return current

    monkeypatch.setattr(admin, "inventory_level", always_racing)
    with pytest.raises(StaleWrite):
        target.upsert_inventory([level("S", "W", 1)])
    assert shop.sandbox.applied["inventorySetQuantities"] == 0


def test_record_system_read_and_compare_and_swap_write(shop: Shop) -> None:
    records = ShopifyInventoryRecords(
        shop.admin(), identity_from_mapping({("SHOE-41", "WH"): (shop.items[0], shop.location)})
    )
    copy = records.read("SHOE-41|WH")
    assert copy is not None
    # The version is the time of the level's last change (ms): an edit back to an old quantity still moves it.
    assert copy.values == {"available": 10} and copy.version == int(copy.changed_at.timestamp() * 1000)
    assert records.read("UNMAPPED|WH") is None

    written = records.write("SHOE-41|WH", {"available": 12}, expected_version=copy.version)
    assert written.values == {"available": 12} and written.version is not None and written.version >= copy.version
    assert records.read("SHOE-41|WH") == written  # what we wrote is exactly what a read finds (the echo check)
    with pytest.raises(StaleWrite):  # the version read before our own write is stale now
        records.write("SHOE-41|WH", {"available": 13}, expected_version=copy.version)

    shop.sandbox.set_available(shop.items[0], shop.location, 3)  # someone else changed it
    with pytest.raises(StaleWrite):
        records.write("SHOE-41|WH", {"available": 20}, expected_version=written.version)
    assert shop.sandbox.quantity(shop.items[0], shop.location) == 3
    assert shop.sandbox.quantity(shop.items[0], shop.location, "on_hand") == 4  # on_hand moved with available


def test_legacy_versions_use_compare_quantity(shop: Shop) -> None:
    admin = shop.admin(api_version="2025-10")
    change = QuantityChange(shop.items[0], shop.location, 30, 10)
    admin.set_inventory([change])
    assert shop.sandbox.quantity(shop.items[0], shop.location) == 30
    with pytest.raises(InventoryStale) as stale:
        admin.set_inventory([change])
    assert stale.value.errors[0]["code"] == "COMPARE_QUANTITY_STALE"


def test_the_same_idempotency_key_replays_and_never_applies_twice(shop: Shop) -> None:
    admin = shop.admin()
    change = [QuantityChange(shop.items[0], shop.location, 15, 10)]
    first = admin.set_inventory(change, idempotency_key="3f7a1c1e-0b1d-4c53-9d55-1b4c2c8f0001")
    again = admin.set_inventory(change, idempotency_key="3f7a1c1e-0b1d-4c53-9d55-1b4c2c8f0001")
    assert again.id == first.id
    assert shop.sandbox.replays == 1
    assert shop.sandbox.applied["inventorySetQuantities"] == 1
    assert shop.sandbox.quantity(shop.items[0], shop.location) == 15
    with pytest.raises(ShopifyUserError) as refused:
        admin.set_inventory(
            [QuantityChange(shop.items[0], shop.location, 16, 15)],
            idempotency_key="3f7a1c1e-0b1d-4c53-9d55-1b4c2c8f0001",
        )
    assert refused.value.codes == ("IDEMPOTENCY_KEY_PARAMETER_MISMATCH",)


def test_a_write_whose_answer_was_lost_is_resent_with_its_key_and_applied_once(shop: Shop) -> None:
    # The first request is held past the client's timeout; the client resends the same body (same key).
    admin = shop.admin(client=httpx.Client(timeout=httpx.Timeout(0.3)))
    shop.sandbox.faults.add("latency", seconds=0.8, times=1, path="graphql")
    admin.set_inventory([QuantityChange(shop.items[0], shop.location, 42, 10)])
    held = threading.Event()
    for _ in range(50):  # the held request is answered after the retry; wait for it to finish
        if shop.sandbox.operations["InventorySet"] == 2:
            break
        held.wait(0.05)
    assert admin.http.retries == 1
    assert shop.sandbox.operations["InventorySet"] == 2
    assert shop.sandbox.applied["inventorySetQuantities"] == 1
    assert shop.sandbox.replays == 1
    assert shop.sandbox.quantity(shop.items[0], shop.location) == 42


# --- rate limiting and failures -----------------------------------------------------------------------------


def test_throttled_waits_for_the_bucket_to_refill_and_retries() -> None:
    clock = FakeClock()
    sandbox = ShopifySandbox(maximum_available=100, restore_rate=10, clock=clock).start()
    try:
        shop = seed(sandbox)
        admin = shop.admin(sleep=clock.sleep)
        sandbox.bucket.available = 0.0  # another process just spent the whole bucket
        got = admin.inventory_level(shop.items[0], shop.location)
        assert got is not None
        assert admin.throttled == 1
        assert sandbox.throttled == 1
        assert clock.now == pytest.approx(0.2)  # 2 points at 10 points/s, as throttleStatus implied
    finally:
        sandbox.stop()


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("status", {"status": 503, "times": 2}),
        ("status", {"status": 500, "times": 1}),
        ("rate_limit", {"times": 2}),
        ("drop", {"times": 1}),
    ],
)
def test_transport_failures_are_retried(shop: Shop, fault: str, options: dict[str, Any]) -> None:
    admin = shop.admin()
    shop.sandbox.faults.add(fault, **options)
    assert admin.inventory_level(shop.items[0], shop.location) is not None
    assert admin.http.retries == options["times"]
    if fault == "rate_limit":
        assert shop.slept == [2.0, 2.0]  # Shopify's Retry-After, exactly


def test_a_wrong_token_is_refused_with_shopifys_401_and_not_retried(shop: Shop) -> None:
    admin = ShopifyAdmin(
        shop.sandbox.shop,
        access_token=lambda: "shpat_wrong",
        base_url=shop.sandbox.url,
        retry=RetryPolicy(sleep=shop.slept.append),
    )
    with pytest.raises(ApiError) as refused:
        admin.inventory_item(shop.items[0])
    assert refused.value.status == 401
    assert "Invalid API key or access token" in refused.value.reason
    assert "shpat_wrong" not in str(refused.value)
    assert shop.sandbox.unauthorized == 1


def test_the_shared_dynamodb_bucket_keeps_concurrent_workers_under_the_shops_limit(stack: Any) -> None:
    from syncline.adapters.aws import dynamodb
    from syncline.adapters.rate_limit_dynamodb import DynamoBucketStore

    sandbox = ShopifySandbox(maximum_available=100, restore_rate=400).start()
    try:
        shop = seed(sandbox)
        for n in range(7):
            extra = sandbox.add_product(f"P{n}", [{"sku": f"P-{n}", "price": "1"}])
            sandbox.stock(extra.inventory_item_ids[0], shop.location, available=1)
        store = DynamoBucketStore(dynamodb(), stack.resources.table)

        def worker(calls: int, errors: list[BaseException]) -> None:
            admin = shop.admin(limiter=CostLimiter(store, sandbox.shop), throttle_attempts=1)
            try:
                for _ in range(calls):
                    admin.inventory_levels_page(shop.location, first=10)  # 33 points each
            except BaseException as exc:
                errors.append(exc)

        def run(threads: int, calls: int) -> list[BaseException]:
            errors: list[BaseException] = []
            pool = [threading.Thread(target=worker, args=(calls, errors)) for _ in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join(timeout=120)
            return errors

        assert run(1, 1) == []  # the first answer tells the bucket the shop's limits
        assert run(8, 4) == []
        assert sandbox.throttled == 0
        assert sandbox.operations["LocationInventoryLevels"] == 33
        state = store.load(sandbox.shop)
        assert state is not None
        assert (state.maximum, state.restore_rate) == (100, 400)

        # Control: the same load without the shared bucket does get throttled (so the test above can fail).
        def unlimited(errors: list[BaseException]) -> None:
            admin = shop.admin(throttle_attempts=1)
            try:
                for _ in range(4):
                    admin.inventory_levels_page(shop.location, first=10)
            except BaseException as exc:
                errors.append(exc)

        errors: list[BaseException] = []
        pool = [threading.Thread(target=unlimited, args=(errors,)) for _ in range(8)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=120)
        assert sandbox.throttled > 0
    finally:
        sandbox.stop()


# --- webhooks -----------------------------------------------------------------------------------------------


def test_changes_send_signed_webhooks_with_shopifys_headers(shop: Shop) -> None:
    receiver = Receiver()
    secret = "whsec-shopify-test-secret"
    shop.sandbox.subscribe(receiver.url, scheme="shopify", secret=secret)
    try:
        admin = shop.admin()
        admin.set_inventory([QuantityChange(shop.items[0], shop.location, 11, 10)])
        admin.update_variant_prices(shop.product, [VariantPrice(shop.variants[0], Decimal("80.00"))])
        order_id = shop.sandbox.add_order([(shop.variants[0], 1)])
        shop.sandbox.update_order(order_id, fulfillment_status="FULFILLED")
        admin.set_inventory([QuantityChange(shop.items[0], shop.location, 11, 11)])  # no change: no webhook

        assert receiver.topics() == ["inventory_levels/update", "products/update", "orders/create", "orders/updated"]
        for headers, body in receiver.received:
            verify("shopify", secret, headers, body)
            assert headers["X-Shopify-Shop-Domain"] == shop.sandbox.shop
            assert headers["X-Shopify-Webhook-Id"]
            assert headers["X-Shopify-Event-Id"]
            datetime.fromisoformat(headers["X-Shopify-Triggered-At"])
        with pytest.raises(ValueError, match="signature"):
            verify("shopify", "another-secret", *receiver.received[0])

        inventory = json.loads(receiver.received[0][1])
        assert inventory["inventory_item_id"] == int(gid_number(shop.items[0]))  # exact, above 2^53
        assert inventory["available"] == 11
        assert inventory["admin_graphql_api_id"].startswith("gid://shopify/InventoryLevel/")
        order = json.loads(receiver.received[3][1])
        assert (order["admin_graphql_api_id"], order["fulfillment_status"]) == (order_id, "fulfilled")
    finally:
        receiver.close()
