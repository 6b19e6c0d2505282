"""``syncline``: the command line for the local stack today, and for operating Syncline as it grows.

Examples:
  syncline demo                 run the demo scenario on a fresh local stack and print a summary
  syncline local up             start the local stack, poll the ERP on its schedule, Ctrl-C to stop
  syncline local status         what the running local stack holds (queues, DLQs, row counts)
  syncline status               health at a glance: last sync and lag per pair, backlog, DLQ depths
  syncline dlq list             what could not be synced, and why (reads without consuming)
  syncline dlq redrive          send it back once the cause is fixed (--dry-run first)
  syncline reconcile PAIR       full compare of ERP and storefront (--apply repairs)
  syncline backfill PAIR        initial or catch-up load through the bulk path, resumable
  syncline import FILE --mapping M   stock counts from a CSV or Excel export (--dry-run first)
  syncline replay --from T      send a window of notices again from the event archive
  syncline conflicts list       records no policy settles; `conflicts resolve ID --take SYSTEM` decides
  syncline map list ENTITY      which id a record has in each system (`map set` attaches one)

Operations commands act on the local stack when `syncline local up` runs here, else on AWS
(--endpoint-url, --profile, --region, --aws choose explicitly). Exit codes: 0 ok, 1 error,
2 usage or refused, 3 not found / nothing to talk to, 4 done but needs attention.
See docs/OPERATIONS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

STATE_FILE = Path(".local") / "stack.json"


def main(argv: list[str] | None = None) -> int:
    # pgserver asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset: noise for users.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        result: int = args.run(args)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        known = _exit_code(exc)
        if known is not None:
            print(f"syncline: {known[1]}", file=sys.stderr)
            return known[0]
        print(f"syncline: error: {exc}", file=sys.stderr)
        return 1
    return result


def _exit_code(exc: Exception) -> tuple[int, str] | None:
    """(exit code, message) for the errors scripts tell apart (see ``syncline.ops.commands``); None otherwise."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError  # noqa: PLC0415

    from syncline.config import ConfigError  # noqa: PLC0415
    from syncline.ops.commands import EXIT_NOT_FOUND, EXIT_USAGE, NotFound  # noqa: PLC0415
    from syncline.ops.wiring import TargetUnavailable  # noqa: PLC0415

    if isinstance(exc, EndpointConnectionError):
        return EXIT_NOT_FOUND, f"{exc}: is the local stack running (`syncline local up`)? --aws acts on AWS"
    if isinstance(exc, NoRegionError | NoCredentialsError):
        return (
            EXIT_NOT_FOUND,
            f"{exc} (no local stack here: pass --profile/--region for AWS, or start `syncline local up`)",
        )
    if isinstance(exc, NotFound | TargetUnavailable | LookupError):
        return EXIT_NOT_FOUND, str(exc).strip("'\"")
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, str(exc)
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncline",
        description="Syncline keeps your ERP, stores, OMS, CRM and CMMS in agreement. "
        "This CLI runs the local stack and operates Syncline (local or AWS); see README.md and docs/OPERATIONS.md.",
        epilog=__doc__.split("Examples:", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the demo scenario on a fresh local stack",
        description="Start a throwaway local stack (moto server, embedded PostgreSQL, Shopify and Fracttal "
        "sandboxes), load a small Sage 300 company, sync it to the PostgreSQL storefront, two Shopify stores (kept "
        "in agreement with each other), the OMS and the CMMS through the real handlers, and print what was synced, "
        "latency, what went to the DLQ and why, and a table per sync pair. Exit 0 when everything agrees.",
    )
    demo.add_argument("--items", type=int, default=200, help="ERP items (each at 3 locations); default 200")
    demo.add_argument("--changes", type=int, default=40, help="stock movements in round 2; default 40")
    demo.add_argument("--seed", type=int, default=42, help="random seed, for a repeatable run")
    demo.add_argument("--database-url", help="use this PostgreSQL server instead of the embedded one")
    demo.add_argument("--json", action="store_true", help="also print the figures as JSON")
    demo.set_defaults(run=_demo)

    local = commands.add_parser("local", help="the local stack: up, status").add_subparsers(
        title="local commands", metavar="COMMAND"
    )
    up = local.add_parser(
        "up",
        help="start the local stack and run its schedules until Ctrl-C",
        description="Start a moto server (AWS) and PostgreSQL (embedded, or --database-url), create every resource "
        "from syncline.toml's topology, then run the ERP poller on its schedule and deliver queued messages to the "
        "sync worker. Connection details are written to .local/stack.json for `syncline local status`.",
    )
    up.add_argument("--database-url", help="PostgreSQL server to use instead of the embedded one (also DATABASE_URL)")
    up.add_argument("--config", help="configuration file (default: functions/syncline.toml)")
    up.add_argument("--poll-every", type=float, help="seconds between ERP polls (default: the configured rate)")
    up.add_argument("--seed-items", type=int, default=0, help="load this many demo items into the emulated ERP first")
    up.add_argument("--once", action="store_true", help="start, run one poll and delivery round, report, and stop")
    up.set_defaults(run=_local_up)

    status = local.add_parser(
        "status",
        help="report the running local stack's state",
        description="Read .local/stack.json and report queue and DLQ depths and row counts.",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_local_status)

    from syncline.ops.commands import add_commands, add_map_commands  # noqa: PLC0415

    add_commands(commands)
    add_map_commands(commands)
    from syncline.ops.conflict_commands import add_conflict_commands  # noqa: PLC0415

    add_conflict_commands(commands)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from syncline.local.demo import run_demo  # noqa: PLC0415 - keeps `syncline --help` fast

    figures = run_demo(items=args.items, changes=args.changes, seed=args.seed, database_url=args.database_url)
    if args.json:
        print(json.dumps(figures, indent=2))
    consistency, stores, prices = figures["consistency"], figures["stores_agree"], figures["prices"]
    agree = (
        consistency["in_agreement"] == consistency["syncable"]
        and stores["equal"] == stores["compared"]
        and figures["crm_agrees"]
        and prices["storefront_agree"] == prices["syncable"]
        and prices["stores_agree"] == prices["store_prices"]
    )
    return 0 if agree else 1


