"""Sage 300 spare-part stock -> a Fracttal CMMS warehouse on the local stack: the ERP poller, the sync worker
and the Fracttal connector over real HTTP with OAuth2 tokens shared through the state table."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import stack_with

CMMS = """
[systems.cmms]
kind = "fracttal"
secret = "syncline/fracttal"
token_url = "https://app.fracttal.com/oauth/token"
warehouse_code = "MAIN-WH"

[[pairs]]
name = "erp-cmms-spares"
source = "sage300"
target = "cmms"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
[pairs.filters]
sku_prefixes = ["SP-"]
locations = ["1"]
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, CMMS) as local:
        yield local


def test_spare_part_stock_reaches_the_cmms_warehouse_and_nothing_else_does(stack: LocalStack) -> None:
    cmms = stack.sandboxes["cmms"]
    for code in ("SP-100", "SP-200"):
        cmms.add_item("MAIN-WH", code, stock=0, unit_cost_stock=4.5)
    erp = stack.erp()
    erp.add_items([("SP-100", "Bearing"), ("SP-200", "Belt"), ("SP-300", "Not in the CMMS"), ("FG-1", "Product")])
    erp.set_stock(
        [
            Stock("SP-100", "1", Decimal(7)),
            Stock("SP-100", "2", Decimal(99)),  # another location: not this pair's business
            Stock("SP-200", "1", Decimal(3)),
            Stock("SP-300", "1", Decimal(5)),
            Stock("FG-1", "1", Decimal(40)),
        ]
    )
    stack.poll_erp()
    stack.settle()
    assert cmms.stock("MAIN-WH", "SP-100") == 7 and cmms.stock("MAIN-WH", "SP-200") == 3
    assert cmms.tokens.issued_count == 1  # one token for the whole run, shared through TK#cmms

    erp.set_stock([Stock("SP-100", "1", Decimal(6))])
    stack.poll_erp()
    stack.settle()
    assert cmms.stock("MAIN-WH", "SP-100") == 6
    assert [update for update in cmms.updates if "FG-1" in str(update)] == []
    assert stack.dead_letters("sync_cmms") == []


def test_the_scheduled_refresher_keeps_the_shared_token_ahead_of_expiry(stack: LocalStack) -> None:
    cmms = stack.sandboxes["cmms"]
    assert any(s.id == "refresh_tokens" for s in stack.topology.schedules)

    def fetched() -> int:
        invocation = stack.run_schedule("refresh_tokens")
        assert invocation.error is None
        return int(invocation.response["systems"]["cmms"]["fetched"])

    cmms.tokens.lifetime = 600  # ten minutes: less than the twenty the refresher keeps ahead
    assert [fetched(), fetched()] == [1, 1]  # each run renews a token that would expire too soon
    cmms.tokens.lifetime = 3600
    assert [fetched(), fetched()] == [1, 0]  # an hour left: nothing to do
    assert cmms.tokens.issued_count == 3
    # The workers use the refresher's token: syncing spare parts fetches none.
    cmms.add_item("MAIN-WH", "SP-100", stock=0)
    stack.erp().add_items([("SP-100", "Bearing")])
    stack.erp().set_stock([Stock("SP-100", "1", Decimal(2))])
    stack.poll_erp()
    stack.settle()
    assert cmms.stock("MAIN-WH", "SP-100") == 2 and cmms.tokens.issued_count == 3
