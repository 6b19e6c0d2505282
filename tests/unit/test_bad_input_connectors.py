"""The connectors' parsers on malformed input: a record, or a clear ``ValueError``; never garbage through.

Each parser reads what a SaaS API, a change feed or a database hands it: Shopify GraphQL nodes,
HubSpot webhook deliveries, Salesforce CDC messages and the OMS outbox rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncline.connectors.hubspot import WebhookTranslator
from syncline.connectors.oms_pg import OmsOutbox
from syncline.connectors.salesforce import ChangeEvent, parse_change_event
from syncline.connectors.shopify_models import ShopifyInventoryLevel, ShopifyOrder, ShopifyProduct, ShopifyVariant

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FUZZ = settings(
    max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
BIG = st.integers(min_value=2**53, max_value=2**128)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | BIG | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
TIMES = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()), st.text(max_size=12))
MONEY = st.one_of(
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    BIG.map(lambda n: f"{n}.99"),
)


def gid(kind: str) -> st.SearchStrategy[str]:
    return st.integers(min_value=1, max_value=2**64).map(lambda n: f"gid://shopify/{kind}/{n}")


# -- Shopify GraphQL nodes ------------------------------------------------------------------------------
LEVEL_NODES = st.fixed_dictionaries(
    {"id": gid("InventoryLevel")},
    optional={
        "quantities": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["on_hand", "available", "committed", "incoming"]), "quantity": BIG},
                optional={"updatedAt": TIMES},
            ),
            max_size=4,
        ),
        "updatedAt": TIMES,
        "item": st.fixed_dictionaries({}, optional={"id": gid("InventoryItem"), "sku": st.text(max_size=600)}),
        "location": st.fixed_dictionaries({}, optional={"id": gid("Location")}),
    },
)
VARIANT_NODES = st.fixed_dictionaries(
    {"id": gid("ProductVariant")},
    optional={"sku": st.none() | st.text(max_size=80), "price": MONEY, "compareAtPrice": MONEY, "updatedAt": TIMES},
)
ORDER_NODES = st.fixed_dictionaries(
    {"id": gid("Order"), "createdAt": TIMES},
    optional={
        "currencyCode": st.sampled_from(["USD", "EUR", "", "usd"]),
        "totalPriceSet": st.fixed_dictionaries({"shopMoney": st.fixed_dictionaries({"amount": MONEY})}),
        "lineItems": st.fixed_dictionaries(
            {
                "nodes": st.lists(
                    st.fixed_dictionaries({"id": gid("LineItem"), "sku": st.text(max_size=10), "quantity": BIG})
                )
            }
        ),
    },
)


@FUZZ
@given(node=LEVEL_NODES)
def test_shopify_levels_keep_ids_and_quantities_beyond_2_53_exact(node: dict[str, Any]) -> None:
    try:
        level = ShopifyInventoryLevel.parse(node)
    except ValueError:  # an updatedAt that is not ISO 8601
        return
    assert level.id == node["id"]
    for quantity in node.get("quantities") or []:
        assert level.quantities[quantity["name"]] == next(
            q["quantity"] for q in reversed(node["quantities"]) if q["name"] == quantity["name"]
        )


@FUZZ
@given(node=VARIANT_NODES)
def test_shopify_variants_map_to_an_exact_price_or_a_clear_error(node: dict[str, Any]) -> None:
    try:
        price = ShopifyVariant.parse(node).to_price("USD", fallback_time=NOW)
    except ValueError as exc:
        assert str(exc)
        return
    assert price.base == Decimal(node["price"])  # money never passes through a float


@FUZZ
@given(node=ORDER_NODES)
def test_shopify_orders_map_or_raise_a_clear_error(node: dict[str, Any]) -> None:
    try:
        order = ShopifyOrder.parse(node).to_canonical()
    except ValueError as exc:
        assert str(exc)
        return
    assert order.order_id == node["id"]
    assert all(line.quantity > 0 for line in order.lines)


def test_a_shopify_product_without_an_id_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="id"):
        ShopifyProduct.parse({"title": "no id"})


# -- HubSpot webhook deliveries -------------------------------------------------------------------------
EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "subscriptionType": st.sampled_from(
            ["contact.propertyChange", "company.deletion", "deal.creation", "contact.merge", "object.creation", "x"]
        ),
        "objectTypeId": st.sampled_from(["0-1", "0-2", "0-9"]),
        "objectId": st.one_of(st.integers(min_value=1), BIG, st.text(min_size=1, max_size=600)),
        "eventId": st.one_of(st.integers(), st.text(max_size=10)),
        "occurredAt": st.integers(min_value=0, max_value=2**41),
        "primaryObjectId": st.integers(min_value=1),
        "mergedObjectIds": st.lists(st.integers(min_value=1), max_size=3),
        "changeSource": st.sampled_from(["CRM_UI", "INTEGRATION", "API"]),
        "sourceId": st.sampled_from(["123", "userId:9"]),
    },
)


@FUZZ
@given(events=st.lists(st.one_of(EVENTS, JSON), max_size=6))
def test_hubspot_deliveries_give_well_formed_notices_or_a_clear_error(events: list[Any]) -> None:
    translator = WebhookTranslator(app_id="123", clock=lambda: NOW)
    try:
        notices = translator.notices(json.dumps(events).encode())
    except ValueError as exc:  # a key longer than a notice takes refuses the delivery
        assert "512" in str(exc)
        return
    for notice in notices:
        assert 1 <= len(notice.key) <= 512 and notice.entity in {"contact", "company", "deal"}


@pytest.mark.parametrize("body", [b"{}", b"\xff\xfe[", b"[1, 2"], ids=["object", "invalid UTF-8", "truncated"])
def test_a_hubspot_body_that_is_not_an_event_array_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        WebhookTranslator().notices(body)


HUBSPOT_CRASHES = {
    "occurredAt Infinity": b'[{"subscriptionType": "contact.creation", "objectId": 1, "occurredAt": 1e400}]',
    "occurredAt year 3e9": b'[{"subscriptionType": "contact.creation", "objectId": 1, "occurredAt": 100000000000000000000}]',
    "mergedObjectIds not a list": b'[{"subscriptionType": "contact.merge", "primaryObjectId": 1, "mergedObjectIds": 5}]',
    "nested 100,000 deep": b"[" * 100_000,
}


@pytest.mark.parametrize("body", HUBSPOT_CRASHES.values(), ids=HUBSPOT_CRASHES.keys())
def test_hubspot_deliveries_with_extreme_or_mistyped_fields_are_a_value_error_or_skipped(body: bytes) -> None:
    translator = WebhookTranslator(clock=lambda: NOW)
    try:
        translator.notices(body)
    except ValueError:
        return


def test_a_hubspot_object_id_that_is_not_a_scalar_makes_no_notice() -> None:
    body = json.dumps([{"subscriptionType": "contact.creation", "objectId": {"a": 1}, "occurredAt": 1}])
    translator = WebhookTranslator(clock=lambda: NOW)
    assert translator.notices(body) == []
    assert translator.stats["malformed"] == 1


# -- Salesforce CDC messages ----------------------------------------------------------------------------
HEADERS = st.fixed_dictionaries(
    {"entityName": st.text(max_size=20), "changeType": st.text(max_size=12)},
    optional={
        "recordIds": st.one_of(st.text(max_size=20), st.lists(st.one_of(st.text(max_size=20), BIG), max_size=3)),
        "commitTimestamp": st.integers(min_value=0, max_value=2**41),
        "commitNumber": st.one_of(st.integers(), BIG, st.text(max_size=5), st.none()),
        "sequenceNumber": st.one_of(st.integers(), st.text(max_size=5)),
        "changedFields": st.lists(st.text(max_size=10), max_size=3),
        "changeOrigin": st.text(max_size=40),
        "transactionKey": st.text(max_size=10),
    },
)


@FUZZ
@given(header=HEADERS, fields=st.dictionaries(st.text(max_size=8), JSON, max_size=3), cometd=st.booleans())
def test_salesforce_events_parse_or_raise_a_value_error(header: dict[str, Any], fields: Any, cometd: bool) -> None:
    payload = fields | {"ChangeEventHeader": header}
    message = {"data": {"payload": payload, "event": {"replayId": 7}}} if cometd else payload
    try:
        event = parse_change_event(message)
    except ValueError as exc:
        assert "ChangeEventHeader" in str(exc)
        return
    assert isinstance(event, ChangeEvent)
    assert all(isinstance(record_id, str) for record_id in event.record_ids)


@FUZZ
@given(message=JSON)
def test_salesforce_messages_without_a_header_are_a_value_error(message: Any) -> None:
    if not isinstance(message, dict):
        return  # not a mapping
    with pytest.raises(ValueError, match="ChangeEventHeader"):
        parse_change_event(message)


def _header(**changes: Any) -> dict[str, Any]:
    return {"payload": {"ChangeEventHeader": {"entityName": "Account", "changeType": "UPDATE", **changes}}}


SALESFORCE_CRASHES = {
    "commitTimestamp year 3e9": _header(commitTimestamp=10**20),
    "commitTimestamp an object": _header(commitTimestamp={"ms": 1}),
    "recordIds a number": _header(recordIds=5),
    "changedFields a number": _header(changedFields=5),
    "event not an object": {"data": {"event": "x", "payload": _header()["payload"]}},
    "message not an object": [1, 2],
}


@pytest.mark.parametrize("message", SALESFORCE_CRASHES.values(), ids=SALESFORCE_CRASHES.keys())
def test_salesforce_messages_with_mistyped_header_fields_are_a_value_error(message: Any) -> None:
    try:
        parse_change_event(message)
    except ValueError:
        return


# -- the OMS outbox -------------------------------------------------------------------------------------
class OutboxRows:
    """A psycopg connection stand-in whose claim query returns the given outbox rows."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def execute(self, query: str, params: Any = None) -> Any:
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