def _local_up(args: argparse.Namespace) -> int:
    from decimal import Decimal  # noqa: PLC0415

    from syncline.local.sage300 import Stock  # noqa: PLC0415
    from syncline.local.stack import LocalStack  # noqa: PLC0415

    stack = LocalStack.up(config_path=args.config, database_url=args.database_url, work_dir=Path(".local").resolve())
    try:
        if args.seed_items:
            erp = stack.erp()
            erp.add_items([(f"SKU-{i:04d}", f"Item {i}") for i in range(args.seed_items)])
            erp.set_stock(
                Stock(f"SKU-{i:04d}", loc, Decimal(i % 100)) for i in range(args.seed_items) for loc in ("1", "2", "3")
            )
        _write_state(stack)
        _print_status(stack.status())
        every = args.poll_every or stack.config.poller.rate_seconds
        print(f"Polling the ERP every {every:g} s; Ctrl-C to stop.", file=sys.stderr)
        while True:
            invocation = stack.poll_erp()
            outcomes = stack.drain()
            emitted = sum(s["emitted"] for s in invocation.response["streams"])
            delivered = sum(o.received for o in outcomes)
            print(
                f"{time.strftime('%H:%M:%S')} poll: {emitted} notices · delivered {delivered} message(s)",
                file=sys.stderr,
            )
            if args.once:
                _print_status(stack.status())
                return 0
            time.sleep(every)
    finally:
        stack.down()
        STATE_FILE.unlink(missing_ok=True)


def _write_state(stack: Any) -> None:
    STATE_FILE.parent.mkdir(exist_ok=True)
    STATE_FILE.write_text(
        json.dumps(
            {
                "moto_endpoint": stack.moto.endpoint,
                "postgres": stack.postgres.admin_conninfo,
                "queues": {qid: {"url": q.url, "dlq_url": q.dlq_url} for qid, q in stack.resources.queues.items()},
                "table": stack.resources.table,
                "endpoints": {name: sandbox.url for name, sandbox in stack.sandboxes.items()},
            },
            indent=2,
        )
    )


def _local_status(args: argparse.Namespace) -> int:
    if not STATE_FILE.exists():
        print(
            "No local stack is running here (no .local/stack.json). Start one with: syncline local up", file=sys.stderr
        )
        return 3
    import boto3  # noqa: PLC0415
    import psycopg  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

    from syncline.local.moto_server import LOCAL_CREDENTIALS, LOCAL_REGION  # noqa: PLC0415

    state = json.loads(STATE_FILE.read_text())
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["moto_endpoint"],
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )
    queues = {}
    for queue_id, urls in state["queues"].items():
        depths = {}
        for label, url in (("queue", urls["url"]), ("dlq", urls["dlq_url"])):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]
            depths[label] = int(attributes["ApproximateNumberOfMessages"])
        queues[queue_id] = depths
    params = conninfo_to_dict(state["postgres"])
    counts = {}
    for database, table in (("sage300", "ICILOC"), ("storefront", "inventory_levels")):
        params["dbname"] = database
        with psycopg.connect(make_conninfo("", **params)) as connection:
            row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[database] = row[0] if row else 0
    report = {
        "moto_endpoint": state["moto_endpoint"],
        "queues": queues,
        "erp_rows": counts["sage300"],
        "storefront_rows": counts["storefront"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(report)
    return 0


def _print_status(status: dict[str, Any]) -> None:
    print(f"AWS (moto server): {status['moto_endpoint']}")
    for queue_id, depth in status["queues"].items():
        print(f"  queue {queue_id}: {depth['queue']} waiting · DLQ {depth['dlq']}")
    print(f"ERP rows (ICILOC): {status['erp_rows']} · storefront rows: {status['storefront_rows']}")


if __name__ == "__main__":
    sys.exit(main())
