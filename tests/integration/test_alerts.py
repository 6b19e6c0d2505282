"""Alert channels over real HTTP against the alerts sandbox (Slack webhook, PagerDuty Events v2), SES and the
DynamoDB notification dedupe against the moto server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest

from syncline.adapters.notify_dynamodb import DynamoNotificationDedupe
from syncline.canonical.events import StockUpdated
from syncline.connectors.alerts import Alert, AlertChannel, PagerDutyEvents, SesEmail, SlackWebhook
from syncline.connectors.http import ApiError, HttpApi, RetryPolicy
from syncline.local.sandboxes.alerts import AlertsSandbox
from syncline.models import InventoryLevel
from syncline.notify import NotificationFailed, Notifier, load_rules

ALERT = Alert(
    summary="SKU-1 at MAIN: only 2 left",
    severity="error",
    title="Low stock",
    component="StockUpdated",
    details={"sku": "SKU-1", "available": "2"},
    dedup_key="low-stock:SKU-1|MAIN",
)


@pytest.fixture
def sandbox() -> Iterator[AlertsSandbox]:
    with AlertsSandbox(seed=7) as server:
        yield server


def no_wait() -> RetryPolicy:
    return RetryPolicy(attempts=4, sleep=lambda seconds: None)


@pytest.fixture
def secrets(sandbox: AlertsSandbox) -> dict[str, str]:
    return {"alerts/slack-ops": sandbox.slack_webhook(), "alerts/pagerduty": sandbox.routing_key()}


def slack(secrets: dict[str, str]) -> SlackWebhook:
    return SlackWebhook(
        "ops-slack", "alerts/slack-ops", secrets.__getitem__, http=HttpApi("slack", "", retry=no_wait())
    )


def pagerduty(sandbox: AlertsSandbox, secrets: dict[str, str]) -> PagerDutyEvents:
    http = HttpApi("pagerduty", sandbox.url, retry=no_wait())
    return PagerDutyEvents("pager", "alerts/pagerduty", secrets.__getitem__, http=http)


# --- Slack ---------------------------------------------------------------------------------------------


def test_slack_receives_text_and_blocks(sandbox: AlertsSandbox, secrets: dict[str, str]) -> None:
    assert slack(secrets).send(ALERT).channel == "ops-slack"
    [message] = sandbox.slack_messages
    assert message["text"] == "[error] SKU-1 at MAIN: only 2 left"
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "section", "context"]
    assert message["blocks"][2]["fields"][0]["text"] == "*sku*\nSKU-1"


def test_slack_5xx_is_retried_until_it_succeeds(sandbox: AlertsSandbox, secrets: dict[str, str]) -> None:
    sandbox.faults.add("status", times=2, status=503)
    channel = slack(secrets)
    channel.send(ALERT)
    assert len(sandbox.slack_messages) == 1
    assert sum(sandbox.requests.values()) == 3
    assert channel._http.retries == 2


def test_a_revoked_slack_webhook_fails_at_once_without_revealing_the_url(
    sandbox: AlertsSandbox, secrets: dict[str, str]
) -> None:
    sandbox.revoke_slack_webhook(secrets["alerts/slack-ops"])
    with pytest.raises(ApiError) as raised:
        slack(secrets).send(ALERT)
    assert (raised.value.status, raised.value.reason, raised.value.retryable) == (404, "no_service", False)
    assert sum(sandbox.requests.values()) == 1
    token = secrets["alerts/slack-ops"].rsplit("/", 1)[1]
    assert token not in str(raised.value)
    with pytest.raises(ValueError, match="'alerts/slack-ops' does not hold a webhook URL") as wrong:
        slack({"alerts/slack-ops": "xoxb-not-a-url"}).send(ALERT)
    assert "xoxb" not in str(wrong.value)


def test_an_invalid_slack_payload_is_a_400_and_not_retried(sandbox: AlertsSandbox, secrets: dict[str, str]) -> None:
    http = HttpApi("slack", "", retry=no_wait())
    with pytest.raises(ApiError) as raised:
        http.post(secrets["alerts/slack-ops"], json={"username": "no text"})
    assert (raised.value.status, raised.value.reason) == (400, "invalid_payload")
    assert http.retries == 0
    not_json = httpx.post(secrets["alerts/slack-ops"], content=b"{not json")
    assert (not_json.status_code, not_json.text) == (400, "invalid_payload")


def test_the_webhook_url_never_reaches_the_logs(
    sandbox: AlertsSandbox, secrets: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        slack(secrets).send(ALERT)
    assert "HTTP Request: POST" in caplog.text  # httpx did log the request...
    assert "[redacted]" in caplog.text
    assert secrets["alerts/slack-ops"].rsplit("/", 1)[1] not in caplog.text  # ...without the credential


# --- PagerDuty -----------------------------------------------------------------------------------------


def test_pagerduty_trigger_then_resolve_one_incident(sandbox: AlertsSandbox, secrets: dict[str, str]) -> None:
    channel = pagerduty(sandbox, secrets)
    delivery = channel.send(ALERT)
    assert delivery.reference == "low-stock:SKU-1|MAIN"
    assert sandbox.incidents == {"low-stock:SKU-1|MAIN": "triggered"}
    event = sandbox.pagerduty_events[0]
    assert event["routing_key"] == secrets["alerts/pagerduty"]
    assert event["payload"] == {
        "summary": "SKU-1 at MAIN: only 2 left",
        "severity": "error",
        "source": "syncline",
        "component": "StockUpdated",
        "custom_details": {"sku": "SKU-1", "available": "2"},
    }
    resolve = Alert(summary="back in stock", action="resolve", dedup_key="low-stock:SKU-1|MAIN")
    channel.send(resolve)
    assert sandbox.incidents == {"low-stock:SKU-1|MAIN": "resolved"}
    assert "payload" not in sandbox.pagerduty_events[1]
    with pytest.raises(ValueError, match="needs the dedup_key"):
        channel.send(Alert(summary="x", action="acknowledge"))


def test_pagerduty_throttling_and_dropped_connections_are_retried(
    sandbox: AlertsSandbox, secrets: dict[str, str]
) -> None:
    sandbox.faults.add("rate_limit", times=1)
    sandbox.faults.add("drop", times=1)
    channel = pagerduty(sandbox, secrets)
    channel.send(ALERT)
    assert len(sandbox.pagerduty_events) == 1
    assert sandbox.faults.injected == {"rate_limit": 1, "drop": 1}
    assert channel._http.retries == 2


def test_pagerduty_invalid_event_is_a_400_and_not_retried(sandbox: AlertsSandbox) -> None:
    wrong_key = "not-32-characters"
    channel = pagerduty(sandbox, {"alerts/pagerduty": wrong_key})
    with pytest.raises(ApiError) as raised:
        channel.send(ALERT)
    assert (raised.value.status, raised.value.retryable, raised.value.reason) == (400, False, "Event object is invalid")
    assert sum(sandbox.requests.values()) == 1
    assert wrong_key not in str(raised.value)
    body = httpx.post(f"{sandbox.url}/v2/enqueue", json={"routing_key": "x" * 32, "event_action": "trigger"}).json()
    assert body["status"] == "invalid event"
    assert "'payload' is missing or invalid" in body["errors"]


# --- SES (moto server) ---------------------------------------------------------------------------------


def test_ses_sends_from_a_verified_sender_and_refuses_an_unverified_one(stack: Any) -> None:
    client = boto3.client("sesv2")
    client.create_email_identity(EmailIdentity="alerts@example.com")
    email = SesEmail("ops-mail", "alerts@example.com", ["ops@example.com", "lead@example.com"], client=client)
    delivery = email.send(ALERT)
    assert delivery.reference
    assert boto3.client("ses").get_send_quota()["SentLast24Hours"] == 2  # one message, two recipients
    request = email.message(ALERT)
    assert request["Content"]["Simple"]["Subject"]["Data"] == "[Syncline] ERROR: Low stock"
    assert "sku: SKU-1" in request["Content"]["Simple"]["Body"]["Text"]["Data"]

    stranger = SesEmail("spoof", "someone@elsewhere.example", ["ops@example.com"], client=client)
    with pytest.raises(ApiError) as raised:
        stranger.send(ALERT)
    assert raised.value.service == "ses"
    assert raised.value.retryable is False
    assert "MessageRejected" in raised.value.reason


# --- end to end: rules, DynamoDB dedupe, real channels -----------------------------------------------------


def stock_event(event_id: str) -> StockUpdated:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    level = InventoryLevel(
        sku="SKU-1",
        location="MAIN",
        on_hand=Decimal(2),
        reserved=Decimal(0),
        available=Decimal(2),
        on_order=Decimal(0),
        source_version=1,
        source_updated_at=now,
    )
    return StockUpdated(event_id=event_id, occurred_at=now, source_system="sage300", key="SKU-1|MAIN", data=level)


def test_a_redelivered_event_alerts_once_with_dedupe_in_dynamodb(
    stack: Any, sandbox: AlertsSandbox, secrets: dict[str, str]
) -> None:
    rules = load_rules(
        [
            {
                "name": "low-stock",
                "event": "StockUpdated",
                "when": [{"field": "available", "below": 5}],
                "channels": ["ops-slack", "pager"],
                "message": "{sku} at {location}: only {available} left",
                "severity": "warning",
            }
        ]
    )
    dedupe = DynamoNotificationDedupe(boto3.client("dynamodb"), stack.resources.table)
    channels: dict[str, AlertChannel] = {"ops-slack": slack(secrets), "pager": pagerduty(sandbox, secrets)}
    sandbox.faults.add("status", status=400, path=r"^/v2/enqueue$", times=1)  # PagerDuty refuses once
    with pytest.raises(NotificationFailed) as raised:
        Notifier(rules, channels, dedupe).handle(stock_event("evt-1"))
    assert [s.channel for s in raised.value.sent] == ["ops-slack"]

    again = Notifier(rules, channels, dedupe).handle(stock_event("evt-1"))  # the queue redelivers, another worker
    assert [s.channel for s in again] == ["pager"]
    assert Notifier(rules, channels, dedupe).handle(stock_event("evt-1")) == []
    assert len(sandbox.slack_messages) == 1
    assert len(sandbox.pagerduty_events) == 1
    item = boto3.client("dynamodb").get_item(
        TableName=stack.resources.table, Key={"pk": {"S": "NT#low-stock#evt-1#pager"}}
    )["Item"]
    assert item["state"]["S"] == "sent"
    assert int(item["expires_at"]["N"]) - int(item["claimed_at"]["N"]) == 168 * 3600


def test_dynamodb_dedupe_claims_leases_and_expiry(stack: Any) -> None:
    dedupe = DynamoNotificationDedupe(boto3.client("dynamodb"), stack.resources.table, lease_seconds=60)
    first = dedupe.claim("r#e#c", now=1000, ttl_seconds=3600)
    assert first is not None
    assert dedupe.claim("r#e#c", now=1030, ttl_seconds=3600) is None  # live lease: someone is sending
    second = dedupe.claim("r#e#c", now=1061, ttl_seconds=3600)  # the first worker died: taken over
    assert second is not None
    dedupe.release("r#e#c", first)  # a late release by the dead worker changes nothing
    dedupe.complete("r#e#c", second, now=1062)
    assert dedupe.claim("r#e#c", now=2000, ttl_seconds=3600) is None  # sent
    assert dedupe.claim("r#e#c", now=1062 + 3600, ttl_seconds=3600) is not None  # expired: TTL lags, code checks
