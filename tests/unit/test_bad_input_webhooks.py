"""Signed but malformed webhook bodies: a clear 4xx, never a 5xx or an exception the handler cannot map.

schemathesis (tests/e2e/test_webhook_fuzz.py) cannot sign, so its requests stop at verification.
These are signed with the source's real secret, so they reach parsing, event extraction and the
notice keys: oversized, invalid UTF-8, deep nesting, numbers beyond 2^53, missing key fields.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncline.webhooks.ingress import IngressError, MalformedRequest, Outcome, PayloadTooLarge
from tests.unit.test_webhook_ingress import make, signed, source

FUZZ = settings(
    max_examples=80, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
SCHEMES = ["shopify", "github", "standard-webhooks", "stripe", "hubspot", "slack", "hmac"]

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=15,
)
# Payloads shaped like the real ones, with their key fields missing, mistyped or extreme.
KEY_VALUES = st.one_of(
    JSON,
    st.integers(min_value=2**53, max_value=2**200),
    st.text(min_size=400, max_size=700),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20),
)


def receive(scheme: str, body: bytes | Any, **extra: str) -> Outcome | IngressError:
    ingress, _, bus = make({"src": source(scheme)})
    try:
        outcome = ingress.receive(signed(scheme, body, extra=extra or None))
    except IngressError as refused:
        return refused
    for notice in bus.published:  # what reaches the bus is a well-formed notice
        assert 1 <= len(notice.key) <= 512
        notice.model_dump_json()
    return outcome


def assert_clear(answer: Outcome | IngressError) -> None:
    status = answer.http_status if isinstance(answer, Outcome) else answer.status
    assert status < 500, answer
    if isinstance(answer, IngressError):
        assert answer.reason and answer.message


@FUZZ
@given(scheme=st.sampled_from(SCHEMES), body=st.binary(max_size=400))
def test_any_signed_bytes_get_a_clear_answer(scheme: str, body: bytes) -> None:
    assert_clear(receive(scheme, body))


@FUZZ
@given(scheme=st.sampled_from(SCHEMES), payload=JSON)
def test_any_signed_json_gets_a_clear_answer(scheme: str, payload: Any) -> None:
    assert_clear(receive(scheme, payload))


@FUZZ
@given(
    scheme=st.sampled_from(SCHEMES),
    fields=st.dictionaries(st.sampled_from(["id", "type", "event_id", "eventId", "subscriptionType"]), KEY_VALUES),
)
def test_signed_events_with_missing_or_extreme_key_fields_get_a_clear_answer(scheme: str, fields: Any) -> None:
    payload = [fields] if scheme == "hubspot" else fields
    assert_clear(receive(scheme, payload))


def test_ids_beyond_2_53_stay_exact_in_the_notice_key() -> None:
    ingress, _, bus = make({"src": source("github")})
    ingress.receive(signed("github", b'{"id": 9007199254740993123456789}'))
    assert [notice.key for notice in bus.published] == ["9007199254740993123456789"]


def test_an_oversized_body_is_413_before_it_is_parsed() -> None:
    ingress, _, _ = make({"src": source("github", max_body_bytes=1024)})
    with pytest.raises(PayloadTooLarge):
        ingress.receive(signed("github", b"[" * 2048))


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", b'{"id": "\xc3\x28"}', b"[" * 200_000, b'{"id": 1, "id": '],
    ids=["invalid UTF-8", "invalid UTF-8 in a string", "nested 200,000 deep", "truncated"],
)
def test_bodies_that_are_not_json_are_400(body: bytes) -> None:
    ingress, _, _ = make({"src": source("github")})
    with pytest.raises(MalformedRequest, match="not valid application/json"):
        ingress.receive(signed("github", body))


@pytest.mark.parametrize(
    "payload",
    [{}, {"id": None}, {"id": ""}, {"id": True}, {"id": [1]}, {"id": "x" * 600}],
    ids=["missing", "null", "empty", "boolean", "list", "longer than 512"],
)
def test_an_unusable_key_field_is_400(payload: Any) -> None:
    ingress, _, bus = make({"src": source("github")})
    with pytest.raises(MalformedRequest):
        ingress.receive(signed("github", payload))
    assert bus.published == []


# -- 5xx today ------------------------------------------------------------------------------------------
def test_a_number_of_thousands_of_digits_is_400() -> None:
    ingress, _, _ = make({"src": source("github")})
    with pytest.raises(MalformedRequest):
        ingress.receive(signed("github", b'{"id": ' + b"9" * 5000 + b"}"))


def test_a_key_with_a_lone_surrogate_is_400() -> None:
    ingress, _, _ = make({"src": source("github")})
    with pytest.raises(MalformedRequest):
        ingress.receive(signed("github", b'{"id": "a\\ud800b"}'))


def test_a_key_with_a_nul_is_400() -> None:
    ingress, _, bus = make({"src": source("github")})
    with pytest.raises(MalformedRequest):
        ingress.receive(signed("github", json.dumps({"id": "a\x00b"}).encode()))
    assert bus.published == []
