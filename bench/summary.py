"""Performance summary: every benchmark's figures against their baselines and targets, one chart, and
a cost estimate per million synced events from the measured AWS request counts and AWS list prices.

Reads bench/results/{backfill,incremental,engine,webhook}.json (and chaos.json when present). Writes
docs/img/performance.png (latency percentiles and throughput against baselines) and
bench/results/summary.json, and prints the tables of docs/PERFORMANCE.md's "Summary and cost" section.
It measures nothing itself: run the benchmarks first (``make bench``).

    python bench/summary.py
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CHART = REPO / "docs" / "img" / "performance.png"

# AWS list prices, us-east-1, USD. Lambda on Arm (the functions are ARM64), first pricing tier.
PRICES = {
    "lambda_gb_second_arm": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "sqs_standard_per_million_requests": 0.40,
    "dynamodb_on_demand_per_million_wru": 0.625,
    "dynamodb_on_demand_per_million_rru": 0.125,
    "eventbridge_custom_events_per_million": 1.00,
    "api_gateway_rest_per_million_requests": 3.50,
}
PRICE_SOURCES = {
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "eventbridge": "https://aws.amazon.com/eventbridge/pricing/",
    "api_gateway": "https://aws.amazon.com/api-gateway/pricing/",
}
PRICES_CHECKED = "2026-11-23"

# What the estimate assumes beyond the measurements (each one named in the doc).
ASSUMPTIONS = {
    "notices_per_message": 100,  # [poller] notices_per_event: one EventBridge event and one SQS message
    "messages_per_invocation": 10,  # the sync queue's batch size
    "worker_memory_gb": 0.5,  # topology: sync_storefront 512 MB
    "webhook_memory_gb": 0.5,
    "wall_to_cpu": 2.0,  # Lambda bills wall time; I/O waits (ERP, PostgreSQL, DynamoDB) assumed to double the CPU
    "webhook_handler_ms_in_aws": 20.0,  # 1 ms own work + 3 SDK calls at a few ms each (16 ms against moto)
    "item_sizes": "state items under 1 KB (1 WRU per write, 2 in a transaction) and 4 KB (1 RRU, strongly consistent)",
}


def load_results(directory: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Every benchmark's JSON by name (``summary.json`` itself excluded)."""
    return {
        path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json")) if path.stem != "summary"
    }


