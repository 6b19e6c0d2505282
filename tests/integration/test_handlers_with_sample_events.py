"""Each handler invoked directly with its sample event from events/, against the local stack's services."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.conftest import load_event

QUEUE = "sync_storefront"


def test_scheduled_event_runs_the_poller(stack: LocalStack) -> None:
    stack.erp().add_items([("A1-100", "Widget")])
    stack.erp().set_stock([Stock("A1-100", "1", Decimal(3))])
    invocation = stack.functions["poller"].invoke(load_event("poller_scheduled.json"))
    assert invocation.error is None
    assert [s["emitted"] for s in invocation.response["streams"]] == [1, 1]


def test_change_notices_event_syncs_and_reports_no_failures(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([("A1-100", "Widget"), ("A1-200", "Gadget")])
    erp.set_stock(
        [Stock("A1-100", "1", Decimal(5)), Stock("A1-100", "2", Decimal(6)), Stock("A1-200", "3", Decimal(7))]
    )
    invocation = stack.functions[QUEUE].invoke(load_event("sync_worker_change_notices.json"))
    assert invocation.response == {"batchItemFailures": []}
    rows = stack.storefront().execute("SELECT sku, location, on_hand FROM inventory_levels ORDER BY 1, 2").fetchall()
    assert rows == [("A1-100", "east", Decimal(6)), ("A1-100", "main", Decimal(5)), ("A1-200", "west", Decimal(7))]


def test_redriven_letter_syncs_and_garbage_is_parked_not_retried(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([("A1-100", "Widget")])
    erp.set_stock([Stock("A1-100", "1", Decimal(5))])  # the cause was fixed in the ERP
    invocation = stack.functions[QUEUE].invoke(load_event("sync_worker_redrive_and_garbage.json"))
    assert invocation.response == {"batchItemFailures": []}
    assert stack.storefront().execute("SELECT on_hand FROM inventory_levels").fetchall() == [(Decimal(5),)]
    parked = stack.dead_letters(QUEUE)
    assert [m["body"]["body"] for m in parked] == ["this is not a notice"]
    assert parked[0]["attributes"]["syncline-stage"] == "parse"


def test_erp_unreachable_reports_every_record_as_a_batch_item_failure(stack: LocalStack) -> None:
    import boto3

    secret = stack.config.systems["sage300"].secret
    broken: dict[str, Any] = {
        "engine": "mssql",
        "host": "127.0.0.1",
        "port": 9,
        "database": "SAMLTD",
        "user": "syncline",
        "password": "x",
        "login_timeout_seconds": 1,
    }
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps(broken))
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    invocation = stack.functions[QUEUE].invoke(load_event("sync_worker_change_notices.json"))
    assert invocation.response == {"batchItemFailures": [{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"}]}
    log = (stack.work_dir / "logs" / "functions.log").read_text()
    assert "cannot reach SQL Server at 127.0.0.1:9/SAMLTD" in log
    assert '"password"' not in log and "x@" not in log
