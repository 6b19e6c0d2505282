"""`syncline replay` on the local stack: archived notices reach the sync queue again and sync idempotently."""

from __future__ import annotations

from decimal import Decimal

import boto3

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import count_storefront_writes, expected_levels, storefront_levels
from tests.e2e.helpers import run_cli as run


def _waiting(stack: LocalStack) -> int:
    url = stack.resources.queues["sync_storefront"].url
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_replay_brings_lost_notices_back_and_applies_nothing_twice(stack: LocalStack) -> None:
    # Given a synced pair
    erp = stack.erp()
    erp.add_items([(f"SKU{i:04d}", f"Item {i}") for i in range(20)])
    erp.set_stock([Stock(f"SKU{i:04d}", loc, Decimal(i + 1)) for i in range(20) for loc in "123"])
    stack.poll_erp()
    first = sum(outcome.received for outcome in stack.drain())
    assert first > 0

    # ...and a change whose notices were lost before the worker saw them
    erp.set_stock([Stock("SKU0001", "1", Decimal(50))])
    stack.poll_erp()
    lost = _waiting(stack)
    assert lost > 0
    boto3.client("sqs").purge_queue(QueueUrl=stack.resources.queues["sync_storefront"].url)
    assert storefront_levels(stack)[("SKU0001", "main")] == (Decimal(2), Decimal(2))
    writes = count_storefront_writes(stack)

    # When the window is replayed from the archive
    code, report = run(stack, "replay", "--from", "1h", "--json")
    assert code == 0
    assert report["state"] == "COMPLETED"
    assert report["replay"]["rules"] == [rule.name for rule in stack.topology.rules]

    # Then every archived notice is back in the sync queue, and syncing it writes only the lost change
    assert _waiting(stack) == first + lost
    stack.drain()
    assert storefront_levels(stack) == expected_levels(stack)
    assert storefront_levels(stack)[("SKU0001", "main")] == (Decimal(50), Decimal(50))
    assert writes() == 1

    # And a second replay of the same window applies nothing
    assert run(stack, "replay", "--from", "1h", "--json")[0] == 0
    assert _waiting(stack) == first + lost
    stack.drain()
    assert writes() == 1
    assert stack.dead_letters("sync_storefront") == []


def test_replay_refuses_bad_windows_and_unknown_sources_and_dry_run_starts_nothing(stack: LocalStack) -> None:
    assert run(stack, "replay", "--from", "1h", "--to", "2h")[0] == 2  # reversed
    code, _ = run(stack, "replay", "--from", "1h", "--source", "nowhere")
    assert code == 3
    code, report = run(stack, "replay", "--from", "1h", "--source", "sage300", "--dry-run", "--json")
    assert (code, report["state"], report["replay"]["archive"]) == (0, None, "syncline-notices")
    assert boto3.client("events").list_replays()["Replays"] == []
