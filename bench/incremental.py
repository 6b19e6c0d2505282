"""Incremental benchmark: N changed ERP rows carried through the local stack, poll -> storefront commit.

The whole path runs: ERP rows change, the poller handler sees them on its schedule, notices go
through EventBridge and SQS (moto server over HTTP), the sync worker handler fetches, diffs against
the state cache (DynamoDB), upserts into PostgreSQL and commits state. Latency per change is the
storefront commit time (`synced_at`) minus the start of the poll that saw it.

Two phases, one run:
- steady: changes arrive at --rate per second, the poller runs every --poll-every seconds;
- burst:  --burst-changes rows change at once, then one poll and a drain (throughput).
Baseline, same run: the moto server's rate of conditional PutItem calls (8 client threads), which
is the floor of the state commit and so the emulator's own ceiling for this path.
Writes bench/results/incremental.json.

    python bench/incremental.py --changes 10000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

import boto3  # noqa: E402

from syncline.adapters.jobs import DynamoJobStore  # noqa: E402
from syncline.adapters.storefront_pg import PostgresStorefront  # noqa: E402
from syncline.db import DbSettings, connect  # noqa: E402
from syncline.erp.sage300 import Sage300Reader  # noqa: E402
from syncline.local.emf import percentile  # noqa: E402
from syncline.local.postgres import ERP_READER  # noqa: E402
from syncline.local.sage300 import Stock  # noqa: E402
from syncline.local.stack import ERP_DATABASE, LocalStack  # noqa: E402
from syncline.ops.jobs import new_job, run_backfill  # noqa: E402
from syncline.sync import PairContext  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LOCATIONS = {"1": "main", "2": "east", "3": "west"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=10_000, help="changes in the steady phase (default 10,000)")
    parser.add_argument(
        "--rate", type=float, default=150.0, help="changes per second arriving in the ERP (default 150)"
    )
    parser.add_argument("--poll-every", type=float, default=1.0, help="seconds between polls (default 1)")
    parser.add_argument("--burst-changes", type=int, default=2000, help="changes made at once in the burst phase")
    parser.add_argument("--output", type=Path, default=RESULTS / "incremental.json")
    args = parser.parse_args()

    stack = LocalStack.up(work_dir=Path(tempfile.mkdtemp(prefix="syncline-bench-")))
    try:
        rows = _seed(stack, args.changes + args.burst_changes)
        baseline = _moto_conditional_puts_per_s(stack)
        rng = random.Random(11)
        keys = rng.sample(rows, args.changes + args.burst_changes)
        steady = _steady(stack, keys[: args.changes], args.rate, args.poll_every)
        burst = _burst(stack, keys[args.changes :])
    finally:
        stack.down()

    figures = {
        "changes": args.changes,
        "rate_offered_per_s": args.rate,
        "poll_every_s": args.poll_every,
        "steady": steady,
        "burst": burst,
        "baseline": {"moto_conditional_puts_per_s": baseline},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


def _seed(stack: LocalStack, count: int) -> list[tuple[str, str]]:
    """ERP rows for every change, loaded into the storefront through the bulk path (state cache empty)."""
    erp = stack.erp()
    items = (count + 2) // 3
    erp.add_items([(f"SKU{i:06d}", f"Item {i}") for i in range(items)])
    erp.set_stock(Stock(f"SKU{i:06d}", location, Decimal(i % 90)) for i in range(items) for location in LOCATIONS)
    settings = DbSettings.model_validate(
        stack.postgres.secret_for(ERP_DATABASE, user=ERP_READER, password=stack.postgres.reader_password)
    )
    reader_connection = connect(settings, read_only=True)
    store = stack.storefront()
    run_backfill(  # what `syncline backfill` runs
        new_job("erp-storefront-inventory", since=None, page_size=5000),
        source=Sage300Reader(lambda: reader_connection),
        target=PostgresStorefront(lambda: store),
        jobs=DynamoJobStore(boto3.client("dynamodb"), stack.resources.table),
        pair=PairContext("erp-storefront-inventory", "sage300", LOCATIONS),
    )
    reader_connection.close()
    stack.poll_erp()  # move the checkpoints past the seed; its notices are drained below
    _purge(stack)
    return [(f"SKU{i:06d}", location) for i in range(items) for location in LOCATIONS]


def _purge(stack: LocalStack) -> None:
    for queue in stack.resources.queues.values():
        boto3.client("sqs").purge_queue(QueueUrl=queue.url)


def _steady(stack: LocalStack, keys: list[tuple[str, str]], rate: float, poll_every: float) -> dict[str, Any]:
    erp = stack.erp()
    polled_at: dict[tuple[str, str], float] = {}
    pending: list[tuple[str, str]] = []
    cursor = 0
    started = time.time()
    with Progress(TextColumn("steady"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as progress:
        task = progress.add_task("steady", total=len(keys))
        while cursor < len(keys) or pending:
            due = min(len(keys), int((time.time() - started) * rate) + 1)
            batch = keys[cursor:due]
            cursor = due
            if batch:
                erp.set_stock(Stock(item, location, Decimal(random.randint(100, 999))) for item, location in batch)
                pending.extend(batch)
            poll_start = time.time()
            stack.poll_erp()
            for key in pending:
                polled_at[key] = poll_start
            progress.advance(task, len(pending))
            pending = []
            stack.drain()
            sleep = poll_every - (time.time() - poll_start)
            if sleep > 0 and cursor < len(keys):
                time.sleep(sleep)
    elapsed = time.time() - started
    latencies = _latencies(stack, polled_at)
    return {
        "changes": len(keys),
        "seconds": round(elapsed, 2),
        "throughput_per_s": round(len(keys) / elapsed, 1),
        **latencies,
    }


def _burst(stack: LocalStack, keys: list[tuple[str, str]]) -> dict[str, Any]:
    erp = stack.erp()
    erp.set_stock(Stock(item, location, Decimal(random.randint(1000, 1999))) for item, location in keys)
    started = time.time()
    stack.poll_erp()
    stack.drain()
    elapsed = time.time() - started
    return {
        "changes": len(keys),
        "seconds": round(elapsed, 2),
        "throughput_per_s": round(len(keys) / elapsed, 1),
        **_latencies(stack, dict.fromkeys(keys, started)),
    }


def _latencies(stack: LocalStack, polled_at: dict[tuple[str, str], float]) -> dict[str, Any]:
    committed = {
        (sku, location): synced_at.timestamp()
        for sku, location, synced_at in stack.storefront()
        .execute("SELECT sku, location, synced_at FROM inventory_levels")
        .fetchall()
    }
    values = [(committed[(item, LOCATIONS[loc])] - polled) * 1000 for (item, loc), polled in polled_at.items()]
    missing = sum(1 for value in values if value < 0)  # committed before the poll = never synced by it
    return {
        "p50_ms": round(percentile(values, 0.50), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "max_ms": round(max(values), 1) if values else 0.0,
        "not_synced": missing,
    }


def _moto_conditional_puts_per_s(stack: LocalStack, count: int = 600) -> float:
    client = boto3.client("dynamodb")
    table = stack.resources.table

    def put(i: int) -> None:
        client.put_item(
            TableName=table,
            Item={"pk": {"S": f"BENCH#{i}"}, "version": {"N": "1"}},
            ConditionExpression="attribute_not_exists(pk) OR version <= :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))
    return round(count / (time.perf_counter() - started), 1)


if __name__ == "__main__":
    sys.exit(main())
