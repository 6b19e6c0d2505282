"""Two-way sync on the local stack, through the real queue, worker, sweeper and CLI: two PostgreSQL stores
share products; the price field is left to a person. An edit propagates once and its echo is dropped; a
price conflict is listed, escalated to the SNS topic, decided with `syncline conflicts resolve`, and the
decision lands in both stores without a loop."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.adapters.eventbridge import EventBridgePublisher
from syncline.adapters.pg_records import PostgresRecords
from syncline.local.stack import LocalStack
from syncline.models import ChangeNotice
from tests.e2e import helpers
from tests.e2e.helpers import stack_with

QUEUE = "twoway_stores_products"
TWO_STORES = """
[systems.store_a]
kind = "postgres"
secret = "syncline/store-a"
table = "store_a_products"

[systems.store_b]
kind = "postgres"
secret = "syncline/store-b"
table = "store_b_products"

[review]
escalate_after_hours = 0.0003   # about a second, for the test

[[pairs]]
name = "stores-products"
source = "store_a"
target = "store_b"
entity = "product"
direction = "two_way"

[[pairs.field_groups]]
fields = ["price"]
policy = { rule = "manual_review" }
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, TWO_STORES) as local:
        yield local


def run_cli(stack: LocalStack, *argv: str) -> tuple[int, Any]:
    return helpers.run_cli(stack, *argv, "--config", str(stack.config_file))  # type: ignore[attr-defined]


def _stores(stack: LocalStack) -> tuple[PostgresRecords, PostgresRecords]:
    connection = stack.storefront()
    return (
        PostgresRecords("store_a", lambda: connection, "store_a_products"),
        PostgresRecords("store_b", lambda: connection, "store_b_products"),
    )


def _notify(stack: LocalStack, system: str, key: str) -> None:
    """What a store's change source (webhook, outbox) puts on the bus after an edit."""
    publisher = EventBridgePublisher(boto3.client("events"), stack.resources.bus, 100)
    publisher.publish([ChangeNotice(source_system=system, entity="product", key=key, observed_at=datetime.now(UTC))])


def test_an_edit_propagates_once_and_a_price_conflict_is_decided_by_a_person(stack: LocalStack) -> None:
    a, b = _stores(stack)
    assert any(q.id == QUEUE for q in stack.topology.queues)

    # 1. An edit in store A reaches store B; the echo coming back from B costs nothing.
    a.edit("P-1", {"title": "Blue mug", "price": 10})
    _notify(stack, "store_a", "P-1")
    stack.drain(QUEUE)
    assert b.read("P-1").values == {"title": "Blue mug", "price": 10}  # type: ignore[union-attr]
    _notify(stack, "store_b", "P-1")  # B's change source reports our own write
    stack.drain(QUEUE)
    assert a.read("P-1").version == 1 and b.read("P-1").version == 1  # type: ignore[union-attr]

    # 2. Both stores change the price: nobody's value is overwritten, the conflict is listed.
    a.edit("P-1", {"title": "Blue mug", "price": 11})
    b.edit("P-1", {"title": "Blue mug XL", "price": 12})
    _notify(stack, "store_a", "P-1")
    _notify(stack, "store_b", "P-1")  # delivered twice: recorded once
    stack.drain(QUEUE)
    assert a.read("P-1").values["price"] == 11 and b.read("P-1").values["price"] == 12  # type: ignore[union-attr]
    code, listed = run_cli(stack, "conflicts", "list", "--json")
    assert code == 4 and len(listed) == 1
    conflict = listed[0]
    assert conflict["pair"] == "stores-products" and conflict["fields"] == ["price"]
    assert conflict["proposal"] == {"title": "Blue mug XL", "price": 10}  # title settled (B later), price kept

    # 3. The sweeper escalates it once it has waited long enough (SNS topic -> a subscribed queue here).
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    inbox = sqs.create_queue(QueueName="escalation-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.resources.escalation_topic_arn, Protocol="sqs", Endpoint=inbox_arn)
    time.sleep(1.2)  # past escalate_after (about 1 s): the age is what is being tested, not a speed
    swept = stack.run_schedule("sweep_conflicts")
    assert swept.error is None and swept.response["escalated"] == 1
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    text = json.loads(messages[0]["Body"])["Message"]
    assert conflict["id"] in text and "syncline conflicts resolve" in text
    assert stack.run_schedule("sweep_conflicts").response["escalated"] == 0  # once only

    # 4. A person decides: B's price. Both stores end equal; the echoes settle nothing further.
    code, shown = run_cli(stack, "conflicts", "show", conflict["id"])
    assert code == 0 and "* price" in shown
    code, resolved = run_cli(stack, "conflicts", "resolve", conflict["id"], "--take", "store_b", "--json")
    assert code == 0 and resolved["status"] == "resolved"
    assert a.read("P-1").values == b.read("P-1").values == {"title": "Blue mug XL", "price": 12}  # type: ignore[union-attr]
    _notify(stack, "store_a", "P-1")
    _notify(stack, "store_b", "P-1")
    stack.drain(QUEUE)
    versions = (a.read("P-1").version, b.read("P-1").version)  # type: ignore[union-attr]
    assert versions == (3, 2)  # A: edit 1, edit 2, our decision; B: our first write, its edit; no loop
    code, listed = run_cli(stack, "conflicts", "list", "--json")
    assert code == 0 and listed == []


def test_a_decision_on_a_record_that_moved_is_refused(stack: LocalStack) -> None:
    a, b = _stores(stack)
    a.edit("P-2", {"price": 5})
    _notify(stack, "store_a", "P-2")
    stack.drain(QUEUE)
    a.edit("P-2", {"price": 6})
    b.edit("P-2", {"price": 7})
    _notify(stack, "store_b", "P-2")
    stack.drain(QUEUE)
    (conflict,) = run_cli(stack, "conflicts", "list", "--json")[1]
    b.edit("P-2", {"price": 8})  # moves on before anyone decides
    code, _ = run_cli(stack, "conflicts", "resolve", conflict["id"], "--take", "store_a")
    assert code == 4
    assert b.read("P-2").values == {"price": 8} and a.read("P-2").values == {"price": 6}  # type: ignore[union-attr]
    code, _ = run_cli(stack, "conflicts", "resolve", "cf-000000000000", "--take", "store_a")
    assert code == 3


def test_reconcile_covers_the_two_way_pair(stack: LocalStack, tmp_path: Path) -> None:
    # The full scenario is tests/e2e/test_operations_reconcile_twoway.py; pairs not covered: tests/unit.
    code, text = run_cli(stack, "reconcile", "stores-products", "--dry-run", "--report", str(tmp_path / "r.json"))
    assert code == 0 and "consistency 100.0000%" in text
