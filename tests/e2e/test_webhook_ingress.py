"""Webhooks end to end over real HTTP: local API Gateway -> webhook function -> DynamoDB + EventBridge -> SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from syncline.local.api_gateway import ApiGateway, Route
from syncline.local.lambda_runtime import LocalFunction
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.topology import FunctionSpec

pytestmark = pytest.mark.e2e

SHOPIFY = "shopify-store-a"
LEVEL = {"inventory_item_id": 271878346596884015, "location_id": 24826418, "available": 6}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def tap(stack: LocalStack, source_system: str) -> str:
    """A queue receiving every notice event the bus gets from ``source_system`` (what a sync rule would route)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=f"tap-{source_system}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=f"tap-{source_system}",
        EventBusName=stack.resources.bus,
        EventPattern=json.dumps({"source": [f"syncline.{source_system}"]}),
    )
    events.put_targets(Rule=f"tap-{source_system}", EventBusName=stack.resources.bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


def notices_in(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    notices: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            event = json.loads(message["Body"])
            assert event["detail-type"] == "ChangeNotices"
            notices.extend(event["detail"]["notices"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return notices


def test_a_signed_webhook_lands_on_the_bus_once_and_a_forgery_never(stack: LocalStack, client: httpx.Client) -> None:
    queue = tap(stack, SHOPIFY)
    sender = stack.webhook_sender(SHOPIFY, client)

    accepted = sender.post(LEVEL, delivery_id="evt-100")
    duplicate = sender.post(LEVEL, delivery_id="evt-100")
    forged = sender.post(LEVEL | {"available": 999}, delivery_id="evt-101", forged=True)

    assert (accepted.status_code, accepted.json()["status"]) == (202, "accepted")
    assert (duplicate.status_code, duplicate.json()["status"]) == (200, "duplicate")
    assert (forged.status_code, forged.json()) == (401, {"message": "invalid signature"})
    notices = notices_in(queue)
    assert [(n["source_system"], n["entity"], n["key"], n["delivery_id"]) for n in notices] == [
        (SHOPIFY, "inventory_level", "271878346596884015|24826418", "evt-100/inventory_levels/update")
    ]
    assert notices[0]["triggered_at"] is not None


def test_an_erp_event_webhook_is_synced_to_the_storefront(stack: LocalStack, client: httpx.Client) -> None:
    """erp-events notices are the ERP's own (system = sage300): the storefront worker fetches and writes the row."""
    erp = stack.erp()
    erp.add_items([("A1-100", "Widget")])
    erp.set_stock([Stock("A1-100", "2", Decimal(17))])
    sender = stack.webhook_sender("erp-events", client)

    response = sender.post({"type": "inventory.changed", "data": {"item": "A1-100", "location": "2"}})
    assert response.status_code == 202
    stack.drain()

    rows = stack.storefront().execute("SELECT sku, location, on_hand FROM inventory_levels").fetchall()
    assert rows == [("A1-100", "east", Decimal(17))]


def test_rotation_accepts_old_and_new_then_only_new(stack: LocalStack, client: httpx.Client) -> None:
    old = stack.webhook_sender(SHOPIFY, client)
    assert old.post(LEVEL, delivery_id="r-1").status_code == 202

    stack.rotate_webhook_secret(SHOPIFY)  # {"secrets": [new, old]}: senders switch at their own pace
    new = stack.webhook_sender(SHOPIFY, client)
    assert new.secret != old.secret
    assert old.post(LEVEL, delivery_id="r-2").status_code == 202
    assert new.post(LEVEL, delivery_id="r-3").status_code == 202

    stack.rotate_webhook_secret(SHOPIFY, keep_previous=False)  # the old secret retired
    newest = stack.webhook_sender(SHOPIFY, client)
    assert old.post(LEVEL, delivery_id="r-4").status_code == 401
    assert new.post(LEVEL, delivery_id="r-5").status_code == 401
    assert newest.post(LEVEL, delivery_id="r-6").status_code == 202


@pytest.mark.parametrize("payload_version", ["1.0", "2.0"])
def test_hubspot_signs_the_url_and_both_event_shapes_verify(
    stack: LocalStack, client: httpx.Client, payload_version: str
) -> None:
    gateway = ApiGateway(
        [Route("POST", "/webhooks/{source}", stack.functions["webhook"])],
        payload_version=payload_version,  # type: ignore[arg-type]
    ).start()
    try:
        sender = stack.webhook_sender("hubspot", client)
        sender.base_url = gateway.url
        events = [
            {
                "eventId": 7001,
                "subscriptionType": "contact.propertyChange",
                "objectId": 51,
                "occurredAt": 1795443326000,
            },
            {
                "eventId": 7002,
                "subscriptionType": "contact.propertyChange",
                "objectId": 52,
                "occurredAt": 1795443327000,
            },
        ]
        first = sender.post(events)
        again = sender.post(events)
        tampered = client.post(
            sender.url + "?extra=1",
            content=json.dumps(events).encode(),
            headers=sender.headers(json.dumps(events).encode()),
        )
    finally:
        gateway.stop()
    assert (first.status_code, first.json()["published"]) == (202, 2)
    assert (again.status_code, again.json()["duplicates"]) == (200, 2)
    assert tampered.status_code == 401  # signed for another URL


def test_a_publish_failure_is_503_and_the_retry_is_published_not_taken_for_a_duplicate(
    stack: LocalStack, client: httpx.Client
) -> None:
    events = boto3.client("events")
    sender = stack.webhook_sender(SHOPIFY, client)
    events.delete_event_bus(Name=stack.resources.bus)  # EventBridge now refuses every PutEvents

    failed = sender.post(LEVEL, delivery_id="evt-503")
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "1"

    events.create_event_bus(Name=stack.resources.bus)
    queue = tap(stack, SHOPIFY)
    retried = sender.post(LEVEL, delivery_id="evt-503")
    assert (retried.status_code, retried.json()["status"]) == (202, "accepted")
    assert [n["delivery_id"] for n in notices_in(queue)] == ["evt-503/inventory_levels/update"]


def test_bad_input_gets_a_clear_4xx(stack: LocalStack, client: httpx.Client) -> None:
    sender = stack.webhook_sender(SHOPIFY, client)
    body = json.dumps(LEVEL).encode()
    headers = sender.headers(body)

    unknown = client.post(f"{stack.api_url}/webhooks/no-such-source", content=body, headers=headers)
    big = json.dumps(LEVEL | {"pad": "x" * (1024 * 1024)}).encode()
    too_large = client.post(sender.url, content=big, headers=sender.headers(big))
    as_text = client.post(sender.url, content=body, headers=headers | {"Content-Type": "text/plain"})
    unsigned = client.post(sender.url, content=body, headers={"Content-Type": "application/json"})
    no_route = client.post(f"{stack.api_url}/elsewhere", content=body, headers=headers)

    assert unknown.status_code == 404
    assert too_large.status_code == 413
    assert as_text.status_code == 415
    assert (unsigned.status_code, unsigned.json()) == (401, {"message": "invalid signature"})
    assert no_route.status_code == 403  # API Gateway's answer for a path with no route


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("handler crashed")


def test_the_local_gateway_answers_502_when_the_function_fails(tmp_path: Path, client: httpx.Client) -> None:
    spec = FunctionSpec(id="boom", handler="tests.e2e.test_webhook_ingress.boom")
    gateway = ApiGateway([Route("POST", "/x/{id}", LocalFunction(spec, {}, tmp_path / "log"))]).start()
    try:
        response = client.post(f"{gateway.url}/x/1", content=b"{}")
    finally:
        gateway.stop()
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_the_demo_round_shows_accepted_duplicate_and_forged(stack: LocalStack) -> None:
    import io

    from rich.console import Console

    from syncline.local.demo import _print_webhooks, _webhook_round

    webhooks = _webhook_round(stack)
    out = io.StringIO()
    _print_webhooks(Console(file=out, width=200), webhooks)
    assert webhooks == {"signed": 202, "duplicate": 200, "forged": 401}
    assert out.getvalue().startswith("✓ webhooks to /webhooks/shopify-store-a: signed accepted (202)")
