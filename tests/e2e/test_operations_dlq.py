"""`syncline dlq` on the local stack: a poisoned record is listed with its reason, fixed, redriven and synced."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import boto3
import pytest

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.ops.dlq import DlqFilter, RawMessage, peek, redrive
from syncline.ops.wiring import OpsContext, resolve_target
from tests.e2e.helpers import run_cli as run
from tests.e2e.helpers import storefront_levels

QUEUE = "sync_storefront"


def _poison(stack: LocalStack) -> None:
    """Two good items and one with a negative quantity (the worker parks it in the DLQ)."""
    erp = stack.erp()
    erp.add_items([("SKU-A", "A"), ("SKU-B", "B"), ("SKU-NEG", "Negative")])
    erp.set_stock(
        [Stock("SKU-A", "1", Decimal(4)), Stock("SKU-B", "2", Decimal(7)), Stock("SKU-NEG", "1", Decimal(-5))]
    )
    stack.poll_erp()
    stack.drain()


def test_poisoned_record_is_listed_fixed_redriven_and_synced(stack: LocalStack) -> None:
    _poison(stack)
    assert ("SKU-NEG", "main") not in storefront_levels(stack)

    code, listed = run(stack, "dlq", "list", "--json")
    assert code == 4  # something needs attention
    assert [(m["keys"], m["stage"], m["source"]) for m in listed] == [(["SKU-NEG|1"], "map", "sage300")]
    assert "negative quantity" in listed[0]["reason"]
    # Listing consumed nothing: a second list sees the same message.
    assert run(stack, "dlq", "list", "--json")[1][0]["id"] == listed[0]["id"]

    code, shown = run(stack, "dlq", "show", listed[0]["id"][:8], "--json")
    assert code == 0
    assert shown["body"]["fetched"]["QTYONHAND"] == "-5.0000"
    assert shown["attributes"]["syncline-key"] == "SKU-NEG|1"

    # Filters that do not match select nothing; a dry run moves nothing.
    assert run(stack, "dlq", "list", "--json", "--error", "not mapped") == (0, [])
    code, dry = run(stack, "dlq", "redrive", "--dry-run", "--json")
    assert (code, dry[0]["moved"], dry[0]["method"]) == (0, 1, "dry-run")
    assert len(stack.dead_letters(QUEUE)) == 1

    stack.erp().set_stock([Stock("SKU-NEG", "1", Decimal(3))])  # the cause, fixed in the ERP
    code, report = run(stack, "dlq", "redrive", "--error", "negative", "--json")
    assert code == 0
    assert (report[0]["moved"], report[0]["skipped"], report[0]["failed"]) == (1, 0, 0)
    assert stack.dead_letters(QUEUE) == []
    stack.drain()  # no poll: the redriven message alone brings the fix
    assert storefront_levels(stack)[("SKU-NEG", "main")] == (Decimal(3), Decimal(3))
    assert run(stack, "dlq", "list", "--json") == (0, [])


def test_whole_queue_redrive_falls_back_to_one_by_one_on_moto(stack: LocalStack) -> None:
    _poison(stack)
    stack.erp().set_stock([Stock("SKU-NEG", "1", Decimal(1))])
    code, report = run(stack, "dlq", "redrive", "--json")
    assert code == 0
    assert report[0]["method"] == "one-by-one"
    assert "StartMessageMoveTask unavailable" in report[0]["note"]
    assert report[0]["moved"] == 1
    stack.drain()
    assert storefront_levels(stack)[("SKU-NEG", "main")] == (Decimal(1), Decimal(1))


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


def test_a_crash_between_send_and_delete_loses_nothing(stack: LocalStack) -> None:
    _poison(stack)
    stack.erp().set_stock([Stock("SKU-NEG", "1", Decimal(2))])
    ops = OpsContext(resolve_target(endpoint_url=stack.moto.endpoint))
    queue = ops.dead_letter_queue(ops.queue_spec(QUEUE))

    def crash(_message: RawMessage) -> None:
        raise Crash

    queue.delete = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        redrive(queue, DlqFilter(key="SKU-NEG"), hold_seconds=1)

    # The message is in the source queue already, and still in the DLQ (visible again after its hold).
    stack.drain()
    assert storefront_levels(stack)[("SKU-NEG", "main")] == (Decimal(2), Decimal(2))
    fresh = ops.dead_letter_queue(ops.queue_spec(QUEUE))
    for _ in range(50):
        if peek(fresh):
            break
        time.sleep(0.1)
    assert [m.keys for m in peek(fresh)] == [("SKU-NEG|1",)]
    # Redriving the leftover again is a harmless duplicate: nothing changes, nothing is left.
    report = redrive(fresh, DlqFilter())
    assert (report.moved, report.failed) == (1, 0)
    stack.drain()
    assert storefront_levels(stack)[("SKU-NEG", "main")] == (Decimal(2), Decimal(2))
    assert stack.dead_letters(QUEUE) == []


def test_purge_refuses_without_confirmation_and_purges_with_yes(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison(stack)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert run(stack, "dlq", "purge")[0] == 2
    assert len(stack.dead_letters(QUEUE)) == 1
    assert run(stack, "dlq", "purge", "--yes", "--json") == (0, {QUEUE: 1})
    assert stack.dead_letters(QUEUE) == []


def test_retries_exhausted_events_are_listed_and_unknown_ids_exit_3(stack: LocalStack) -> None:
    """An EventBridge event moved by SQS after maxReceiveCount is explained by its notices' keys."""
    _poison(stack)
    sqs = boto3.client("sqs")
    event = {
        "detail-type": "ChangeNotices",
        "source": "syncline.sage300",
        "detail": {
            "source_system": "sage300",
            "entity": "inventory_level",
            "notices": [
                {
                    "source_system": "sage300",
                    "entity": "inventory_level",
                    "key": "SKU-A|1",
                    "observed_at": "2026-11-23T03:00:00Z",
                }
            ],
        },
    }
    sqs.send_message(QueueUrl=stack.resources.queues[QUEUE].dlq_url, MessageBody=json.dumps(event))
    code, listed = run(stack, "dlq", "list", "--json", "--key", "SKU-A")
    assert code == 4
    assert [(m["kind"], m["keys"]) for m in listed] == [("retries-exhausted", ["SKU-A|1"])]
    assert run(stack, "dlq", "show", "no-such-id")[0] == 3
