"""Engine benchmark: the sync worker's own cost per synced event, and AWS requests per event.

The worker handler runs in this process on batches of 100 notices (one SQS message each); the moto
server (AWS) and PostgreSQL run in their own processes, so their time is not counted. CPU is
``time.process_time()`` of this process around each invocation (it includes boto3's and psycopg's
own work, as Lambda bills it). AWS requests are counted with botocore ``before-send`` hooks.
Both state-commit strategies are measured: ``transaction`` (deployed; TransactWriteItems of 100) and
``per_key`` (the local stack's; one conditional PutItem per key). Baselines, same run: ``transaction``
with botocore's client-side parameter validation on (as the workers ran before it was turned off),
measured batch by batch in alternation with the deployed setting, and
the CPU of the bare per-key AWS calls for one batch, so what is the engine and what is boto3 can be
told apart.
Writes bench/results/engine.json.

    python bench/engine.py --batches 20
"""

from __future__ import annotations

import argparse
import gc
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
        deployed_run, validated = _measure(stack, args.batches, "transaction", 0, compare_validation=True)
        by_commit = {"transaction": deployed_run, "per_key": _measure(stack, args.batches, "per_key", 2)}
        baseline_cpu = _bare_aws_calls(stack, [f"B{i}" for i in range(100)])
        latency_metric = _latency_metric_cpu()
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
            "latency_metric_cpu_ms_per_batch": latency_metric,
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


NOTICES_PER_MESSAGE = 100  # the poller's notices_per_event default


def _measure(
    stack: LocalStack, batches: int, commit: str, offset: int, *, messages: int = 1, compare_validation: bool = False
) -> Any:
    """One run of ``batches`` batches with the given state-commit strategy (fresh items, nothing skipped).

    ``compare_validation``: every batch is followed by one more with botocore's client-side validation on
    (``syncline.adapters.aws``), alternating, so both modes meet the same drift of the process and the
    emulator; returns (deployed figures, validated figures).
    """
    erp = stack.erp()
    modes = [False, True] if compare_validation else [False]
    size = NOTICES_PER_MESSAGE * messages
    items = [f"E{offset}{i:06d}" for i in range(size * (len(modes) * batches + len(modes)))]
    erp.add_items([(item, "x") for item in items])
    erp.set_stock(Stock(item, "1", Decimal(1)) for item in items)
    worker = stack.functions[QUEUE]
    worker.environment[ENV_STATE_COMMIT] = commit
    queue_arn = stack.resources.queues[QUEUE].arn
    chunks = iter([items[start : start + size] for start in range(0, len(items), size)])

    requests: dict[bool, Counter[str]] = {mode: Counter() for mode in modes}
    cpu = dict.fromkeys(modes, 0.0)
    synced = dict.fromkeys(modes, 0)

    def count(mode: bool) -> Any:
        def hook(request: Any, **kwargs: Any) -> None:
            requests[mode][kwargs.get("event_name", "?").split(".")[-1]] += 1

        return hook

    hooks = {}
    for mode in modes:
        with _validation(mode):
            # Warm up (cold start, secrets fetched and cached, connections opened, clients built): not counted.
            worker.invoke(_event(next(chunks), queue_arn, 0))
            hooks[mode] = [(client, count(mode)) for client in (aws.dynamodb(), aws.sqs(), aws.events())]
            for client, hook in hooks[mode]:
                client.meta.events.register("before-send", hook)
    # The function froze what its init built (handlers.initialised); freeze the harness's own objects too, so a
    # full collection during a measured batch walks a Lambda-sized heap, not the benchmark's.
    gc.collect()
    gc.freeze()
    for n in range(1, batches + 1):
        for mode in modes:
            chunk = next(chunks)
            erp.set_stock(Stock(item, "1", Decimal(n + 1)) for item in chunk)  # real changes: nothing skipped
            with _validation(mode):
                started = time.process_time()
                invocation = worker.invoke(_event(chunk, queue_arn, n))
                cpu[mode] += time.process_time() - started
            if invocation.error is not None or invocation.response != {"batchItemFailures": []}:
                raise RuntimeError(f"batch {n} did not sync cleanly: {invocation}")
            synced[mode] += len(chunk)
    for mode in modes:
        for client, hook in hooks[mode]:
            client.meta.events.unregister("before-send", hook)
    figures = [
        {
            "batches": batches,
            "messages_per_batch": messages,
            "notices_per_batch": size,
            "synced_events": synced[mode],
            "cpu_seconds": round(cpu[mode], 3),
            "events_per_s_per_core": round(synced[mode] / cpu[mode]),
            "cpu_ms_per_batch": round(1000 * cpu[mode] / batches, 1),
            "cpu_ms_per_100_notices": round(1000 * cpu[mode] / batches / messages, 1),
            "aws_requests": dict(requests[mode]),
            "aws_requests_per_event": round(sum(requests[mode].values()) / synced[mode], 3),
        }
        for mode in modes
    ]
    return tuple(figures) if compare_validation else figures[0]


@contextmanager
def _validation(on: bool) -> Iterator[None]:
    """botocore's check of every request against the service model on or off for what runs inside (the clients
    are cached per setting, so switching costs nothing)."""
    if on:
        os.environ[aws.ENV_PARAMETER_VALIDATION] = "1"
    else:
        os.environ.pop(aws.ENV_PARAMETER_VALIDATION, None)
    try:
        yield
    finally:
        os.environ.pop(aws.ENV_PARAMETER_VALIDATION, None)


def _event(items: list[str], queue_arn: str, n: int) -> dict[str, Any]:
    """An SQS event of one message (EventBridge ChangeNotices event) per 100 items."""
    now = datetime.now(UTC)
    messages = []
    for m, start in enumerate(range(0, len(items), NOTICES_PER_MESSAGE)):
        notices = [
            ChangeNotice(
                source_system="sage300", entity="inventory_level", key=inventory_key(item, "1"), observed_at=now
            )
            for item in items[start : start + NOTICES_PER_MESSAGE]
        ]
        detail = NoticeBatch(source_system="sage300", entity="inventory_level", notices=notices)
        body = json.dumps(
            {
                "version": "0",
                "id": f"bench-{n}-{m}",
                "detail-type": "ChangeNotices",
                "source": "syncline.sage300",
                "detail": detail.model_dump(mode="json"),
            }
        )
        messages.append({"MessageId": f"m-{n}-{m}", "ReceiptHandle": f"r-{n}-{m}", "Body": body})
    return sqs_event(messages, queue_arn)


def _latency_metric_cpu(batches: int = 200) -> dict[str, float]:
    """CPU per batch of publishing 100 SyncLatency values: one ``metrics.add_metric`` per value (how the worker
    did it before; Powertools prints the document itself at 100 values) against ``publish_values`` (one document)."""
    import contextlib  # noqa: PLC0415

    from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415

    from handlers.observability import metrics, publish_values  # noqa: PLC0415

    values = [round(12.5 + 0.37 * i, 1) for i in range(100)]
    cpu = {}
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"  # both ways print, as in Lambda
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        started = time.process_time()
        for _ in range(batches):
            for value in values:
                metrics.add_metric(name="SyncLatency", unit=MetricUnit.Milliseconds, value=value)
        cpu["add_metric_per_value"] = time.process_time() - started
        started = time.process_time()
        for _ in range(batches):
            publish_values("SyncLatency", MetricUnit.Milliseconds, values)
        cpu["publish_values"] = time.process_time() - started
    return {way: round(1000 * seconds / batches, 2) for way, seconds in cpu.items()}


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
