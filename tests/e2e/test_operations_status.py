"""`syncline status` on the local stack reflects injected lag, errors and backlog; the monitor publishes the
same report; the daily digest reads the day from the same stack (conflicts and per-pair limits:
test_operations_health_thresholds.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3

from syncline.config import DEFAULT_PATH
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.conftest import load_event
from tests.e2e.helpers import run_cli as run


def inject_lag_errors_and_backlog(stack: LocalStack) -> None:
    """A dead letter (SKU-NEG is in the ERP, stocked -1), every record's last sync two hours ago, and a change
    of SKU1 polled but not drained (it waits on the queue)."""
    erp = stack.erp()
    erp.set_stock([Stock("SKU-NEG", "1", Decimal(-1))])
    stack.poll_erp()
    stack.drain()
    dynamodb, table = boto3.client("dynamodb"), stack.resources.table
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    for item in dynamodb.scan(TableName=table)["Items"]:
        if item["pk"]["S"].startswith("ST#"):
            dynamodb.update_item(
                TableName=table,
                Key={"pk": item["pk"]},
                UpdateExpression="SET synced_at = :at",
                ExpressionAttributeValues={":at": {"S": two_hours_ago}},
            )
    erp.set_stock([Stock("SKU1", "1", Decimal(50))])
    stack.poll_erp()  # not drained: one message waits


def test_status_is_healthy_after_a_sync_and_unhealthy_with_lag_errors_and_backlog(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i}", f"Item {i}") for i in range(5)] + [("SKU-NEG", "Negative")])
    erp.set_stock([Stock(f"SKU{i}", "1", Decimal(i)) for i in range(5)])
    stack.poll_erp()
    stack.drain()

    code, healthy = run(stack, "status", "--json")
    assert (code, healthy["level"], healthy["reasons"]) == (0, "healthy", [])
    pair = healthy["pairs"][0]
    assert pair["lag_seconds"] == 0
    assert pair["last_sync_at"] is not None and pair["last_change_detected"] is not None
    assert healthy["queues"][0] | {"dlq_oldest_age_seconds": None} == {
        "queue": "sync_storefront",
        "waiting": 0,
        "in_flight": 0,
        "delayed": 0,
        "backlog": 0,
        "dlq": 0,
        "dlq_oldest_age_seconds": None,
        "errors_last_hour": 0,
    }

    # Injected: a dead letter (error), the last sync two hours ago (lag), and changes left undelivered (backlog).
    inject_lag_errors_and_backlog(stack)

    code, report = run(stack, "status", "--json", "--max-errors", "0")
    assert (code, report["level"]) == (4, "unhealthy")
    queue, pair = report["queues"][0], report["pairs"][0]
    assert (queue["backlog"], queue["dlq"], queue["errors_last_hour"]) == (1, 1, 1)
    assert pair["lag_seconds"] >= 7000
    assert len(report["reasons"]) == 3  # lag, errors per hour, DLQ
    # Within the limits it is only degraded (the DLQ still needs a look).
    code, report = run(stack, "status", "--json", "--max-lag", "100000")
    assert (code, report["level"]) == (4, "degraded")


def test_the_monitor_function_publishes_the_same_report_as_metrics_and_stores_it(stack: LocalStack) -> None:
    from syncline.local.emf import MetricLog

    erp = stack.erp()
    erp.add_items([("SKU-OK", "Fine"), ("SKU-NEG", "Negative")])
    erp.set_stock([Stock("SKU-OK", "1", Decimal(2)), Stock("SKU-NEG", "1", Decimal(-1))])
    stack.poll_erp()
    stack.drain()
    log = MetricLog(stack.functions["monitor"].log_file)

    invocation = stack.functions["monitor"].invoke(load_event("monitor_scheduled.json"))
    assert invocation.error is None
    report = invocation.response
    assert (report["level"], report["queues"][0]["dlq"], report["queues"][0]["errors_last_hour"]) == ("degraded", 1, 1)
    published = log.read()
    assert (published["HealthLevel"], published["DlqDepth"], published["Backlog"]) == ([1], [1], [0])
    assert (published["ConflictsPending"], published["ConflictsEscalated"]) == ([0], [0])
    assert report["conflicts"] == {"pending": 0, "escalated": 0}
    stored = boto3.client("dynamodb").get_item(TableName=stack.resources.table, Key={"pk": {"S": "HEALTH#latest"}})
    assert json.loads(stored["Item"]["report"]["S"]) == report
    # The CLI reads the same figures and reaches the same verdict.
    assert run(stack, "status", "--json", "--quick")[1]["level"] == "degraded"


def test_the_daily_digest_reads_the_days_syncs_failures_and_consistency_and_sends_an_email(
    stack: LocalStack, tmp_path: Path
) -> None:
    from syncline.local.lambda_runtime import LocalFunction
    from syncline.topology import FunctionSpec

    erp = stack.erp()
    erp.add_items([("SKU-A", "A"), ("SKU-B", "B"), ("SKU-NEG", "Negative")])
    erp.set_stock(
        [Stock("SKU-A", "1", Decimal(2)), Stock("SKU-B", "2", Decimal(3)), Stock("SKU-NEG", "1", Decimal(-4))]
    )
    stack.poll_erp()
    stack.drain()
    assert stack.run_schedule("reconcile").error is None
    assert stack.run_schedule("monitor").error is None

    # The digest function as the lead wires it (topology): read-only table access, DLQs peeked.
    config = tmp_path / "digest.toml"
    config.write_text(
        DEFAULT_PATH.read_text()
        + '\n[monitoring.digest]\nsender = "syncline@example.com"\nrecipients = ["ops@example.com"]\n'
    )
    boto3.client("ses").verify_email_identity(EmailAddress="syncline@example.com")
    spec = FunctionSpec(id="digest", handler="handlers.digest.handler", table_access="read", inspects_queues=True)
    digest = LocalFunction(
        spec,
        {**stack.resources.environment(spec), "SYNCLINE_CONFIG": str(config)},
        stack.functions["monitor"].log_file,
    )
    event = load_event("monitor_scheduled.json") | {"time": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    invocation = digest.invoke(event)
    assert invocation.error is None, invocation.error
    response = invocation.response
    assert response["sent"] is True and response["message_id"]
    document = response["digest"]
    (pair,) = document["pairs"]
    assert (pair["pair"], pair["synced"], pair["consistency"], pair["compared"]) == (
        "erp-storefront-inventory",
        2,
        1.0,
        2,
    )
    assert (document["level"], document["dead_letters"], document["dlq_depth"]) == (
        "degraded",
        1,
        {"sync_storefront": 1},
    )
    assert document["top_errors"] == [{"error": "negative quantity: QTYONHAND = #", "count": 1}]