def figures(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per headline figure: what was measured, the same-run baseline, the target, whether it is met."""
    rows: list[dict[str, Any]] = []

    def add(
        bench: str, figure: str, measured: float, unit: str, baseline: str = "", target: str = "", meets: Any = None
    ):
        rows.append(
            {"benchmark": bench, "figure": figure, "measured": measured, "unit": unit, "baseline": baseline}
            | {"target": target, "meets": meets}
        )

    if backfill := results.get("backfill"):
        add(
            "backfill",
            f"{backfill['rows']:,} rows, bulk path",
            backfill["seconds"],
            "s",
            f"raw COPY {backfill['copy_seconds']} s ({backfill['ratio_to_copy']}x)",
            "≤ 3x COPY",
            backfill["ratio_to_copy"] <= 3,
        )
        add("backfill", "peak RSS", backfill["peak_rss_mb"], "MB", "", "< 300 MB", backfill["peak_rss_mb"] < 300)
    if incremental := results.get("incremental"):
        steady, burst = incremental["steady"], incremental["burst"]
        moto = incremental["baseline"]["moto_conditional_puts_per_s"]
        add("incremental", "steady p99 latency", steady["p99_ms"], "ms", "", "< 2,000 ms", steady["p99_ms"] < 2000)
        add("incremental", "steady throughput", steady["throughput_per_s"], "changes/s")
        add(
            "incremental",
            "burst throughput",
            burst["throughput_per_s"],
            "changes/s",
            f"moto conditional PutItem {moto:.0f}/s ({burst['throughput_per_s'] / moto:.0%})",
        )
    if engine := results.get("engine"):
        deployed = engine["state_commit"]["transaction"]
        bare = engine["baseline"]["bare_per_key_aws_calls_cpu_ms_per_batch"]
        add(
            "engine",
            "events/s per core (transaction)",
            deployed["events_per_s_per_core"],
            "events/s",
            f"bare per-key AWS calls {bare} ms CPU per 100",
            "≥ 5,000",
            deployed["events_per_s_per_core"] >= 5000,
        )
        add(
            "engine",
            "AWS requests per event",
            deployed["aws_requests_per_event"],
            "requests",
            "",
            "≤ 1",
            deployed["aws_requests_per_event"] <= 1,
        )
    if webhook := results.get("webhook"):
        sustained = webhook["sustained"]
        add("webhook", "p99 latency", webhook["p99_ms"], "ms", "", "< 50 ms", webhook["p99_ms"] < 50)
        add(
            "webhook",
            "throughput, 1 sender",
            webhook["rps"],
            "req/s",
            f"AWS SDK time {sustained['aws_ms_per_request']} ms/request (moto)",
            "≥ 100",
            webhook["rps"] >= 100,
        )
        add(
            "webhook",
            "own time per request",
            webhook["own_ms_per_request"],
            "ms",
            "",
            "< 2 ms",
            webhook["own_ms_per_request"] < 2,
        )
        add(
            "webhook",
            "cold start",
            webhook["cold_start_ms"],
            "ms",
            f"import boto3 {webhook['import_boto3_ms']} ms",
            "< 250 ms",
            webhook["cold_start_ms"] < 250,
        )
    if chaos := results.get("chaos"):
        for name, target in (("divergent", 0), ("lost", 0), ("left_in_dlq", 0)):
            if name in chaos:
                add("chaos", name.replace("_", " "), chaos[name], "records", "", f"{target}", chaos[name] == target)
        for name, unit in (("writes_per_change", "writes"), ("seconds_to_converge", "s")):
            if name in chaos:
                add("chaos", name.replace("_", " "), chaos[name], unit)
    return rows


def cost(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """USD per million synced events (per state-commit strategy) and per million webhook deliveries."""
    per_million: dict[str, dict[str, float]] = {}
    engine = results.get("engine")
    if engine:
        per_notice_message = 1 / ASSUMPTIONS["notices_per_message"]
        per_invocation = per_notice_message / ASSUMPTIONS["messages_per_invocation"]
        for strategy, measured in engine["state_commit"].items():
            events = measured["synced_events"]
            requests = {name: count / events for name, count in measured["aws_requests"].items()}
            rru = requests.get("BatchGetItem", 0) * 100 + requests.get("GetItem", 0)  # 100 keys per BatchGetItem
            wru = requests.get("TransactWriteItems", 0) * 100 * 2 + requests.get("PutItem", 0)
            cpu_seconds_per_event = measured["cpu_seconds"] / events
            gb_seconds = cpu_seconds_per_event * ASSUMPTIONS["wall_to_cpu"] * ASSUMPTIONS["worker_memory_gb"]
            # SQS per message: EventBridge's SendMessage, then one ReceiveMessage and one DeleteMessageBatch per 10.
            sqs_requests = per_notice_message * (1 + 2 / ASSUMPTIONS["messages_per_invocation"])
            per_million[strategy] = {
                "dynamodb_writes": wru * PRICES["dynamodb_on_demand_per_million_wru"],
                "dynamodb_reads": rru * PRICES["dynamodb_on_demand_per_million_rru"],
                "eventbridge": per_notice_message * PRICES["eventbridge_custom_events_per_million"],
                "sqs": sqs_requests * PRICES["sqs_standard_per_million_requests"],
                "lambda_duration": gb_seconds * 1e6 * PRICES["lambda_gb_second_arm"],
                "lambda_requests": per_invocation * PRICES["lambda_per_million_requests"],
            }
            per_million[strategy] = {k: round(v, 4) for k, v in per_million[strategy].items()}
            per_million[strategy]["total"] = round(sum(per_million[strategy].values()), 4)
    webhook = {
        "api_gateway": PRICES["api_gateway_rest_per_million_requests"],
        "lambda_requests": PRICES["lambda_per_million_requests"],
        "lambda_duration": round(
            ASSUMPTIONS["webhook_handler_ms_in_aws"]
            / 1000
            * ASSUMPTIONS["webhook_memory_gb"]
            * 1e6
            * PRICES["lambda_gb_second_arm"],
            4,
        ),
        "dynamodb_writes": 2 * PRICES["dynamodb_on_demand_per_million_wru"],  # claim + mark published
        "eventbridge": PRICES["eventbridge_custom_events_per_million"],
    }
    webhook["total"] = round(sum(webhook.values()), 4)
    return {
        "currency": "USD",
        "region": "us-east-1",
        "prices": PRICES,
        "price_sources": PRICE_SOURCES,
        "prices_checked": PRICES_CHECKED,
        "assumptions": ASSUMPTIONS,
        "per_million_synced_events": per_million,
        "per_million_webhook_deliveries": webhook,
    }


def chart(results: dict[str, dict[str, Any]], path: Path = CHART) -> Path:
    """Latency percentiles per path (log scale) and throughput against each same-run baseline."""
    import matplotlib  # noqa: PLC0415 - a dev dependency, only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.25, 1]})
    figure.suptitle("Syncline on the local stack (2 cores, moto server, embedded PostgreSQL)", fontsize=12)

    _latency_panel(latency, results)
    _throughput_panel(throughput, results)

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)
    return path


def _latency_panel(latency: Any, results: dict[str, dict[str, Any]]) -> None:
    groups: list[tuple[str, dict[str, float]]] = []
    if incremental := results.get("incremental"):
        for phase in ("steady", "burst"):
            data = incremental[phase]
            groups.append((f"ERP → storefront\n{phase}", {k: data[f"{k}_ms"] for k in ("p50", "p99", "max")}))
    if webhook := results.get("webhook"):
        groups += [
            (f"webhook\n{step['concurrency']} sender(s)", {"p50": step["p50_ms"], "p99": step["p99_ms"]})
            for step in webhook["ramp"]
        ]
    colours = {"p50": "#4C72B0", "p99": "#DD8452", "max": "#8C8C8C"}
    width = 0.27
    for index, (_, values) in enumerate(groups):
        for offset, (name, value) in enumerate(values.items()):
            x = index + (offset - 1) * width
            latency.bar(x, value, width, color=colours[name], label=name)
            if name != "max" or value != values.get("p99"):
                latency.text(x, value * 1.08, f"{value:,.0f}", ha="center", fontsize=7)
    latency.set_yscale("log")
    latency.set_ylim(top=max(v for _, values in groups for v in values.values()) * 3)
    latency.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8)
    latency.set_ylabel("latency, ms (log scale)")
    latency.axhline(2000, color="#C44E52", linestyle="--", linewidth=1, label="target p99, ERP → storefront: 2 s")
    latency.axhline(50, color="#C44E52", linestyle=":", linewidth=1, label="target p99, webhook: 50 ms")
    handles, labels = latency.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    latency.legend(unique.values(), unique.keys(), loc="upper right", fontsize=7, ncol=2)
    latency.set_title("Latency percentiles", fontsize=10)


def _throughput_panel(throughput: Any, results: dict[str, dict[str, Any]]) -> None:
    bars: list[tuple[str, float, float | None, str]] = []  # label, measured, baseline, baseline label
    if backfill := results.get("backfill"):
        copy_rate = backfill["rows"] / backfill["copy_seconds"]
        bars.append(("backfill\nrows/s", backfill["rows_per_s"], copy_rate, "raw COPY"))
    if incremental := results.get("incremental"):
        moto = incremental["baseline"]["moto_conditional_puts_per_s"]
        bars.append(("incremental burst\nchanges/s", incremental["burst"]["throughput_per_s"], moto, "moto PutItem/s"))
    if engine := results.get("engine"):
        states = engine["state_commit"]
        bars.append(
            ("engine events/s per core\n(transaction)", states["transaction"]["events_per_s_per_core"], 5000, "target")
        )
        bars.append(
            ("engine events/s per core\n(per_key, local)", states["per_key"]["events_per_s_per_core"], None, "")
        )
    if webhook := results.get("webhook"):
        bars.append(("webhook req/s\n(1 sender)", webhook["rps"], 100, "target"))
    for index, (_, measured, baseline, baseline_label) in enumerate(bars):
        throughput.barh(index, measured, 0.55, color="#55A868")
        throughput.text(max(measured, baseline or 0) * 1.25, index, f"{measured:,.0f}", va="center", fontsize=8)
        if baseline is not None:
            throughput.plot([baseline, baseline], [index - 0.38, index + 0.38], color="black", linewidth=2)
            throughput.text(baseline * 1.1, index + 0.44, f"{baseline_label}: {baseline:,.0f}", fontsize=7, va="center")
    throughput.set_xscale("log")
    throughput.set_xlim(10, 3 * 10**6)
    throughput.set_yticks(range(len(bars)), [label for label, *_ in bars], fontsize=8)
    throughput.invert_yaxis()
    throughput.set_xlabel("per second (log scale); black tick: baseline or target of the same run")
    throughput.set_title("Throughput against baselines", fontsize=10)


def markdown(summary: dict[str, Any]) -> str:
    """The figures and cost tables as they appear in docs/PERFORMANCE.md."""
    lines = ["| benchmark | figure | measured | baseline (same run) | target |", "| --- | --- | ---: | --- | --- |"]
    for row in summary["figures"]:
        mark = {True: " ✔", False: " ✘", None: ""}[row["meets"]]
        lines.append(
            f"| {row['benchmark']} | {row['figure']} | {row['measured']:,} {row['unit']} | {row['baseline']} | "
            f"{row['target']}{mark} |"
        )
    costs = summary["cost"]["per_million_synced_events"]
    if costs:
        strategies = list(costs)
        lines += ["", f"| USD per million synced events | {' | '.join(f'`{s}`' for s in strategies)} |"]
        lines.append("| --- |" + " ---: |" * len(strategies))
        for item in costs[strategies[0]]:
            lines.append(
                f"| {item.replace('_', ' ')} | " + " | ".join(f"{costs[s][item]:.4f}" for s in strategies) + " |"
            )
    webhook = summary["cost"]["per_million_webhook_deliveries"]
    lines += ["", "| USD per million webhook deliveries | |", "| --- | ---: |"]
    lines += [f"| {item.replace('_', ' ')} | {value:.4f} |" for item, value in webhook.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of benchmark JSON files")
    parser.add_argument("--chart", type=Path, default=CHART, help="where to write the PNG")
    args = parser.parse_args()
    results = load_results(args.results)
    if not results:
        print(f"no results in {args.results}: run the benchmarks first (make bench)", file=sys.stderr)
        return 1
    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {name: data.get("measured_at") for name, data in results.items()},
        "machine": next((data["machine"] for data in results.values() if "machine" in data), {}),
        "figures": figures(results),
        "cost": cost(results),
        "chart": str(chart(results, args.chart).relative_to(REPO)),
    }
    (args.results / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
