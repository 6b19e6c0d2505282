"""The webhook ingress engine with in-memory ports: every status the issue names, dedupe and publish failure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from syncline.models import ChangeNotice
from syncline.ports import DeliveryClaim
from syncline.webhooks import HmacScheme, sign
from syncline.webhooks.ingress import (
    DeliveryInProgress,
    Ingress,
    MalformedRequest,
    PayloadTooLarge,
    SourceMisconfigured,
    Unauthorized,
    Unavailable,
    UnknownSource,
    UnsupportedMediaType,
    WebhookRequest,
    parse_webhook_secret,
)
from syncline.webhooks.sources import WebhookSource

NOW = 1_795_443_326.0
URL = "https://hooks.example.com/webhooks/src"
SECRETS = {
    "shopify": "shpss_current",
    "github": "gh-secret",
    "standard-webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "svix": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "stripe": "whsec_stripe_test",
    "hubspot": "hubspot-client-secret",
    "slack": "slack-signing-secret",
    "hmac": "generic-secret",
}


@dataclass
class MemoryDeliveries:
    """DeliveryStore in memory, with the same claim rules as the DynamoDB one (no leases needed here)."""

    records: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # -> (state, token)
    fail_claims: bool = False

    def claim(self, source: str, delivery_id: str, token: str, *, now: float) -> DeliveryClaim:
        if self.fail_claims:
            raise ConnectionError("table unreachable")
        held = self.records.get((source, delivery_id))
        if held is None:
            self.records[(source, delivery_id)] = ("pending", token)
            return DeliveryClaim.CLAIMED
        return DeliveryClaim.IN_PROGRESS if held[0] == "pending" else DeliveryClaim.DUPLICATE

    def complete(self, source: str, delivery_id: str, token: str, *, now: float) -> None:
        if self.records.get((source, delivery_id), ("", ""))[1] == token:
            self.records[(source, delivery_id)] = ("published", token)

    def release(self, source: str, delivery_id: str, token: str) -> None:
        if self.records.get((source, delivery_id), ("", ""))[1] == token:
            del self.records[(source, delivery_id)]


@dataclass
class MemoryBus:
    published: list[ChangeNotice] = field(default_factory=list)
    failures: int = 0

    def publish(self, notices: Sequence[ChangeNotice]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("EventBridge rejected 1 event(s) after retries")
        self.published.extend(notices)


def source(scheme: str, **overrides: Any) -> WebhookSource:
    topics = {"*": {"entity": "thing", "key": ["id"]}}
    return WebhookSource.model_validate(
        {"scheme": scheme, "secret": f"syncline/webhooks/{scheme}", "topics": topics} | overrides
    )


def make(sources: dict[str, WebhookSource], secrets: dict[str, list[str]] | None = None) -> tuple[Ingress, Any, Any]:
    deliveries, bus = MemoryDeliveries(), MemoryBus()
    table = secrets or {name: [SECRETS[s.scheme]] for name, s in sources.items()}
    by_ref = {s.secret: table[name] for name, s in sources.items()}
    ingress = Ingress(sources, lambda s: by_ref[s.secret], deliveries, bus, clock=lambda: NOW)
    return ingress, deliveries, bus


def signed(
    scheme: str,
    payload: Any,
    *,
    secret: str | None = None,
    msg_id: str = "msg_1",
    timestamp: int = int(NOW),
    extra: dict[str, str] | None = None,
) -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} | sign(
        scheme, secret or SECRETS[scheme], body, timestamp=timestamp, msg_id=msg_id, url=URL
    )
    return WebhookRequest(source="src", headers=headers | (extra or {}), body=body, url=URL)


# -- acknowledged, deduplicated, published ---------------------------------------------------------------


def test_a_signed_delivery_is_published_once_and_its_retry_acknowledged_as_duplicate() -> None:
    ingress, _, bus = make({"src": source("standard-webhooks")})
    request = signed("standard-webhooks", {"type": "thing.updated", "id": 42}, msg_id="msg_2c9")

    first = ingress.receive(request)
    again = ingress.receive(request)

    assert (first.status, first.http_status, first.published) == ("accepted", 202, 1)
    assert (again.status, again.http_status, again.duplicates) == ("duplicate", 200, 1)
    assert [(n.source_system, n.entity, n.key, n.delivery_id) for n in bus.published] == [
        ("src", "thing", "42", "msg_2c9")
    ]
    assert bus.published[0].observed_at == datetime.fromtimestamp(NOW, UTC)


def test_shopify_ids_stay_exact_and_triggered_at_is_carried() -> None:
    topics = {"inventory_levels/update": {"entity": "inventory_level", "key": ["inventory_item_id", "location_id"]}}
    ingress, _, bus = make({"src": source("shopify", topics=topics, system="shopify-a")})
    request = signed(
        "shopify",
        {"inventory_item_id": 271878346596884015, "location_id": 24826418},
        extra={
            "X-Shopify-Topic": "inventory_levels/update",
            "X-Shopify-Event-Id": "evt-9",
            "X-Shopify-Triggered-At": "2026-11-23T14:15:26.123Z",
        },
    )
    ingress.receive(request)
    (notice,) = bus.published
    assert notice.key == "271878346596884015|24826418"  # > 2**53: a float would have rounded it
    assert notice.source_system == "shopify-a"
    assert notice.delivery_id == "evt-9/inventory_levels/update"
    assert notice.triggered_at == datetime(2026, 11, 23, 14, 15, 26, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scheme", "payload", "extra", "expected_id"),
    [
        ("shopify", {"id": 1}, {"X-Shopify-Webhook-Id": "wh-1"}, "wh-1"),
        ("shopify", {"id": 1}, {"X-Shopify-Event-Id": "ev-1", "X-Shopify-Topic": "t"}, "ev-1/t"),
        ("github", {"id": 1}, {"X-GitHub-Delivery": "72d3162e-cc78"}, "72d3162e-cc78"),
        ("standard-webhooks", {"id": 1}, {}, "msg_1"),
        ("svix", {"id": 1}, {}, "msg_1"),
        ("stripe", {"id": "evt_1Nq", "type": "x"}, {}, "evt_1Nq"),
        ("slack", {"event_id": "Ev08", "event": {"type": "message"}, "id": 1}, {}, "Ev08"),
    ],
)
def test_each_scheme_takes_the_senders_delivery_id(
    scheme: str, payload: dict[str, Any], extra: dict[str, str], expected_id: str
) -> None:
    ingress, _, bus = make({"src": source(scheme)})
    ingress.receive(signed(scheme, payload, extra=extra))
    assert [n.delivery_id for n in bus.published] == [expected_id]


def test_without_a_delivery_id_the_body_hash_dedupes() -> None:
    ingress, _, bus = make({"src": source("hmac")})
    first = ingress.receive(signed("hmac", {"id": 7}))
    second = ingress.receive(signed("hmac", {"id": 7}))
    other = ingress.receive(signed("hmac", {"id": 8}))
    assert first.delivery_ids[0].startswith("sha256:")
    assert (first.status, second.status, other.status) == ("accepted", "duplicate", "accepted")
    assert len(bus.published) == 2


def test_generic_hmac_uses_its_configured_header_and_delivery_id() -> None:
    options = {"header": "X-Acme-Sig", "algorithm": "sha512", "prefix": "sha512=", "delivery_id_header": "X-Acme-Id"}
    ingress, _, bus = make({"src": source("hmac", hmac=options)})
    body = b'{"id": 3}'
    scheme = HmacScheme(header="X-Acme-Sig", algorithm="sha512", prefix="sha512=")
    headers = {"Content-Type": "application/json", "X-Acme-Id": "d-1"} | sign(scheme, SECRETS["hmac"], body)
    ingress.receive(WebhookRequest("src", headers, body))
    assert [n.delivery_id for n in bus.published] == ["d-1"]


def test_hubspot_batches_are_deduplicated_per_event() -> None:
    topics = {"contact.propertyChange": {"entity": "contact", "key": ["objectId"]}}
    ingress, _, bus = make({"src": source("hubspot", topics=topics)})
    event = {"eventId": 1, "subscriptionType": "contact.propertyChange", "objectId": 501, "occurredAt": 1795443326000}
    ingress.receive(signed("hubspot", [event]))
    outcome = ingress.receive(signed("hubspot", [event, event | {"eventId": 2, "objectId": 502}]))
    assert (outcome.status, outcome.published, outcome.duplicates) == ("accepted", 1, 1)
    assert [(n.key, n.delivery_id) for n in bus.published] == [("501", "1"), ("502", "2")]
    assert bus.published[0].triggered_at == datetime.fromtimestamp(1795443326, UTC)


def test_a_topic_nobody_mapped_is_acknowledged_and_not_published() -> None:
    topics = {"orders/create": {"entity": "order", "key": ["id"]}}
    ingress, deliveries, bus = make({"src": source("shopify", topics=topics)})
    outcome = ingress.receive(signed("shopify", {"id": 1}, extra={"X-Shopify-Topic": "carts/update"}))
    assert (outcome.status, outcome.http_status) == ("ignored", 200)
    assert bus.published == [] and deliveries.records == {}


def test_slacks_signed_url_verification_is_answered_with_its_challenge() -> None:
    ingress, deliveries, bus = make({"src": source("slack")})
    outcome = ingress.receive(signed("slack", {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595"}))
    assert outcome.body() == {"status": "challenge", "challenge": "3eZbrw1aBm2rZgRNFdxV2595"}
    assert outcome.http_status == 200 and bus.published == [] and deliveries.records == {}
    with pytest.raises(Unauthorized):  # an unsigned handshake is refused like anything else
        ingress.receive(signed("slack", {"type": "url_verification", "challenge": "x"}, secret="wrong"))


def test_rotation_accepts_either_active_secret_and_nothing_else() -> None:
    ingress, _, _ = make({"src": source("github")}, {"src": ["gh-new", "gh-old"]})
    assert ingress.receive(signed("github", {"id": 1}, secret="gh-new")).status == "accepted"
    assert ingress.receive(signed("github", {"id": 2}, secret="gh-old")).status == "accepted"
    with pytest.raises(Unauthorized):
        ingress.receive(signed("github", {"id": 3}, secret="gh-older"))


# -- publish failure: never acknowledged, never swallowed as a duplicate later ---------------------------


def test_a_failed_publish_answers_503_and_the_retry_is_published_not_deduplicated() -> None:
    ingress, deliveries, bus = make({"src": source("standard-webhooks")})
    bus.failures = 1
    request = signed("standard-webhooks", {"id": 5})
    with pytest.raises(Unavailable) as refused:
        ingress.receive(request)
    assert refused.value.status == 503
    assert deliveries.records == {}  # released
    retry = ingress.receive(request)
    assert (retry.status, retry.published) == ("accepted", 1)
    assert [n.key for n in bus.published] == ["5"]


def test_an_unreachable_delivery_table_answers_503() -> None:
    ingress, deliveries, bus = make({"src": source("standard-webhooks")})
    deliveries.fail_claims = True
    with pytest.raises(Unavailable):
        ingress.receive(signed("standard-webhooks", {"id": 5}))
    assert bus.published == []


def test_a_copy_arriving_while_the_first_is_in_flight_is_told_to_retry() -> None:
    ingress, deliveries, bus = make({"src": source("standard-webhooks")})
    deliveries.records[("src", "msg_1")] = ("pending", "someone-else")
    with pytest.raises(DeliveryInProgress) as refused:
        ingress.receive(signed("standard-webhooks", {"id": 5}))
    assert refused.value.status == 409
    assert bus.published == []


# -- refusals ------------------------------------------------------------------------------------------


def test_unknown_source_is_404() -> None:
    ingress, _, _ = make({"src": source("github")})
    request = signed("github", {"id": 1})
    with pytest.raises(UnknownSource):
        ingress.receive(WebhookRequest("elsewhere", request.headers, request.body))


def test_a_body_over_the_limit_is_413_before_any_verification() -> None:
    ingress, _, _ = make({"src": source("github", max_body_bytes=64)})
    with pytest.raises(PayloadTooLarge) as refused:
        ingress.receive(signed("github", {"id": 1, "pad": "x" * 64}))
    assert refused.value.status == 413


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/jsonx"])
def test_a_json_source_sent_something_else_is_415(content_type: str) -> None:
    ingress, _, _ = make({"src": source("github")})
    request = signed("github", {"id": 1})
    headers = {k: v for k, v in request.headers.items() if k != "Content-Type"}
    if content_type:
        headers["Content-Type"] = content_type
    with pytest.raises(UnsupportedMediaType):
        ingress.receive(WebhookRequest("src", headers, request.body))


def test_content_type_parameters_and_case_are_accepted() -> None:
    ingress, _, _ = make({"src": source("github")})
    request = signed("github", {"id": 1}, extra={"Content-Type": "Application/JSON; charset=utf-8"})
    assert ingress.receive(request).status == "accepted"


@pytest.mark.parametrize(
    ("scheme", "tamper"),
    [
        ("github", lambda h: h.pop("X-Hub-Signature-256")),
        ("github", lambda h: h.update({"X-Hub-Signature-256": "sha256=" + "0" * 64})),
        ("shopify", lambda h: h.update({"X-Shopify-Hmac-Sha256": "bm90IGl0"})),
        ("stripe", lambda h: h.update({"Stripe-Signature": h["Stripe-Signature"].replace("v1=", "v1=0")})),
        ("slack", lambda h: h.update({"X-Slack-Request-Timestamp": str(int(NOW) - 301)})),
        ("standard-webhooks", lambda h: h.update({"webhook-timestamp": str(int(NOW) + 301)})),
    ],
)
def test_missing_wrong_or_stale_signatures_are_401_without_saying_which(scheme: str, tamper: Any) -> None:
    ingress, _, bus = make({"src": source(scheme)})
    request = signed(scheme, {"id": 1, "event_id": "e", "type": "t"})
    headers = dict(request.headers)
    tamper(headers)
    with pytest.raises(Unauthorized) as refused:
        ingress.receive(WebhookRequest("src", headers, request.body, url=URL))
    assert refused.value.message == "invalid signature"
    assert bus.published == []


@pytest.mark.parametrize(
    ("scheme", "header", "value"),
    [
        ("slack", "X-Slack-Request-Timestamp", "12:00"),
        ("standard-webhooks", "webhook-timestamp", "-1"),
        ("stripe", "Stripe-Signature", "v1=abc"),
        ("hubspot", "X-HubSpot-Request-Timestamp", "1.5e12"),
    ],
)
def test_malformed_timestamps_and_headers_are_400(scheme: str, header: str, value: str) -> None:
    ingress, _, _ = make({"src": source(scheme)})
    request = signed(scheme, [{"id": 1}] if scheme == "hubspot" else {"id": 1})
    with pytest.raises(MalformedRequest):
        ingress.receive(WebhookRequest("src", dict(request.headers) | {header: value}, request.body, url=URL))


def test_a_signed_body_that_is_not_json_or_lacks_the_key_is_400() -> None:
    ingress, _, _ = make({"src": source("github")})
    with pytest.raises(MalformedRequest, match="not valid"):
        ingress.receive(signed("github", b"{not json"))
    with pytest.raises(MalformedRequest, match="no usable 'id'"):
        ingress.receive(signed("github", {"name": "no id here"}))
    with pytest.raises(MalformedRequest, match="no usable 'id'"):
        ingress.receive(signed("github", {"id": 1.5}))


def test_a_malformed_shopify_triggered_at_is_400() -> None:
    ingress, _, _ = make({"src": source("shopify")})
    with pytest.raises(MalformedRequest, match="Triggered-At"):
        ingress.receive(signed("shopify", {"id": 1}, extra={"X-Shopify-Triggered-At": "yesterday"}))


def test_an_unreadable_or_unusable_secret_is_our_500_not_the_senders_401() -> None:
    sources = {"src": source("standard-webhooks")}
    broken = Ingress(sources, lambda s: ["not base64 !!"], MemoryDeliveries(), MemoryBus(), clock=lambda: NOW)
    with pytest.raises(SourceMisconfigured) as refused:
        broken.receive(signed("standard-webhooks", {"id": 1}))
    assert refused.value.status == 500

    def missing(_: WebhookSource) -> list[str]:
        raise LookupError("ResourceNotFoundException")

    unreadable = Ingress(sources, missing, MemoryDeliveries(), MemoryBus(), clock=lambda: NOW)
    with pytest.raises(SourceMisconfigured):
        unreadable.receive(signed("standard-webhooks", {"id": 1}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain-secret", ["plain-secret"]),
        ('{"secrets": ["new", "old"]}', ["new", "old"]),
        ('["new", "old"]', ["new", "old"]),
    ],
)
def test_secret_values_hold_one_or_several_active_secrets(value: str, expected: list[str]) -> None:
    assert parse_webhook_secret(value) == expected


@pytest.mark.parametrize("value", ['{"secret": "x"}', "[]", '{"secrets": [""]}', "{broken"])
def test_unusable_secret_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        parse_webhook_secret(value)
