"""The webhook handler invoked with its sample events (REST v1 and HTTP API v2) against the local stack's services."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from syncline.local.stack import LocalStack
from syncline.webhooks import sign
from tests.conftest import load_event

SHOPIFY = "shopify-store-a"


def signed_event(stack: LocalStack, name: str, *, secret: str | None = None) -> dict[str, Any]:
    """The sample event, re-signed with the stack's secret for the source (the sample's is a placeholder)."""
    event = copy.deepcopy(load_event(name))
    body = event["body"].encode()
    signature = sign("shopify", secret or stack.webhook_secrets[SHOPIFY][0], body)["X-Shopify-Hmac-Sha256"]
    for header in list(event["headers"]):
        if header.lower() == "x-shopify-hmac-sha256":
            event["headers"][header] = signature
    if "multiValueHeaders" in event:
        event["multiValueHeaders"]["X-Shopify-Hmac-Sha256"] = [signature]
    return event


def invoke(stack: LocalStack, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    invocation = stack.functions["webhook"].invoke(event)
    assert invocation.error is None, invocation.error
    response = invocation.response
    # REST API responses carry multiValueHeaders, HTTP API ones plain headers.
    content_type = response.get("headers", {}).get("Content-Type") or response["multiValueHeaders"]["Content-Type"][0]
    assert content_type == "application/json"
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("name", ["webhook_shopify_inventory.json", "webhook_shopify_inventory_http_api.json"])
def test_the_sample_event_is_accepted_then_absorbed_as_duplicate(stack: LocalStack, name: str) -> None:
    event = signed_event(stack, name)
    assert invoke(stack, event) == (
        202,
        {
            "status": "accepted",
            "delivery_ids": ["98880550-7158-44d4-b7cd-2c97c8a091b5/inventory_levels/update"],
            "published": 1,
            "duplicates": 0,
        },
    )
    status, body = invoke(stack, event)
    assert (status, body["status"]) == (200, "duplicate")


def test_rest_and_http_api_shapes_are_the_same_delivery(stack: LocalStack) -> None:
    assert invoke(stack, signed_event(stack, "webhook_shopify_inventory.json"))[0] == 202
    assert invoke(stack, signed_event(stack, "webhook_shopify_inventory_http_api.json"))[1]["status"] == "duplicate"


@pytest.mark.parametrize("name", ["webhook_shopify_inventory.json", "webhook_shopify_inventory_http_api.json"])
def test_a_base64_encoded_body_is_verified_over_its_decoded_bytes(stack: LocalStack, name: str) -> None:
    event = signed_event(stack, name)
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert invoke(stack, event)[0] == 202


def test_a_body_that_is_not_utf8_still_verifies_byte_for_byte(stack: LocalStack) -> None:
    # Latin-1 text in a JSON string: the signature covers these exact bytes, not a re-encoding.
    raw = b'{"inventory_item_id": 1, "location_id": 2, "note": "caf\xe9"}'
    event = signed_event(stack, "webhook_shopify_inventory.json")
    event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    event["headers"]["X-Shopify-Hmac-Sha256"] = sign("shopify", stack.webhook_secrets[SHOPIFY][0], raw)[
        "X-Shopify-Hmac-Sha256"
    ]
    status, body = invoke(stack, event)
    # Authentic, but not UTF-8 JSON: a clear 400, not a 401 and not a 5xx.
    assert (status, body) == (400, {"message": "malformed request"})


def test_a_forged_sample_is_401_and_bad_base64_is_400(stack: LocalStack) -> None:
    forged = signed_event(stack, "webhook_shopify_inventory.json", secret="not-the-secret")
    assert invoke(stack, forged) == (401, {"message": "invalid signature"})
    garbled = signed_event(stack, "webhook_shopify_inventory_http_api.json")
    garbled["body"], garbled["isBase64Encoded"] = "%%% not base64", True
    assert invoke(stack, garbled)[0] == 400


def test_logs_never_hold_a_secret_a_signature_or_the_body(stack: LocalStack) -> None:
    secret = stack.webhook_secrets[SHOPIFY][0]
    accepted = signed_event(stack, "webhook_shopify_inventory.json")
    forged = signed_event(stack, "webhook_shopify_inventory_http_api.json", secret="forged-secret-value")
    for event in (accepted, accepted, forged):
        invoke(stack, event)
    log = stack.functions["webhook"].log_file.read_text()
    messages = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert {m.get("message") for m in messages} >= {"webhook accepted", "webhook duplicate", "webhook refused"}
    forbidden = {
        secret,
        "forged-secret-value",
        accepted["headers"]["X-Shopify-Hmac-Sha256"],
        forged["headers"]["x-shopify-hmac-sha256"],
        "271878346596884015",  # from the body
    }
    for value in forbidden:
        assert value not in log


def test_a_missing_signing_secret_is_our_500_so_the_sender_keeps_the_delivery(stack: LocalStack) -> None:
    import boto3
    from aws_lambda_powertools.utilities import parameters

    boto3.client("secretsmanager").delete_secret(
        SecretId=stack.config.webhooks[SHOPIFY].secret, ForceDeleteWithoutRecovery=True
    )
    parameters.clear_caches()
    assert invoke(stack, signed_event(stack, "webhook_shopify_inventory.json")) == (
        500,
        {"message": "webhook source is misconfigured"},
    )
    log = stack.functions["webhook"].log_file.read_text()
    assert "cannot read the signing secret of 'shopify-store-a'" in log
