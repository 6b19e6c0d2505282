"""Webhook ingress benchmark: cold start, and sustained signed load through the local API Gateway.

(a) cold start: import time (CPU, and wall for comparison) of ``handlers.webhook`` in a fresh
    interpreter with Lambda's environment, median of several runs, from a copy of ``functions/`` compiled the way ``make bundle`` compiles the
    asset (``infra.bundling.compile_command``). Baselines of the same run: the same copy with no
    bytecode anywhere (every module, boto3's too, compiled at start: how the asset shipped before), the
    module with the X-Ray tracer the other functions load, and ``import boto3`` alone, the floor no
    Python Lambda that calls AWS can go under. ``--cold-start-only`` measures just this.
(b) sustained load: ``--concurrency`` senders post signed Shopify webhooks to the local gateway for
    ``--seconds`` (default 60): 5 % re-sent deliveries (expected 200 duplicate), 1 % forged (expected
    401), the rest new (expected 202); anything else counts as an error. Latency is what the sender
    sees. The handler's wall time is split into the time spent inside AWS SDK calls (DynamoDB claim and
    complete, EventBridge PutEvents, over HTTP to the moto server) and the function's own time.
(c) ramp: a few seconds at each concurrency in ``--ramp`` to show where the emulator, not Syncline,
    becomes the limit.

Writes bench/results/webhook.json (cold_start_ms, rps, p50_ms, p99_ms, own_ms_per_request, errors, ...).

    python bench/webhook.py                 # 60 s sustained
    python bench/webhook.py --seconds 10    # a quick look
    python bench/webhook.py --cold-start-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))
sys.path.insert(0, str(REPO))

from botocore.client import BaseClient  # noqa: E402

from syncline.local.emf import percentile  # noqa: E402
from syncline.local.stack import LocalStack  # noqa: E402

RESULTS = REPO / "bench" / "results"
SOURCE = "shopify-store-a"
EXPECTED = {"new": 202, "duplicate": 200, "forged": 401}
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "syncline-webhook",
    "POWERTOOLS_SERVICE_NAME": "syncline",
    "POWERTOOLS_METRICS_NAMESPACE": "Syncline",
}


def import_ms(module: str, runs: int, *, code_dir: Path = REPO / "functions", cache: Path | None = None) -> float:
    """Median CPU time of importing ``module`` in a fresh interpreter, with ``code_dir`` as the Lambda task root.

    CPU time (``time.process_time``), not wall time: an import is CPU-bound, and on a shared machine wall
    time also counts whatever else runs; :func:`import_wall_ms` gives the wall time for comparison.
    ``cache`` set: Python reads and writes no bytecode but that under this (empty) folder, so every module,
    boto3's included, is compiled from source at each start, as in a bundle shipped without bytecode.
    """
    return _import_median(module, runs, code_dir, cache, "process_time")


def import_wall_ms(module: str, runs: int, *, code_dir: Path = REPO / "functions") -> float:
    return _import_median(module, runs, code_dir, None, "perf_counter")


def _import_median(module: str, runs: int, code_dir: Path, cache: Path | None, clock: str) -> float:
    code = f"import time; t = time.{clock}(); import {module}; print((time.{clock}() - t) * 1000)"
    env = {**os.environ, **LAMBDA_ENV, "PYTHONPATH": str(code_dir)}
    if cache is not None:
        env |= {"PYTHONPYCACHEPREFIX": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    samples = []
    for _ in range(runs + 1):  # the first run warms the page cache: discarded
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return round(statistics.median(samples[1:]), 1)


# What the webhook function cannot start without: the AWS SDK, Powertools' resolver, logger, metrics and
# parameters, and pydantic. Its import time is the floor; the rest of ``cold_start_ms`` is Syncline's own.
# (``handlers`` first: its GC setting applies to the imports as it does in the function.)
THIRD_PARTY = (
    "handlers, boto3, pydantic, aws_lambda_powertools.event_handler, aws_lambda_powertools.utilities.parameters, "
    "aws_lambda_powertools.logging, aws_lambda_powertools.metrics"
)


def cold_start(runs: int) -> dict[str, float]:
    """Import times of the webhook module as ``make bundle`` ships it (bytecode compiled, ``infra.bundling``),
    and, as the baseline of the same run, as it shipped before (no bytecode: everything compiled at start)."""
    from infra.bundling import compile_command  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="syncline-bundle-") as tmp:
        bundle = Path(tmp) / "task"
        shutil.copytree(REPO / "functions", bundle, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        subprocess.run(compile_command(bundle, sys.executable), check=True)
        bundled = import_ms("handlers.webhook", runs, code_dir=bundle)
        bundled_wall = import_wall_ms("handlers.webhook", runs, code_dir=bundle)
        with_xray = import_ms("handlers.webhook, handlers.tracing", runs, code_dir=bundle)
        (Path(tmp) / "empty-cache").mkdir()
        no_bytecode = import_ms("handlers.webhook", runs, code_dir=bundle, cache=Path(tmp) / "empty-cache")
    packages = import_ms(THIRD_PARTY, runs)
    return {
        "cold_start_ms": bundled,
        "cold_start_wall_ms": bundled_wall,
        "cold_start_with_xray_ms": with_xray,
        "cold_start_without_bytecode_ms": no_bytecode,
        "import_boto3_ms": import_ms("boto3", runs),
        "import_third_party_ms": packages,
    }


# -- where the handler's time goes ----------------------------------------------------------------------
_local = threading.local()


@dataclass
class Timings:
    handler_seconds: list[float] = field(default_factory=list)
    aws_seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def instrumented(timings: Timings) -> Iterator[None]:
    """Time every AWS SDK call and every webhook handler invocation in this process."""
    import handlers.webhook as module  # noqa: PLC0415

    original_call: Callable[..., Any] = BaseClient._make_api_call  # type: ignore[attr-defined]
    original_handler = module.handler

    def timed_call(self: Any, operation: str, params: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_call(self, operation, params)
        finally:
            _local.aws = getattr(_local, "aws", 0.0) + time.perf_counter() - started

    def timed_handler(event: dict[str, Any], context: Any) -> Any:
        _local.aws = 0.0
        started = time.perf_counter()
        try:
            return original_handler(event, context)
        finally:
            elapsed = time.perf_counter() - started
            with timings.lock:
                timings.handler_seconds.append(elapsed)
                timings.aws_seconds.append(_local.aws)

    BaseClient._make_api_call = timed_call  # type: ignore[attr-defined]
    module.handler = timed_handler  # type: ignore[assignment]
    try:
        yield
    finally:
        BaseClient._make_api_call = original_call  # type: ignore[attr-defined]
        module.handler = original_handler  # type: ignore[assignment]


# -- load ------------------------------------------------------------------------------------------------
@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)


def run_load(stack: LocalStack, *, seconds: float, concurrency: int, seed: int, label: str) -> Load:
    load = Load()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def sender(worker: int) -> None:
        rng = random.Random(seed * 1000 + worker)
        sent: list[tuple[str, dict[str, Any]]] = []
        with httpx.Client(timeout=30) as client:
            webhook = stack.webhook_sender(SOURCE, client)
            n = 0
            while time.perf_counter() < deadline:
                roll = rng.random()
                if roll < 0.01:
                    kind, delivery_id, payload = "forged", f"{label}-{worker}-{n}", level(rng)
                elif roll < 0.06 and sent:
                    kind, (delivery_id, payload) = "duplicate", rng.choice(sent)
                else:
                    kind, delivery_id, payload = "new", f"{label}-{worker}-{n}", level(rng)
                    sent.append((delivery_id, payload))
                n += 1
                started = time.perf_counter()
                response = webhook.post(payload, delivery_id=delivery_id, forged=kind == "forged")
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    load.latencies_ms.append(elapsed)
                    load.kinds[kind] += 1
                    load.statuses[response.status_code] += 1
                    if response.status_code != EXPECTED[kind]:
                        load.unexpected[f"{kind}->{response.status_code}"] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - began
    return load


def level(rng: random.Random) -> dict[str, Any]:
    return {
        "inventory_item_id": rng.randrange(10**17, 10**18),
        "location_id": rng.randrange(10**7, 10**8),
        "available": rng.randrange(0, 500),
        "updated_at": datetime.now(UTC).isoformat(),
    }


def summarise(load: Load, timings: Timings) -> dict[str, Any]:
    handler_ms = [s * 1000 for s in timings.handler_seconds]
    aws_ms = [s * 1000 for s in timings.aws_seconds]
    own_ms = [h - a for h, a in zip(handler_ms, aws_ms, strict=True)]
    return {
        "requests": load.requests,
        "seconds": round(load.seconds, 2),
        "rps": round(load.requests / load.seconds, 1) if load.seconds else 0.0,
        "p50_ms": round(percentile(load.latencies_ms, 0.5), 2),
        "p99_ms": round(percentile(load.latencies_ms, 0.99), 2),
        "own_ms_per_request": round(statistics.mean(own_ms), 3) if own_ms else None,
        "own_p99_ms": round(percentile(own_ms, 0.99), 3) if own_ms else None,
        "aws_ms_per_request": round(statistics.mean(aws_ms), 3) if aws_ms else None,
        "handler_ms_per_request": round(statistics.mean(handler_ms), 3) if handler_ms else None,
        # What the sender waits beyond the handler: local HTTP, the gateway, the emulated invoke, queueing.
        "outside_handler_ms_per_request": round(statistics.mean(load.latencies_ms) - statistics.mean(handler_ms), 3)
        if handler_ms and load.latencies_ms
        else None,
        "errors": sum(load.unexpected.values()),
        "unexpected": dict(load.unexpected),
        "kinds": dict(load.kinds),
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
    }


def measure(stack: LocalStack, *, seconds: float, concurrency: int, seed: int, label: str) -> dict[str, Any]:
    timings = Timings()
    with instrumented(timings):
        load = run_load(stack, seconds=seconds, concurrency=concurrency, seed=seed, label=label)
    return summarise(load, timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="sustained load duration (default 60)")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="concurrent senders (default 1: the emulator runs one environment)"
    )
    parser.add_argument("--ramp", default="1,2,4,8", help="concurrencies of the ramp (default 1,2,4,8)")
    parser.add_argument("--ramp-seconds", type=float, default=5.0, help="seconds per ramp step (default 5)")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters for the cold start")
    parser.add_argument(
        "--cold-start-only", action="store_true", help="measure the cold start only and update its figures in --output"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS / "webhook.json")
    args = parser.parse_args()

    print("cold start: importing handlers.webhook from a bundle in fresh interpreters…")
    cold = cold_start(args.import_runs)
    print(
        f"  handlers.webhook {cold['cold_start_ms']} ms CPU, {cold['cold_start_wall_ms']} ms wall "
        f"(CPU without bytecode, as bundled before: "
        f"{cold['cold_start_without_bytecode_ms']} ms; with the X-Ray tracer: {cold['cold_start_with_xray_ms']} ms; "
        f"boto3 alone: {cold['import_boto3_ms']} ms; the third-party packages alone: {cold['import_third_party_ms']} ms)"
    )
    if args.cold_start_only:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(args.output.read_text()) if args.output.is_file() else {}
        args.output.write_text(json.dumps(previous | cold, indent=2) + "\n")
        return 0

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    stack = LocalStack.up()
    try:
        with httpx.Client() as client:  # warm the function (cold start is measured above)
            stack.webhook_sender(SOURCE, client).post({"inventory_item_id": 1, "location_id": 1})
        ramp = []
        for concurrency in [int(c) for c in args.ramp.split(",") if c.strip()]:
            step = measure(
                stack, seconds=args.ramp_seconds, concurrency=concurrency, seed=args.seed, label=f"ramp{concurrency}"
            )
            ramp.append(
                {"concurrency": concurrency}
                | {
                    k: step[k]
                    for k in ("rps", "p50_ms", "p99_ms", "aws_ms_per_request", "own_ms_per_request", "errors")
                }
            )
            print(
                f"  ramp c={concurrency}: {step['rps']} req/s, p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, "
                f"AWS {step['aws_ms_per_request']} ms + own {step['own_ms_per_request']} ms per request"
            )
        print(f"sustained: {args.concurrency} senders for {args.seconds:.0f} s…")
        sustained = measure(
            stack, seconds=args.seconds, concurrency=args.concurrency, seed=args.seed + 1, label="sustained"
        )
    finally:
        stack.down()

    result = {
        **cold,
        "rps": sustained["rps"],
        "p50_ms": sustained["p50_ms"],
        "p99_ms": sustained["p99_ms"],
        "own_ms_per_request": sustained["own_ms_per_request"],
        "errors": sustained["errors"],
        "sustained": sustained | {"concurrency": args.concurrency},
        "ramp": ramp,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "aws": "moto server 5.2.5 over HTTP"},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: result[k] for k in ("cold_start_ms", "rps", "p50_ms", "p99_ms", "own_ms_per_request", "errors")})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
