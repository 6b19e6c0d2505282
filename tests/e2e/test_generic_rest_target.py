"""Sage 300 stock -> a POS declared as a generic REST system, on the local stack: the ERP poller, the sync worker
and the REST connector over real HTTP to the generic REST sandbox, with an API key from the system's secret and
the JSON body built from the declared field mapping."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

POS = """
[systems.pos]
kind = "rest"
secret = "syncline/pos"
base_url = "https://pos.example.com"
auth = { kind = "api_key", header = "X-API-Key" }

[systems.pos.entities.inventory_level]
key_field = "key"
get = { path = "/api/stock/{key}", record_path = "data" }
upsert = { path = "/api/stock/{key}", method = "PUT", record_path = "data" }

[systems.pos.entities.inventory_level.fields]
key = "id"
sku = "item.sku"
location = "store"
available = { source = "qty", transform = "decimal" }
source_version = { source = "version", transform = "int" }

[[pairs]]
name = "erp-pos-stock"
source = "sage300"
target = "pos"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
[pairs.filters]
locations = ["1"]
"""
QUEUE = "sync_pos"
PUT = "PUT /api/stock/{}"


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, POS) as local:
        yield local


def _stock(stack: LocalStack, rows: list[Stock]) -> None:
    erp = stack.erp()
    erp.add_items([(item, f"Item {item}") for item in sorted({row.item for row in rows})])
    erp.set_stock(rows)


def test_an_erp_stock_change_reaches_the_pos_in_the_declared_shape(stack: LocalStack) -> None:
    pos = stack.sandboxes["pos"]
    _stock(stack, [Stock("SKU-1", "1", Decimal(7), committed=Decimal(2)), Stock("SKU-1", "2", Decimal(9))])
    stack.poll_erp()
    stack.settle()
    records = pos.collections["stock"].records
    assert set(records) == {"SKU-1|main"}  # location 2 is not this pair's business
    record = records["SKU-1|main"]
    assert record["item"] == {"sku": "SKU-1"} and record["store"] == "main"
    assert Decimal(record["qty"]) == 5 and isinstance(record["version"], int)
    assert pos.requests[PUT.format("SKU-1%7Cmain")] == 1

    # A later change is sent once; the same stock again is not sent at all (state cache).
    stack.erp().set_stock([Stock("SKU-1", "1", Decimal(4), committed=Decimal(2))])
    stack.poll_erp()
    stack.settle()
    assert Decimal(records["SKU-1|main"]["qty"]) == 2
    assert pos.requests[PUT.format("SKU-1%7Cmain")] == 2
    assert stack.dead_letters(QUEUE) == []


def test_a_level_the_pos_holds_at_a_newer_version_is_not_overwritten(stack: LocalStack) -> None:
    pos = stack.sandboxes["pos"]
    pos.collections["stock"].records["SKU-2|main"] = {"id": "SKU-2|main", "qty": "99", "version": 2**62}
    _stock(stack, [Stock("SKU-2", "1", Decimal(3))])
    stack.poll_erp()
    stack.settle()
    assert pos.collections["stock"].records["SKU-2|main"]["qty"] == "99"
    assert pos.requests[PUT.format("SKU-2%7Cmain")] == 0
    assert stack.dead_letters(QUEUE) == []


def test_a_5xx_is_retried_until_the_level_lands(stack: LocalStack) -> None:
    pos = stack.sandboxes["pos"]
    pos.faults.add("status", times=2, status=503, path=r"^/api/stock/")
    _stock(stack, [Stock("SKU-3", "1", Decimal(6))])
    stack.poll_erp()
    stack.settle()
    assert pos.faults.injected["status"] == 2
    assert Decimal(pos.collections["stock"].records["SKU-3|main"]["qty"]) == 6
    assert stack.dead_letters(QUEUE) == []


def test_a_level_the_pos_refuses_goes_to_the_dlq_with_the_reason_and_the_others_land(stack: LocalStack) -> None:
    pos = stack.sandboxes["pos"]
    pos.collections["stock"].required = ("price",)  # this POS insists on a field the pair does not send
    _stock(stack, [Stock("SKU-4", "1", Decimal(1))])
    stack.poll_erp()
    stack.settle()
    assert pos.collections["stock"].records == {}
    assert pos.requests[PUT.format("SKU-4%7Cmain")] == 1  # a 422 is not retried
    (letter,) = stack.dead_letters(QUEUE)
    assert letter["body"]["stage"] == "write" and letter["body"]["notice"]["key"] == "SKU-4|1"
    assert "HTTP 422" in letter["body"]["reason"] and "missing price" in letter["body"]["reason"]

    # Once the POS accepts it, the next change of the record lands (it was never recorded as synced).
    pos.collections["stock"].required = ()
    stack.erp().set_stock([Stock("SKU-4", "1", Decimal(2))])
    stack.poll_erp()
    stack.settle()
    assert Decimal(pos.collections["stock"].records["SKU-4|main"]["qty"]) == 2


def test_a_pos_down_longer_than_the_clients_retries_is_retried_by_the_queue(stack: LocalStack) -> None:
    pos = stack.sandboxes["pos"]
    pos.faults.add("status", times=5, status=502, path=r"^/api/stock/")  # every attempt of the first delivery
    _stock(stack, [Stock("SKU-5", "1", Decimal(8))])
    stack.poll_erp()
    outcomes = stack.drain(QUEUE, idle_rounds=4)  # waits out the redelivery after the failed batch
    assert pos.faults.injected["status"] == 5
    assert any(outcome.failed for outcome in outcomes)  # the first delivery failed and was left to SQS
    assert Decimal(pos.collections["stock"].records["SKU-5|main"]["qty"]) == 8
    assert stack.dead_letters(QUEUE) == []
