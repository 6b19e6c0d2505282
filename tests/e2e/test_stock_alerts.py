"""Business stock alerts on the local stack: ERP stock crossing a reorder point, running out and coming back
puts one StockLevelCrossed event each on the bus (a rule takes them to a queue here), only on crossings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

ALERTS = """
[monitoring.stock]
enabled = true
reorder_points = { "BOLT-1" = 5 }
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, ALERTS) as local:
        yield local


def test_stock_crossings_are_published_once_each_as_events(stack: LocalStack) -> None:
    events, sqs = boto3.client("events"), boto3.client("sqs")
    inbox = sqs.create_queue(QueueName="stock-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="stock-alerts",
        EventBusName=stack.resources.bus,
        EventPattern=json.dumps({"detail-type": ["StockLevelCrossed"]}),
    )
    events.put_targets(Rule="stock-alerts", EventBusName=stack.resources.bus, Targets=[{"Id": "inbox", "Arn": arn}])
    erp = stack.erp()
    erp.add_items([("BOLT-1", "Bolt")])

    def move_to(quantity: int) -> list[str]:
        erp.set_stock([Stock("BOLT-1", "1", Decimal(quantity))])
        stack.poll_erp()
        stack.settle()
        received = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
        for message in received:
            sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"])["detail"]["data"]["kind"] for m in received]

    assert move_to(10) == []  # first sight of the level: a backfill pages no one
    assert move_to(4) == ["below_reorder_point"]
    assert move_to(3) == []  # still below: not a crossing
    assert move_to(0) == ["out_of_stock"]
    assert move_to(8) == ["back_in_stock"]
    assert stack.dead_letters("sync_storefront") == []


STORE = """
[monitoring.stock]
enabled = true
disable_listing_when_out = true

[systems.store_a]
kind = "shopify"
secret = "syncline/store-a"
shop = "store-a.myshopify.com"
[systems.store_a.locations]
main = "1001"

[[pairs]]
name = "erp-store-a"
source = "sage300"
target = "store_a"
entity = "inventory_level"
locations = { "1" = "main" }
"""


def test_a_sku_out_of_stock_is_unlisted_in_the_store_and_listed_again_when_back(
    services: tuple[Any, Any], tmp_path: Path
) -> None:
    with stack_with(services, tmp_path, STORE) as stack:
        stack.seed_shopify("store_a", ["BOLT-1"])
        sandbox = stack.sandboxes["store_a"]
        product = next(pid for pid, data in sandbox.products.items() if data["title"] == "Product BOLT-1")
        erp = stack.erp()
        erp.add_items([("BOLT-1", "Bolt")])

        def move_to(quantity: int) -> str:
            erp.set_stock([Stock("BOLT-1", "1", Decimal(quantity))])
            stack.poll_erp()
            stack.settle()
            return str(sandbox.products[product]["status"])

        assert move_to(6) == "ACTIVE"
        assert move_to(0) == "DRAFT"  # out at every listing location: unlisted, not deleted
        assert move_to(3) == "ACTIVE"  # back in stock: listed again
        assert stack.dead_letters("sync_store_a") == []
