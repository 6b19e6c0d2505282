"""Notification rules on the local stack: ERP stock crossing its reorder point puts a StockLevelCrossed event
on the bus, the ``notify`` rule takes it to the notifier, and the alerts sandbox (Slack, PagerDuty over real
HTTP) receives one templated message; a redelivered event alerts no one twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.local.sage300 import Stock
from syncline.local.sandboxes.alerts import AlertsSandbox
from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

NOTIFICATIONS = """
[monitoring.stock]
enabled = true
reorder_points = { "BOLT-1" = 5 }

[alert_channels.ops-slack]
kind = "slack"
secret = "syncline/alerts/ops-slack"

[alert_channels.on-call]
kind = "pagerduty"
secret = "syncline/alerts/pagerduty"

[[notifications]]
name = "low-stock"
event = "StockLevelCrossed"
when = [{ field = "kind", equals = "below_reorder_point" }]
channels = ["ops-slack"]
title = "Reorder {sku}"
message = "{sku} at {location}: {available:.0f} left (reorder point {reorder_point})"

[[notifications]]
name = "out-of-stock"
event = "StockLevelCrossed"
when = [{ field = "kind", equals = "out_of_stock" }]
channels = ["on-call"]
severity = "error"
message = "{sku} is out of stock at {location}"
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, NOTIFICATIONS) as local:
        yield local


def test_a_stock_crossing_alerts_slack_once_and_a_redelivery_alerts_no_one(stack: LocalStack) -> None:
    alerts = stack.alerts
    assert isinstance(alerts, AlertsSandbox)
    events, sqs = boto3.client("events"), boto3.client("sqs")
    # A copy of every crossing, to put the very same event on the bus again (an at-least-once redelivery).
    inbox = sqs.create_queue(QueueName="crossings")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="crossings",
        EventBusName=stack.resources.bus,
        EventPattern=json.dumps({"detail-type": ["StockLevelCrossed"]}),
    )
    events.put_targets(Rule="crossings", EventBusName=stack.resources.bus, Targets=[{"Id": "inbox", "Arn": arn}])
    erp = stack.erp()
    erp.add_items([("BOLT-1", "Bolt")])

    def move_to(quantity: int) -> None:
        erp.set_stock([Stock("BOLT-1", "1", Decimal(quantity))])
        stack.poll_erp()
        stack.settle()

    move_to(10)  # first sight: no crossing
    assert alerts.slack_messages == []
    move_to(4)
    [message] = alerts.slack_messages
    assert message["text"] == "[warning] BOLT-1 at main: 4 left (reorder point 5)"
    assert message["blocks"][0]["text"]["text"].endswith("Reorder BOLT-1")
    assert alerts.pagerduty_events == []

    [copy] = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=inbox, ReceiptHandle=copy["ReceiptHandle"])
    event = json.loads(copy["Body"])
    events.put_events(
        Entries=[
            {
                "EventBusName": stack.resources.bus,
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )
    assert stack.settle() >= 1  # the notifier received it again ...
    assert len(alerts.slack_messages) == 1  # ... and alerted no one twice

    move_to(3)  # still below: not a crossing, no message
    assert len(alerts.slack_messages) == 1

    move_to(0)  # out of stock: the other rule pages on-call through PagerDuty
    [page] = alerts.pagerduty_events
    assert page["payload"]["summary"] == "BOLT-1 is out of stock at main"
    assert page["payload"]["severity"] == "error"
    assert len(alerts.slack_messages) == 1
    assert stack.dead_letters("notify") == []
    assert stack.functions["notifier"].errors == 0
    logs = stack.functions["notifier"].log_file.read_text()
    assert "notifications sent" in logs
    assert not any(hook in logs for hook in alerts.slack_hooks)  # the webhook URL is a credential
