"""`syncline backfill` on the local stack: resumable from its job record, --since loads only recent rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from syncline.adapters.jobs import DynamoJobStore
from syncline.adapters.storefront_pg import PostgresStorefront
from syncline.cli import main
from syncline.erp.sage300 import Sage300Reader
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.ops.jobs import new_job, run_backfill
from syncline.ops.wiring import OpsContext, resolve_target
from syncline.sync import PairContext
from tests.e2e.helpers import LOCATION_MAP, expected_levels, storefront_levels
from tests.e2e.helpers import run_cli as run

PAIR = "erp-storefront-inventory"
LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _seed(stack: LocalStack, items: int) -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i:04d}", f"Item {i}") for i in range(items)], at=LONG_AGO)
    erp.set_stock([Stock(f"SKU{i:04d}", loc, Decimal(i)) for i in range(items) for loc in "123"], at=LONG_AGO)


class LoaderDies:
    """The storefront's bulk loader, dying on its third page (after two pages were loaded and recorded)."""

    def __init__(self, target: PostgresStorefront) -> None:
        self.target, self.calls = target, 0

    def bulk_load(self, rows: Any) -> int:
        self.calls += 1
        if self.calls == 3:
            raise ConnectionError("storefront connection lost")
        return self.target.bulk_load(rows)


def test_a_crashed_backfill_resumes_from_its_job_record_and_completes(stack: LocalStack) -> None:
    _seed(stack, 50)  # 150 rows
    stack.erp().set_stock([Stock("SKU0049", "QC", Decimal(1))], at=LONG_AGO)  # one row no mapping takes
    ops = OpsContext(resolve_target(endpoint_url=stack.moto.endpoint))
    jobs = DynamoJobStore(ops.dynamodb, ops.table)
    pair = PairContext(PAIR, "sage300", LOCATION_MAP, ZoneInfo("UTC"))
    erp, store = ops.connection("sage300", read_only=True), ops.connection("storefront", read_only=False)
    job = new_job(PAIR, since=None, page_size=40)
    with pytest.raises(ConnectionError):
        run_backfill(
            job,
            source=Sage300Reader(lambda: erp),
            target=LoaderDies(PostgresStorefront(lambda: store)),
            jobs=jobs,
            pair=pair,
        )
    recorded = jobs.load(job.id)
    assert recorded is not None
    assert (recorded.status, recorded.pages, recorded.read, recorded.loaded) == ("failed", 2, 80, 80)
    assert "connection lost" in (recorded.error or "")
    assert len(storefront_levels(stack)) == 80
    ops.close()

    code, finished = run(stack, "backfill", PAIR, "--resume", job.id, "--json")
    assert code == 4  # completed, with one rejected row to fix in the ERP
    assert (finished["status"], finished["read"], finished["loaded"], finished["rejected"]) == (
        "completed",
        151,
        150,
        1,
    )
    assert finished["rejects"][0][0] == "SKU0049|QC"
    assert storefront_levels(stack) == expected_levels(stack)
    # A completed job resumed again does nothing.
    assert run(stack, "backfill", PAIR, "--resume", job.id, "--json")[1]["read"] == 151
    assert main(["backfill", PAIR, "--resume", "bf-no-such-job", "--endpoint-url", stack.moto.endpoint]) == 3


def test_backfill_since_loads_only_rows_changed_since(stack: LocalStack) -> None:
    _seed(stack, 10)
    stack.erp().set_stock([Stock("SKU0003", "1", Decimal(33)), Stock("SKU0007", "2", Decimal(77))])  # now
    code, job = run(stack, "backfill", PAIR, "--since", "2026-06-01T00:00Z", "--json")
    assert (code, job["status"], job["read"], job["loaded"]) == (0, "completed", 30, 2)
    assert storefront_levels(stack) == {
        ("SKU0003", "main"): (Decimal(33), Decimal(33)),
        ("SKU0007", "east"): (Decimal(77), Decimal(77)),
    }
