"""A REST system as a polled source, two-way with a PostgreSQL record table on the local stack: its poller lists the
generic REST sandbox's records on its schedule and publishes the changed ones; the two-way worker reads both sides
and writes where they differ. Writes are counted on both sides, so a loop would show."""

from __future__ import annotations

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
from syncline.topology import rest_poll_schedule_id
from tests.e2e.helpers import stack_with

PIM = """
[systems.pim]
kind = "rest"
secret = "syncline/pim"
base_url = "https://pim.example.com"
auth = { kind = "bearer" }
poll_seconds = 120

[systems.pim.entities.product]
key_field = "sku"
list = { path = "/api/products" }
get = { path = "/api/products/{key}", record_path = "data" }
upsert = { path = "/api/products/{key}", method = "PUT", record_path = "data" }

[systems.pim.entities.product.fields]
sku = "code"
title = "name"
price = { source = "price", transform = "decimal" }
updated_at = "updated_at"

[systems.catalog]
kind = "postgres"
secret = "syncline/catalog"
table = "catalog_records"

[[pairs]]
name = "pim-catalog"
source = "pim"
target = "catalog"
entity = "product"
direction = "two_way"
"""
QUEUE = "twoway_pim_catalog"
PUT = "PUT /api/products/P-1"


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, PIM) as local:
        yield local


def _poll(stack: LocalStack) -> dict[str, Any]:
    invocation = stack.run_schedule(rest_poll_schedule_id("pim"))
    assert invocation.error is None
    response: dict[str, Any] = invocation.response["product"]
    return response


def test_a_polled_rest_record_reaches_the_table_and_an_edit_there_comes_back_once(stack: LocalStack) -> None:
    pim = stack.sandboxes["pim"]
    products = pim.collections["products"].records
    products["P-1"] = {"code": "P-1", "name": "Pump", "price": "12.50", "updated_at": "2026-11-23T10:00:00+00:00"}
    catalog = PostgresRecords("catalog", stack.storefront, "catalog_records")

    # 1. The poller lists the PIM's products: the new one is noticed and lands in the table.
    assert _poll(stack) == {"listed": 1, "changed": 1, "skipped": 0}
    stack.settle()
    copy = catalog.read("P-1")
    assert copy is not None and copy.values == {"title": "Pump", "price": "12.50"}
    assert pim.requests[PUT] == 0  # nothing written back

    # 2. Nothing changed in the PIM: the next poll notices nothing.
    assert _poll(stack)["changed"] == 0

    # 3. An edit in the table (its change source notifies the bus): the PIM gets it in one PUT.
    catalog.edit("P-1", {"title": "Pump", "price": "13.00"})
    EventBridgePublisher(boto3.client("events"), stack.resources.bus, 100).publish(
        [ChangeNotice(source_system="catalog", entity="product", key="P-1", observed_at=datetime.now(UTC))]
    )
    stack.settle()
    assert products["P-1"]["price"] == "13.00" and pim.requests[PUT] == 1

    # 4. The next poll sees our write as a change; the worker recognises it as its own echo and writes nothing.
    assert _poll(stack)["changed"] == 1
    stack.settle()
    assert pim.requests[PUT] == 1 and catalog.read("P-1").version == copy.version + 1  # type: ignore[union-attr]
    assert _poll(stack)["changed"] == 0
    assert stack.settle() == 0
    assert stack.dead_letters(QUEUE) == []