def outbox_row(id_: int, key: str, entity: str = "order", version: int | None = 3) -> tuple[Any, ...]:
    return (id_, "upsert", entity, key, version, None, NOW)


@FUZZ
@given(
    keys=st.lists(st.text(min_size=1, max_size=512), min_size=1, max_size=5),
    versions=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
def test_outbox_rows_become_notices_with_their_exact_key_and_version(keys: list[str], versions: int | None) -> None:
    rows = [outbox_row(i, key, version=versions) for i, key in enumerate(keys)]
    claim = OmsOutbox(lambda: OutboxRows(rows)).claim()  # type: ignore[arg-type,return-value]
    assert [(n.key, n.source_version) for n in claim.notices] == [(key, versions) for key in keys]
    assert [n.delivery_id for n in claim.notices] == [f"oms:outbox:{i}" for i in range(len(keys))]


@pytest.mark.parametrize("bad_key", ["", "O" * 513], ids=["empty order id", "order id of 513 characters"])
def test_an_outbox_row_no_notice_can_carry_is_set_aside_and_the_rest_are_claimed(bad_key: str) -> None:
    rows = [outbox_row(1, bad_key), outbox_row(2, "ORDER-2")]
    claim = OmsOutbox(lambda: OutboxRows(rows)).claim()  # type: ignore[arg-type,return-value]
    assert [n.key for n in claim.notices] == ["ORDER-2"]
    assert [rejected.id for rejected in claim.rejected] == [1]  # type: ignore[attr-defined]
