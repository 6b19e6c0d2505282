"""Engine benchmark: the sync worker's own cost per synced event, and AWS requests per event.

The worker handler runs in this process on batches of 100 notices (one SQS message each); the moto
server (AWS) and PostgreSQL run in their own processes, so their time is not counted. CPU is
``time.process_time()`` of this process around each invocation (it includes boto3's and psycopg's
own work, as Lambda bills it). AWS requests are counted with botocore ``before-send`` hooks.
Both state-commit strategies are measured: ``transaction`` (deployed; TransactWriteItems of 100) and
``per_key`` (the local stack's; one conditional PutItem per key). Baselines, same run: ``transaction``
with botocore's client-side parameter validation on (as the workers ran before it was turned off), and
the CPU of the bare per-key AWS calls for one batch, so what is the engine and what is boto3 can be
told apart.
Writes bench/results/engine.json.

    python bench/engine.py --batches 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

import boto3  # noqa: E402

from syncline.adapters import aws  # noqa: E402
from syncline.local.lambda_runtime import sqs_event  # noqa: E402
from syncline.local.sage300 import Stock  # noqa: E402
from syncline.local.stack import LocalStack  # noqa: E402
from syncline.models import ChangeNotice, NoticeBatch, inventory_key  # noqa: E402
from syncline.settings import ENV_STATE_COMMIT  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUEUE = "sync_storefront"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="batches of 100 notices (default 20)")
    parser.add_argument("--output", type=Path, default=RESULTS / "engine.json")
    args = parser.parse_args()

    stack = LocalStack.up(work_dir=Path(tempfile.mkdtemp(prefix="syncline-bench-")))
    try:
        # moto's transactions copy the table, so each costs more as it grows: the baseline runs second.
        by_commit = {"transaction": _measure(stack, args.batches, "transaction", 0)}
        with _client_side_validation():
            validated = _measure(stack, args.batches, "transaction", 1)
        by_commit["per_key"] = _measure(stack, args.batches, "per_key", 2)
        baseline_cpu = _bare_aws_calls(stack, [f"B{i}" for i in range(100)])
    finally:
        stack.down()
    deployed = by_commit["transaction"]
    figures: dict[str, Any] = {
        "events_per_s_per_core": deployed["events_per_s_per_core"],
        "aws_requests_per_event": deployed["aws_requests_per_event"],
        "state_commit": by_commit,
        "transaction_with_client_side_validation": validated,
        "baseline": {
            "bare_per_key_aws_calls_cpu_ms_per_batch": round(1000 * baseline_cpu, 1),
            "what": "one BatchGetItem of 100 keys and 100 conditional PutItem calls, 8 threads, no engine",
        },
    }
    if validated["aws_requests"] != deployed["aws_requests"]:
        # Retried requests (the emulator timing out under load) cost CPU of their own: not the same work.
        figures["warning"] = "the two transaction runs sent different requests (retries): rerun for a fair baseline"
        print(f"warning: {figures['warning']}", file=sys.stderr)
    figures["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


@contextmanager
def _client_side_validation() -> Iterator[None]:
    """botocore's check of every request against the service model, as the workers ran before it was
    turned off (``syncline.adapters.aws``): the same-run baseline of what that change saves."""
    os.environ[aws.ENV_PARAMETER_VALIDATION] = "1"
    aws.reset_clients()
    try:
        yield
    finally:
        del os.environ[aws.ENV_PARAMETER_VALIDATION]
        aws.reset_clients()


def _measure(stack: LocalStack, batches: int, commit: str, offset: int) -> dict[str, Any]:
    """One run of ``batches`` batches with the given state-commit strategy (fresh items, nothing skipped)."""
    erp = stack.erp()
    items = [f"E{offset}{i:06d}" for i in range(100 * (batches + 1))]
    erp.add_items([(item, "x") for item in items])
    erp.set_stock(Stock(item, "1", Decimal(1)) for item in items)
    worker = stack.functions[QUEUE]
    worker.environment[ENV_STATE_COMMIT] = commit
    queue_arn = stack.resources.queues[QUEUE].arn

    requests: Counter[str] = Counter()

    def count(request: Any, **kwargs: Any) -> None:
        requests[kwargs.get("event_name", "?").split(".")[-1]] += 1

    # Warm up (cold start, secrets fetched and cached, connections opened) on the first batch: not counted.
    worker.invoke(_event(items[:100], queue_arn, 0))
    for client in (aws.dynamodb(), aws.sqs(), aws.events()):
        client.meta.events.register("before-send", count)

    cpu = 0.0
    synced = 0
    for n in range(1, batches + 1):
        chunk = items[100 * n : 100 * (n + 1)]
        erp.set_stock(Stock(item, "1", Decimal(n + 1)) for item in chunk)  # real changes: nothing skipped
        started = time.process_time()
        invocation = worker.invoke(_event(chunk, queue_arn, n))
        cpu += time.process_time() - started
        if invocation.error is not None or invocation.response != {"batchItemFailures": []}:
            raise RuntimeError(f"batch {n} did not sync cleanly: {invocation}")
        synced += len(chunk)
    for client in (aws.dynamodb(), aws.sqs(), aws.events()):
        client.meta.events.unregister("before-send", count)
    total_requests = sum(requests.values())
    return {
        "batches": batches,
        "notices_per_batch": 100,
        "synced_events": synced,
        "cpu_seconds": round(cpu, 3),
        "events_per_s_per_core": round(synced / cpu),
        "cpu_ms_per_batch": round(1000 * cpu / batches, 1),
        "aws_requests": dict(requests),
        "aws_requests_per_event": round(total_requests / synced, 3),
    }


def _event(items: list[str], queue_arn: str, n: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    notices = [
        ChangeNotice(source_system="sage300", entity="inventory_level", key=inventory_key(item, "1"), observed_at=now)
        for item in items
    ]
    body = json.dumps(
        {
            "version": "0",
            "id": f"bench-{n}",
            "detail-type": "ChangeNotices",
            "source": "syncline.sage300",
            "detail": NoticeBatch(source_system="sage300", entity="inventory_level", notices=notices).model_dump(
                mode="json"
            ),
        }
    )
    return sqs_event([{"MessageId": f"m-{n}", "ReceiptHandle": f"r-{n}", "Body": body}], queue_arn)


def _bare_aws_calls(stack: LocalStack, items: list[str]) -> float:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    client, table = boto3.client("dynamodb"), stack.resources.table
    keys = [f"BASE#{item}" for item in items]
    started = time.process_time()
    client.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": k}} for k in keys]}})

    def put(key: str) -> None:
        client.put_item(
            TableName=table,
            Item={"pk": {"S": key}, "version": {"N": "1"}, "content_hash": {"S": "0" * 32}},
            ConditionExpression="attribute_not_exists(pk) OR version <= :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    return time.process_time() - started


if __name__ == "__main__":
    sys.exit(main())
