"""The health report on the local stack with [monitoring] limits per pair: injected lag, errors, backlog and
conflicts waiting for a person, through `syncline status` and the monitor function."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.adapters.conflicts_dynamodb import DynamoConflictStore
from syncline.local.emf import MetricLog
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.review import Conflict, ConflictSide, Status
from tests.conftest import load_event
from tests.e2e import helpers
from tests.e2e.helpers import stack_with
from tests.e2e.test_operations_status import inject_lag_errors_and_backlog

PAIR = "erp-storefront-inventory"
# Loose defaults, a strict pair: every verdict below comes from the pair's section.
MONITORING = f"""
[monitoring]
max_lag_seconds = 100000
max_errors_per_hour = 50
max_pending_conflicts = 50
max_backlog = 5000

[monitoring.pairs.{PAIR}]
max_lag_seconds = 600
max_errors_per_hour = 0
max_pending_conflicts = 1
max_backlog = 0
"""


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, MONITORING) as local:
        yield local


def status(stack: LocalStack, *flags: str) -> tuple[int, Any]:
    return helpers.run_cli(stack, "status", "--json", *flags, "--config", str(stack.config_file))  # type: ignore[attr-defined]


def _conflict(number: int, status: Status, created: datetime) -> Conflict:
    sides = (
        ConflictSide("sage300", {"on_hand": 1}, created, 1),
        ConflictSide("storefront", {"on_hand": 2}, created, 1),
    )
    return Conflict(
        f"cf-e2e{number}",
        PAIR,
        "inventory_level",
        f"SKU{number}|main",
        sides,
        None,
        ("on_hand",),
        {},
        (),
        status,
        created,
        created,
    )


def test_per_pair_limits_turn_injected_lag_errors_backlog_and_conflicts_into_a_verdict(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i}", f"Item {i}") for i in range(3)] + [("SKU-NEG", "Negative")])
    erp.set_stock([Stock(f"SKU{i}", "1", Decimal(10 + i)) for i in range(3)])
    stack.poll_erp()
    stack.drain()

    code, report = status(stack)
    assert (code, report["level"], report["reasons"]) == (0, "healthy", [])
    pair = report["pairs"][0]
    assert pair["thresholds"] == {
        "max_lag_seconds": 600,
        "max_errors_per_hour": 0,
        "max_pending_conflicts": 1,
        "max_backlog": 0,
        "max_dlq": 0,
    }
    assert (pair["conflicts_pending"], pair["conflicts_escalated"], report["conflicts"]) == (
        0,
        0,
        {"pending": 0, "escalated": 0},
    )

    # Conflicts: one pending is within the pair's limit of one; a second (escalated) is over it.
    dynamodb, table = boto3.client("dynamodb"), stack.resources.table
    store = DynamoConflictStore(dynamodb, table)
    now = datetime.now(UTC)
    store.add(_conflict(1, "pending", now - timedelta(minutes=30)))
    assert status(stack)[0] == 0
    store.add(_conflict(2, "escalated", now - timedelta(hours=6)))
    store.add(_conflict(3, "resolved", now - timedelta(hours=9)))  # closed: not counted
    code, report = status(stack)
    assert (code, report["level"]) == (4, "degraded")
    assert report["reasons"] == [
        f"{PAIR}: 2 conflict(s) waiting for a person, 1 escalated (limit 1; `syncline conflicts list --pair {PAIR}`)"
    ]
    pair = report["pairs"][0]
    assert (pair["conflicts_pending"], pair["conflicts_escalated"]) == (1, 1)
    assert pair["oldest_conflict_age_seconds"] >= 6 * 3600

    # Lag, errors and backlog: a dead letter, the last sync two hours ago, a change left waiting.
    inject_lag_errors_and_backlog(stack)

    code, report = status(stack)
    assert (code, report["level"]) == (4, "unhealthy")
    reasons = [reason.split(" (")[0] for reason in report["reasons"]]
    assert reasons == [
        f"{PAIR}: 1 message(s) waiting and nothing synced for {report['pairs'][0]['lag_seconds']:.0f} s",
        "sync_storefront: 1 failure(s) in the last hour",
        f"{PAIR}: 2 conflict(s) waiting for a person, 1 escalated",
        "sync_storefront: 1 message(s) in the DLQ",
        "sync_storefront: backlog 1 above 0",
    ]
    # The same figures under the loose defaults would only be degraded (the DLQ): the pair's section decided.
    code, relaxed = status(
        stack, "--max-lag", "100000", "--max-errors", "5", "--max-conflicts", "5", "--max-backlog", "5"
    )
    assert (code, relaxed["level"], relaxed["reasons"]) == (
        4,
        "degraded",
        ["sync_storefront: 1 message(s) in the DLQ (`syncline dlq list`)"],
    )
    code, text = helpers.run_cli(stack, "status", "--quick", "--config", str(stack.config_file))  # type: ignore[attr-defined]
    assert code == 4
    assert text.startswith("Syncline is UNHEALTHY\n")
    assert f"  ! {PAIR}: 2 conflict(s) waiting for a person, 1 escalated" in text
    assert "· conflicts 1 pending, 1 escalated" in text

    # The monitor reaches the same verdict with the same limits and publishes the conflicts per pair.
    log = MetricLog(stack.functions["monitor"].log_file)
    invocation = stack.functions["monitor"].invoke(load_event("monitor_scheduled.json"))
    assert invocation.error is None
    assert (invocation.response["level"], invocation.response["pairs"][0]["thresholds"]["max_backlog"]) == (
        "unhealthy",
        0,
    )
    published = log.read()
    assert (published["ConflictsPending"], published["ConflictsEscalated"], published["HealthLevel"]) == ([1], [1], [2])
