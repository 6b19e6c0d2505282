"""The URL the webhook handler reconstructs for HubSpot's signature, from both event shapes."""

from __future__ import annotations

import copy

import pytest

from handlers.webhook import _raw_body, _received_url
from syncline.webhooks.ingress import MalformedRequest
from tests.conftest import load_event

HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"


def test_a_rest_api_event_gives_the_stage_url_the_sender_called() -> None:
    event = load_event("webhook_shopify_inventory.json")
    assert _received_url(event) == f"https://{HOST}/prod/webhooks/shopify-store-a"


def test_rest_api_query_parameters_are_kept() -> None:
    event = copy.deepcopy(load_event("webhook_shopify_inventory.json"))
    event["multiValueQueryStringParameters"] = {"portal": ["42"], "tag": ["a", "b c"]}
    assert _received_url(event).endswith("/prod/webhooks/shopify-store-a?portal=42&tag=a&tag=b+c")


def test_an_http_api_event_uses_its_raw_path_and_query() -> None:
    event = copy.deepcopy(load_event("webhook_shopify_inventory_http_api.json"))
    event["rawQueryString"] = "portal=42&x=%2F"
    assert _received_url(event) == f"https://{HOST}/webhooks/shopify-store-a?portal=42&x=%2F"


def test_a_configured_public_url_wins_over_the_gateways_host() -> None:
    event = load_event("webhook_shopify_inventory.json")
    public = "https://hooks.example.com/webhooks/shopify-store-a"
    assert _received_url(event, public) == public


def test_raw_body_is_the_bytes_received_in_either_encoding() -> None:
    event = copy.deepcopy(load_event("webhook_shopify_inventory.json"))
    assert _raw_body(event) == event["body"].encode()
    event.update(body="3q2+7w==", isBase64Encoded=True)
    assert _raw_body(event) == b"\xde\xad\xbe\xef"
    event["body"] = "not base64!"
    with pytest.raises(MalformedRequest):
        _raw_body(event)
