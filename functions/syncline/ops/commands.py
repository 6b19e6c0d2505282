"""The operations commands of ``syncline``: thin argparse front-ends over ``syncline.ops``.

Exit codes (the same for every command, so scripts can trust them):
  0  done, and nothing needs attention
  1  error: the command could not do its work (the message says why)
  2  usage error, or a destructive command refused without confirmation
  3  nothing to act on: no local stack / endpoint unreachable, no such message, pair or job
  4  done, but something needs attention: messages in a DLQ (list), moves that failed (redrive),
     discrepancies (reconcile), an unhealthy report (status), rows rejected (backfill)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from syncline.ops.timeparse import age_text, parse_time

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_ATTENTION = 0, 1, 2, 3, 4

TARGET_HELP = """where the command acts (first match wins):
  --endpoint-url URL        that endpoint (a moto server); test credentials if none are configured
  --aws/--profile/--region  AWS, with boto3's credential chain
  .local/stack.json         the local stack started here by `syncline local up`
  otherwise                 AWS with boto3's defaults (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL)
The target is printed on stderr before anything happens."""


class NotFound(LookupError):
    """Exit 3: the thing asked for does not exist."""


def target_options() -> argparse.ArgumentParser:
    """Options every operations command takes (a parent parser)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("target (see `syncline dlq --help`)")
    group.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint override (moto server, LocalStack)")
    group.add_argument("--profile", help="AWS named profile")
    group.add_argument("--region", help="AWS region")
    group.add_argument("--aws", action="store_true", help="act on AWS even if a local stack is running here")
    group.add_argument("--config", metavar="FILE", help="configuration file (default: functions/syncline.toml)")
    return parent


def json_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return parent


def add_commands(commands: Any) -> None:
    """Register ``dlq``, ``reconcile``, ``status`` and ``backfill`` on the root parser's subparsers."""
    target, as_json = target_options(), json_option()
    filters = _filter_options()
    formatter = argparse.RawDescriptionHelpFormatter

    dlq = commands.add_parser(
        "dlq",
        help="dead-letter queues: list, show, redrive, purge",
        description="Inspect what could not be synced, and send it back once the cause is fixed.\n\n"
        "A DLQ holds two kinds of message: a dead letter the worker parked (a record that cannot sync as is: "
        "the reason, stage and ERP row are inside), and an event SQS moved after five failed deliveries "
        "(a transient failure that outlasted the retries). Both go back unchanged; the worker is idempotent.\n\n"
        + TARGET_HELP,
        formatter_class=formatter,
    ).add_subparsers(title="dlq commands", metavar="COMMAND")

    listing = dlq.add_parser(
        "list",
        parents=[target, as_json, filters],
        help="messages in every DLQ, with reason, source, keys and age (nothing is consumed)",
        description="Read every message of the DLQs and make each visible again at once: listing consumes "
        "nothing. Exit 0 when the listed DLQs are empty, 4 when they hold messages.",
        epilog="examples:\n  syncline dlq list\n  syncline dlq list --error 'not mapped' --since 2h\n"
        "  syncline dlq list --source sage300 --json | jq '.[].keys'",
        formatter_class=formatter,
    )
    listing.add_argument("--limit", type=int, default=1000, help="read at most this many per queue (default 1000)")
    listing.set_defaults(run=_dlq_list)

    show = dlq.add_parser(
        "show",
        parents=[target, as_json],
        help="one message with its full context (notice, ERP row, attributes)",
        description="Find a message by its id (or a unique prefix of it, as `dlq list` prints) and print "
        "everything it carries. Exit 3 when no message has that id.",
        formatter_class=formatter,
    )
    show.add_argument("id", help="message id or a unique prefix")
    show.add_argument("--queue", help="queue id, name or target (default: every queue)")
    show.set_defaults(run=_dlq_show)

    redrive = dlq.add_parser(
        "redrive",
        parents=[target, as_json, filters],
        help="send messages back to their queue once the cause is fixed",
        description="Send DLQ messages back to the queue they came from. Without filters the whole queue goes "
        "with SQS StartMessageMoveTask (server-side) where the service offers it; with filters, or where it does "
        "not (moto), messages move one by one: sent first, deleted after, so a crash can duplicate a message "
        "(harmless: the worker is idempotent) but never lose one. Unparsable messages are skipped: they can never "
        "sync. Exit 0 when every selected message moved, 4 when some failed.",
        epilog="examples:\n  syncline dlq redrive --dry-run\n  syncline dlq redrive --error 'not mapped' --rate 20\n"
        "  syncline dlq redrive --id 3f2a9c1e",
        formatter_class=formatter,
    )
    redrive.add_argument("--dry-run", action="store_true", help="report what would move; move nothing")
    redrive.add_argument("--rate", type=_rate, metavar="N/s", help="at most N messages per second (e.g. 20 or 20/s)")
    redrive.add_argument(
        "--id", action="append", default=[], dest="ids", metavar="ID", help="only this message (repeatable)"
    )
    redrive.add_argument(
        "--one-by-one", action="store_true", help="never use StartMessageMoveTask, even for the whole queue"
    )
    redrive.set_defaults(run=_dlq_redrive)

    purge = dlq.add_parser(
        "purge",
        parents=[target, as_json],
        help="delete every message of a DLQ (asks first; --yes for scripts)",
        description="Delete every message of the DLQ(s) for good. Asks for the queue name to be typed back; "
        "--yes skips the question (scripts). Without a terminal and without --yes it refuses (exit 2). "
        "Consider `dlq list --json > saved.json` first.",
        formatter_class=formatter,
    )
    purge.add_argument("--queue", help="queue id, name or target (default: every queue)")
    purge.add_argument("--yes", action="store_true", help="do not ask")
    purge.set_defaults(run=_dlq_purge)

    reconcile = commands.add_parser(
        "reconcile",
        parents=[target, as_json],
        help="full compare of a pair's two sides; --apply repairs through the pair's write path",
        description="Read every record on both sides of a pair and classify each key: missing in the target, "
        "missing in the source (deleted in the ERP or removed from a store: no notice ever says so), mismatched "
        "values, target ahead of the source (never overwritten), stale version (content equal; informational). "
        "Prints a summary with the consistency ratio (records in agreement / records compared) and writes the "
        "full JSON report.\n\n"
        "covered pairs:\n"
        "  one-way inventory_level from sage300 into postgres (every synced field), shopify (the store's "
        "quantity),\n  fracttal (spare-part stock) or rest (the mapped fields, through the declared list endpoint);\n"
        "  one-way price from sage300 into postgres (the prices table) or shopify (variant prices of mapped SKUs);\n"
        "  one-way order from shopify into oms (status, payment, total, lines); one-way shipment from oms into\n"
        "  shopify (each shipped parcel fulfilled in the store); two-way pairs between postgres, shopify, hubspot,\n"
        "  oms, salesforce (contacts, one SOQL query) and rest (the declared list endpoint).\n"
        "  Any other pair exits 2 and says why (e.g. a rest target declaring no list endpoint).\n\n"
        "--apply then repairs in batches through the pair's normal write path, never from the compare's snapshot: "
        "one-way, the current ERP rows are written as the sync worker writes them (version guard or "
        "compare-and-swap, state cache committed); a storefront row the ERP lost is deleted after a re-check, "
        "but a Shopify product, a Fracttal part or a rest system's record is never deleted (left, with a note saying "
        "why). Prices are written through the price worker's path; a price the ERP lacks is left. Two-way, the "
        "pair's own sync runs for each differing key, so its conflict policy decides; what no rule settles goes "
        "to `syncline conflicts list`. Orders and shipments are re-run through their worker (fetched fresh, guarded upsert or a fulfilment "
        "created once). A second compare verifies the result.\n\n"
        "Exit 0 when the pair agrees (after --apply: when it converged), 4 when discrepancies remain (read the "
        "notes), 2 for a pair not covered, 1 when a system stopped answering (fix it and run again: --apply is "
        "safe to repeat).",
        epilog="examples:\n  syncline reconcile erp-storefront-inventory            # dry run\n"
        "  syncline reconcile erp-storefront-inventory --apply --report /tmp/recon.json\n"
        "  syncline reconcile erp-store-a --json | jq .before.counts   # a Shopify target\n"
        "  syncline reconcile stores-products --apply                  # a two-way pair: its policy decides",
        formatter_class=formatter,
    )
    reconcile.add_argument("pair", help="sync pair name from syncline.toml")
    mode = reconcile.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="compare and report only (the default)")
    mode.add_argument("--apply", action="store_true", help="compare, repair, compare again")
    reconcile.add_argument("--entity", help="entity to reconcile (default: the pair's own; exit 3 if it names another)")
    reconcile.add_argument("--report", metavar="FILE", help="JSON report path (default: reconcile-PAIR-TIME.json here)")
    reconcile.add_argument(
        "--page-size",
        type=int,
        default=5000,
        help="records per read page (default 5000; Shopify reads at most 250 per request)",
    )
    reconcile.add_argument("--batch-size", type=int, default=500, help="records per repair batch (default 500)")
    reconcile.add_argument("--show", type=int, default=20, help="discrepancies printed (default 20; all in the report)")
    reconcile.set_defaults(run=_reconcile)

    status = commands.add_parser(
        "status",
        parents=[target, as_json],
        help="health at a glance: last sync and lag per pair, conflicts, backlog, DLQ depths and ages, errors",
        description="One report from what Syncline stores: per pair the last successful sync (newest state "
        "item), the newest ERP change the poller detected, the lag (how long work has waited with nothing "
        "synced) and the conflicts waiting for a person (pending and escalated); per queue the backlog, the DLQ "
        "depth, its oldest message's age and the failures of the last hour. Levels: unhealthy (lag or errors "
        "over their limit), degraded (messages in a DLQ, backlog or conflicts over their limit), healthy.\n\n"
        "Limits come from [monitoring] in syncline.toml (defaults, and [monitoring.pairs.<pair>] per pair); "
        "a flag below replaces that limit for every pair. Exit 0 when healthy, 4 otherwise.",
        epilog="examples:\n  syncline status\n  syncline status --json --quick\n  syncline status --max-lag 900",
        formatter_class=formatter,
    )
    status.add_argument("--max-lag", type=float, metavar="S", help="unhealthy above S seconds of lag (config: 300)")
    status.add_argument(
        "--max-errors", type=int, metavar="N", help="unhealthy above N failures/hour per queue (config: 10)"
    )
    status.add_argument(
        "--max-conflicts", type=int, metavar="N", help="degraded above N conflicts waiting per pair (config: 0)"
    )
    status.add_argument("--max-backlog", type=int, metavar="N", help="degraded above N waiting (config: 5000)")
    status.add_argument("--max-dlq", type=int, metavar="N", help="degraded above N DLQ messages (config: 0)")
    status.add_argument(
        "--quick", action="store_true", help="skip the state-table scan behind 'last sync' (large tables)"
    )
    status.set_defaults(run=_status)

    backfill = commands.add_parser(
        "backfill",
        parents=[target, as_json],
        help="initial or catch-up load of a pair through the bulk path, resumable",
        description="Read every ERP row of the pair in keyset pages, map it with the sync's rules and load it "
        "with COPY (into an empty table) or COPY and one version-guarded merge (newer storefront rows are never "
        "replaced). A job record JOB#<id> in the state table remembers the last page loaded: after a crash or "
        "Ctrl-C, --resume <id> continues from there (one page may load twice, harmlessly). --since loads only "
        "rows changed since T (the ERP is still read in full: it has no index on the change stamp per row).\n\n"
        "Exit 0 when the job completed, 4 when it completed but some rows could not be mapped (they are listed; "
        "fix them in the ERP), 3 when --resume names no job.",
        epilog="examples:\n  syncline backfill erp-storefront-inventory\n"
        "  syncline backfill erp-storefront-inventory --since 2d\n"
        "  syncline backfill erp-storefront-inventory --resume bf-20261123T031500Z-1a2b3c",
        formatter_class=formatter,
    )
    backfill.add_argument("pair", help="sync pair name from syncline.toml")
    backfill.add_argument("--since", metavar="T", type=_time, help="only rows changed since T (ISO time or age)")
    backfill.add_argument("--resume", metavar="JOB", help="continue the job with this id")
    backfill.add_argument("--page-size", type=int, default=5000, help="rows per page and per recorded step")
    backfill.set_defaults(run=_backfill)

    _add_import(commands, target, as_json)
    _add_replay(commands, target, as_json)


def _add_import(commands: Any, target: argparse.ArgumentParser, as_json: argparse.ArgumentParser) -> None:
    importing = commands.add_parser(
        "import",
        parents=[target, as_json],
        help="stock counts from an ERP's CSV or Excel export, through the normal write path",
        description="Read a .csv or .xlsx export, map its columns with the mapping file (TOML or JSON: which column "
        "is SKU, barcode, location, quantity; header row; decimal separator; location codes), resolve barcodes "
        "through the identity map, check every SKU against the ERP item master and every location against the "
        "pair, then write on-hand quantities to the pair's target with the version guard and commit the state "
        "cache, as the sync worker does.\n\n"
        "All or nothing: if any row is invalid (unknown SKU or barcode, negative or non-numeric quantity, unmapped "
        "location, a SKU listed twice for one location) nothing is written and every invalid row is listed with "
        "its line number.\n\n"
        "--mode partial (default) writes the rows in the file. --mode full makes the file the whole truth for the "
        "locations it mentions: target rows there whose SKU the file omits are set to zero (not deleted).\n\n"
        "Rows carry the version of --as-of (default: the file's modification time): where the target already holds "
        "newer data the row is reported as target ahead and never overwritten.\n\n"
        "Exit 0 when the import applied (or, with --dry-run, would apply) cleanly; 4 when rows are invalid (nothing "
        "written) or rows were left because the target is ahead; 3 when the file or pair does not exist; 2 for a "
        "bad mapping file.",
        epilog="mapping file (TOML):\n"
        '  pair = "erp-storefront-inventory"\n'
        "  header_row = 1\n"
        '  decimal_separator = ","\n'
        "  [columns]\n"
        '  sku = "Item"        # or barcode = "EAN"; a header text or a column number\n'
        '  location = "Warehouse"\n'
        '  quantity = "Qty"\n'
        "  [locations]          # file value -> ERP location code (optional)\n"
        '  "Main" = "1"\n\n'
        "examples:\n  syncline import counts.csv --mapping counts.toml --dry-run\n"
        "  syncline import stock.xlsx --mapping stock.toml --mode full",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importing.add_argument("file", help="the export: .csv or .xlsx")
    importing.add_argument("--mapping", required=True, metavar="M", help="mapping file (.toml or .json)")
    importing.add_argument(
        "--pair", help="sync pair whose target the file updates (default: the mapping's, or the only pair)"
    )
    importing.add_argument(
        "--mode", choices=("partial", "full"), default="partial", help="partial (default) or full (see above)"
    )
    importing.add_argument(
        "--dry-run", action="store_true", help="validate and report what would change; write nothing"
    )
    importing.add_argument("--as-of", type=_time, metavar="T", help="when the file was exported (default: its mtime)")
    importing.add_argument("--batch-size", type=int, default=500, help="rows per write batch (default 500)")
    importing.add_argument("--show", type=int, default=20, help="invalid rows and changes printed (default 20)")
    importing.set_defaults(run=_import)


def _add_replay(commands: Any, target: argparse.ArgumentParser, as_json: argparse.ArgumentParser) -> None:
    replay = commands.add_parser(
        "replay",
        parents=[target, as_json],
        help="send the notices of a time window again, from the bus's event archive",
        description="Start an EventBridge replay of the notice archive for [--from, --to): the archived notices go "
        "back through the bus's rules to the sync queues. Safe to repeat: a notice is only a hint, the worker fetches "
        "the current row and skips what is already in sync, so nothing is applied twice and nothing old overwrites "
        "anything newer. Use it after notices were lost (a purged DLQ, a storefront restored from a backup); "
        "`syncline reconcile` is the full compare when you do not know the window.\n\n"
        "--source S replays only to the rules that route S's notices; notices of other sources on the same rules "
        "come along (a replay cannot filter on content; harmless, see above).\n\n"
        "Exit 0 when the replay completed, 1 when it failed or was cancelled, 4 when it was still running at "
        "--timeout (it goes on; see `aws events describe-replay`), 3 when there is no archive or no such source, "
        "2 for a reversed or future window.",
        epilog="examples:\n  syncline replay --from 2026-11-23T02:00Z --to 2026-11-23T04:00Z\n"
        "  syncline replay --from 6h --source sage300 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument(
        "--from", dest="start", type=_time, required=True, metavar="T", help="window start (ISO or age)"
    )
    replay.add_argument("--to", dest="end", type=_time, metavar="T", help="window end (default: now)")
    replay.add_argument("--source", metavar="S", help="only the rules routing this system's notices, e.g. sage300")
    replay.add_argument("--archive", help="archive name (default: the bus's notice archive)")
    replay.add_argument("--dry-run", action="store_true", help="resolve the archive and rules; start nothing")
    replay.add_argument("--no-wait", action="store_true", help="return once the replay has started")
    replay.add_argument(
        "--timeout", type=float, default=3600, metavar="S", help="wait at most S seconds (default 3600)"
    )
    replay.set_defaults(run=_replay)


def add_map_commands(commands: Any) -> None:
    """``syncline map list | set | unset``: the identity map (each record's id in each system)."""
    target, as_json = target_options(), json_option()
    formatter = argparse.RawDescriptionHelpFormatter
    mapping = commands.add_parser(
        "map",
        help="the identity map: which id a record has in each system",
        description="Each record is known by a canonical key (a SKU, or SKU|location for inventory). The map "
        "attaches each system's own id to it (a Shopify variant GID, a HubSpot id, the ERP ITEMNO). Matching by "
        "exact SKU or barcode fills it; what cannot be matched is reported, never guessed, and set here by hand.\n\n"
        + TARGET_HELP,
        formatter_class=formatter,
    ).add_subparsers(title="map commands", metavar="COMMAND")
    listing = mapping.add_parser("list", parents=[target, as_json], help="every mapped key of an entity")
    listing.add_argument("entity", help="e.g. variant, inventory_level, contact")
    listing.set_defaults(run=_map_list)
    setting = mapping.add_parser(
        "set",
        parents=[target, as_json],
        help="attach a system's id to a key",
        description="Attach SYSTEM's ID to KEY. Refused (exit 4) when the id is already attached to another key: "
        "unset it there first, so one id never points at two records.",
    )
    for name, text in (
        ("entity", "entity"),
        ("key", "canonical key, e.g. A-100"),
        ("system", "system name"),
        ("id", "the system's id"),
    ):
        setting.add_argument(name, help=text)
    setting.set_defaults(run=_map_set)
    unsetting = mapping.add_parser("unset", parents=[target, as_json], help="detach a system's id from a key")
    for name in ("entity", "key", "system"):
        unsetting.add_argument(name)
    unsetting.set_defaults(run=_map_unset)


def _identity_store(args: argparse.Namespace) -> Any:
    from syncline.adapters.identity_dynamodb import DynamoIdentityStore  # noqa: PLC0415

    ops = context(args)
    return ops, DynamoIdentityStore(ops.dynamodb, ops.table)


def _map_list(args: argparse.Namespace) -> int:
    from syncline.identity import describe  # noqa: PLC0415

    ops, store = _identity_store(args)
    identities = list(store.list(args.entity))
    systems = sorted({system for identity in identities for system in identity.ids} | set(ops.config.systems))
    rows = describe(identities, systems)
    if args.json:
        emit(rows)
    elif not rows:
        print(f"No {args.entity} is mapped yet. `syncline map set {args.entity} KEY SYSTEM ID` attaches one.")
    else:
        print("  ".join(f"{column:<24}" for column in ["key", *systems]))
        for row in rows:
            print("  ".join(f"{row[column]:<24}" for column in ["key", *systems]))
    return EXIT_OK


def _map_set(args: argparse.Namespace) -> int:
    from syncline.identity import AlreadyMapped  # noqa: PLC0415

    _, store = _identity_store(args)
    try:
        store.set(args.entity, args.key, args.system, args.id)
    except AlreadyMapped as exc:
        print(f"syncline: refused: {exc}", file=sys.stderr)
        return EXIT_ATTENTION
    if args.json:
        emit({"entity": args.entity, "key": args.key, "system": args.system, "id": args.id})
    else:
        print(f"{args.entity} {args.key}: {args.system} = {args.id}")
    return EXIT_OK


def _map_unset(args: argparse.Namespace) -> int:
    _, store = _identity_store(args)
    current = store.get(args.entity, args.key)
    if current is None or args.system not in current.ids:
        raise NotFound(f"{args.entity} {args.key} has no {args.system} id")
    store.unset(args.entity, args.key, args.system)
    print(f"{args.entity} {args.key}: {args.system} id {current.ids[args.system]} detached")
    return EXIT_OK


def _filter_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("filters")
    group.add_argument("--queue", help="queue id, name or target, e.g. storefront (default: every queue)")
    group.add_argument("--source", help="source system, e.g. sage300")
    group.add_argument("--error", metavar="TEXT", help="reason contains TEXT (case-insensitive)")
    group.add_argument("--since", metavar="T", type=_time, help="failed at or after T: ISO time or age (30m, 2h, 1d)")
    group.add_argument("--key", help="record key contains KEY, e.g. SKU-NEG")
    return parent


def _time(text: str) -> Any:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> float:
    try:
        value = float(text.lower().removesuffix("/s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate: use N or N/s") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the rate must be positive")
    return value


# -- plumbing ----------------------------------------------------------------------------------------
def context(args: argparse.Namespace) -> Any:
    from syncline.ops.wiring import OpsContext, resolve_target  # noqa: PLC0415 - keeps --help fast

    target = resolve_target(
        endpoint_url=args.endpoint_url, profile=args.profile, region=args.region, force_aws=args.aws
    )
    print(f"target: {target.label}", file=sys.stderr)
    return OpsContext(target, args.config)


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; ``advance(n)`` either way."""
    try:
        from rich.progress import Progress  # noqa: PLC0415
    except ImportError:  # rich is a dev dependency; the bar is a nicety
        yield lambda _n: None
        return
    from rich.console import Console  # noqa: PLC0415

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not (enabled and console.is_terminal)) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


# -- dlq ---------------------------------------------------------------------------------------------
def _selection(args: argparse.Namespace) -> Any:
    from syncline.ops.dlq import DlqFilter  # noqa: PLC0415

    return DlqFilter(
        source=args.source,
        error=args.error,
        since=args.since,
        key=args.key,
        ids=frozenset(getattr(args, "ids", []) or []),
    )


def _dlq_list(args: argparse.Namespace) -> int:
    from syncline.ops.dlq import now_utc, peek  # noqa: PLC0415

    ops = context(args)
    selection = _selection(args)
    now = now_utc()
    messages: list[Any] = []
    for spec in ops.queue_specs(args.queue):
        found = peek(ops.dead_letter_queue(spec), limit=args.limit)
        if len(found) >= args.limit:
            print(f"note: {spec.dlq_name}: read the first {args.limit} messages only (--limit)", file=sys.stderr)
        messages.extend(m for m in found if selection.matches(m))
    messages.sort(key=lambda m: m.when)
    if args.json:
        emit([m.summary(now) for m in messages])
    else:
        _print_messages(messages, now)
    return EXIT_ATTENTION if messages else EXIT_OK


def _print_messages(messages: list[Any], now: Any) -> None:
    if not messages:
        print("No messages in the dead-letter queues (that match).")
        return
    print(f"{'ID':<10} {'QUEUE':<16} {'SOURCE':<9} {'KEY':<18} {'STAGE':<6} {'RECV':>4} {'AGE':>8}  REASON")
    for m in messages:
        keys = m.keys[0] if len(m.keys) == 1 else (f"{len(m.keys)} keys" if m.keys else "-")
        print(
            f"{m.id[:8]:<10} {m.queue:<16} {m.source or '-':<9} {keys:<18} {m.stage or m.kind[:6]:<6} "
            f"{m.receive_count:>4} {age_text(m.age_seconds(now)):>8}  {m.reason}"
        )
    print(f"{len(messages)} message(s). `syncline dlq show ID` for one; fix the cause, then `syncline dlq redrive`.")


def _dlq_show(args: argparse.Namespace) -> int:
    from syncline.ops.dlq import now_utc, peek  # noqa: PLC0415

    ops = context(args)
    now = now_utc()
    matches = [
        m
        for spec in ops.queue_specs(args.queue)
        for m in peek(ops.dead_letter_queue(spec), limit=100_000)
        if m.id.startswith(args.id)
    ]
    if not matches:
        raise NotFound(f"no DLQ message with id {args.id!r} (ids change when a message is redriven)")
    if len(matches) > 1:
        raise NotFound(f"{len(matches)} messages start with {args.id!r}; give more of the id")
    detail = matches[0].detail(now)
    if args.json:
        emit(detail)
    else:
        for name in ("id", "queue", "kind", "reason", "stage", "pair", "source", "entity", "keys", "failed_at"):
            print(f"{name:>13}: {detail[name]}")
        print(f"{'age':>13}: {age_text(detail['age_seconds'])} · received {detail['receive_count']} time(s)")
        print(f"{'attributes':>13}: {json.dumps(detail['attributes'], sort_keys=True)}")
        print("         body:")
        print(json.dumps(detail["body"], indent=2, default=str))
    return EXIT_OK


def _dlq_redrive(args: argparse.Namespace) -> int:
    from syncline.ops.dlq import redrive  # noqa: PLC0415

    ops = context(args)
    selection = _selection(args)
    reports = []
    for spec in ops.queue_specs(args.queue):
        queue = ops.dead_letter_queue(spec)
        with progress(f"redrive {spec.id}", queue.depth(), enabled=not args.json) as advance:
            report = redrive(
                queue,
                selection,
                dry_run=args.dry_run,
                rate=args.rate,
                use_move_task=not args.one_by_one,
                on_progress=lambda _message, _what: advance(1),
            )
        reports.append(report)
    if args.json:
        emit([r.as_dict() for r in reports])
    else:
        verb = "would move" if args.dry_run else "moved"
        for r in reports:
            line = f"{r.queue}: {verb} {r.moved} · skipped {r.skipped} · failed {r.failed} ({r.method})"
            if r.not_deleted:
                line += f" · {r.not_deleted} sent but not deleted (will reappear; a duplicate is harmless)"
            print(line)
            for why, count in sorted(r.skipped_reasons.items()):
                print(f"  skipped {count}: {why}")
            for failure in r.failures[:20]:
                print(f"  {failure}")
            if r.note:
                print(f"  note: {r.note}")
    return EXIT_ATTENTION if any(r.failed or r.not_deleted for r in reports) else EXIT_OK


def _dlq_purge(args: argparse.Namespace) -> int:
    from syncline.ops.dlq import purge  # noqa: PLC0415

    ops = context(args)
    specs = ops.queue_specs(args.queue)
    queues = [ops.dead_letter_queue(spec) for spec in specs]
    names = ", ".join(spec.dlq_name for spec in specs)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"syncline: refusing to purge {names} without --yes (no terminal to ask on)", file=sys.stderr)
            return EXIT_USAGE
        depth = sum(queue.depth() for queue in queues)
        answer = input(f"Delete about {depth} message(s) from {names} for good? Type the word purge to confirm: ")
        if answer.strip() != "purge":
            print("Nothing purged.", file=sys.stderr)
            return EXIT_USAGE
    purged = purge(queues)
    if args.json:
        emit(purged)
    else:
        for queue_id, depth in purged.items():
            print(f"{queue_id}: purged about {depth} message(s)")
    return EXIT_OK


# -- reconcile ---------------------------------------------------------------------------------------
def pair_context(ops: Any, name: str) -> Any:
    from syncline.sync import pair_context as context_of  # noqa: PLC0415

    try:
        pair = ops.config.pair(name)
    except Exception as exc:
        raise NotFound(str(exc)) from None
    return context_of(ops.config, pair)


def _reconcile(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from syncline.ops import reconcile_sides  # noqa: PLC0415

    ops = context(args)
    try:
        declared = ops.config.pair(args.pair)
    except Exception as exc:
        raise NotFound(str(exc)) from None  # an unknown pair: exit 3
    reason = reconcile_sides.coverage(ops.config, declared)
    if reason is not None:
        print(f"syncline: {reason}", file=sys.stderr)
        return EXIT_USAGE
    if args.entity and args.entity != declared.entity:
        raise NotFound(f"pair {declared.name} syncs {declared.entity}, not {args.entity}")
    try:
        plan = reconcile_sides.reconciliation(ops.config, declared, _reconcile_collaborators(ops))
        with progress(f"compare {plan.pair}", None, enabled=not args.json) as advance:
            before = plan.compare(page_size=args.page_size, on_progress=advance)
        document: dict[str, Any] = {"mode": "apply" if args.apply else "dry-run", "before": before.as_dict()}
        final = before
        if args.apply and before.discrepancies:
            with progress(f"repair {plan.pair}", len(before.discrepancies), enabled=not args.json) as advance:
                applied = plan.apply(before, batch_size=args.batch_size, on_progress=advance)
            final = plan.compare(page_size=args.page_size)
            document |= {"applied": applied.as_dict(), "after": final.as_dict()}
    except Exception as exc:
        if isinstance(exc, LookupError) or type(exc).__module__.startswith("botocore"):
            raise  # exit 3 with the CLI's own advice (unknown pair or system, no local stack)
        print(
            f"syncline: reconcile of {declared.name} stopped: {exc}\n"
            f"  check that {declared.source} and {declared.target} answer (`syncline status`), then run it again; "
            "--apply is safe to repeat (every write is guarded)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    finally:
        ops.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(args.report or f"reconcile-{plan.pair}-{stamp}.json")
    path.write_text(json.dumps(document, indent=2, default=str))
    if args.json:
        emit(document)
    else:
        _print_compare("before" if args.apply else "compare", before, args.show)
        if "applied" in document:
            a = document["applied"]
            print(
                f"repaired: {a['upserted']} upserted · {a['deleted']} deleted · {a['resynced']} re-synced by the "
                f"pair's policy · {a['unchanged']} not written (already current, newer, or refused) · {a['kept']} "
                f"kept (back in the source) · {a['left']} left (see notes) · {len(a['review'])} sent to review "
                f"(syncline conflicts list) · {a['busy']} busy · {len(a['rejected'])} rejected"
            )
            _print_compare("after", final, args.show)
        print(f"report: {path}")
    return EXIT_ATTENTION if final.discrepancies else EXIT_OK


def _reconcile_collaborators(ops: Any) -> Any:
    from syncline.adapters.dynamodb import DynamoStateStore  # noqa: PLC0415
    from syncline.adapters.eventbridge import EventBridgePublisher  # noqa: PLC0415
    from syncline.erp.sage300 import Sage300Reader  # noqa: PLC0415
    from syncline.ops.reconcile_sides import Collaborators  # noqa: PLC0415

    def erp(name: str) -> Any:
        connection = ops.connection(name, read_only=True)
        return Sage300Reader(lambda: connection)

    # An order a repair writes into the OMS announces itself (OrderReceived / OrderStatusChanged), and a fulfilment it
    # creates in a store ShipmentCreated, as the workers' do.
    bus = EventBridgePublisher(ops.client("events"), ops.topology.bus_name)
    return Collaborators(
        systems=ops.systems,
        erp=erp,
        state=lambda: DynamoStateStore(ops.dynamodb, ops.table),
        twoway=ops.twoway,
        review=ops.conflict_review,
        publish=bus.publish_event,
    )


def _print_compare(label: str, report: Any, show: int) -> None:
    counts = report.counts()
    print(
        f"{label}: {report.pair} ({report.source} -> {report.target}) · {report.compared} compared · "
        f"{report.in_agreement} in agreement · consistency {report.consistency:.4%}"
    )
    print(
        "  "
        + " · ".join(f"{kind.replace('_', ' ')} {count}" for kind, count in counts.items())
        + f" · stale version {report.stale_versions} (informational) · unmappable {report.unmappable} (see dlq list)"
    )
    for d in report.discrepancies[:show]:
        fields = ", ".join(f"{name} {source}→{target}" for name, (source, target) in d.fields.items())
        print(f"  {d.kind:<18} {d.key:<24} {fields}")
    if len(report.discrepancies) > show:
        print(f"  ... {len(report.discrepancies) - show} more in the report")
    notes: dict[str, int] = {}
    for d in report.discrepancies:
        if d.note:
            notes[d.note] = notes.get(d.note, 0) + 1
    for note, count in notes.items():
        print(f"  note ({count}): {note}")


# -- status ------------------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    from syncline.ops.dlq import now_utc  # noqa: PLC0415
    from syncline.ops.health import assess, conflict_figures, pair_thresholds  # noqa: PLC0415
    from syncline.ops.wiring import health_figures  # noqa: PLC0415

    ops = context(args)
    pairs, queues = health_figures(ops, scan_state=not args.quick)
    defaults, per_pair = pair_thresholds(
        ops.config.monitoring,
        [pair.pair for pair in pairs],
        {
            "max_lag_seconds": args.max_lag,
            "max_errors_per_hour": args.max_errors,
            "max_pending_conflicts": args.max_conflicts,
            "max_backlog": args.max_backlog,
            "max_dlq": args.max_dlq,
        },
    )
    conflicts = conflict_figures(ops.conflict_review().store)
    report = assess(pairs, queues, now=now_utc(), thresholds=defaults, per_pair=per_pair, conflicts=conflicts)
    if args.json:
        emit(report.as_dict())
    else:
        print(f"Syncline is {report.level.upper()}")
        for reason in report.reasons:
            print(f"  ! {reason}")
        for pair in report.pairs:
            print(
                f"pair {pair['pair']}: last sync {age_text(pair['since_last_sync_seconds'])} ago · "
                f"lag {age_text(pair['lag_seconds'])} · newest ERP change detected {pair['last_change_detected'] or '-'} · "
                f"conflicts {pair['conflicts_pending']} pending, {pair['conflicts_escalated']} escalated"
            )
        for queue in report.queues:
            print(
                f"queue {queue['queue']}: backlog {queue['backlog']} ({queue['waiting']} waiting, "
                f"{queue['in_flight']} in flight) · DLQ {queue['dlq']} (oldest {age_text(queue['dlq_oldest_age_seconds'])}) · "
                f"{queue['errors_last_hour']} failure(s) in the last hour"
            )
    return EXIT_OK if report.level == "healthy" else EXIT_ATTENTION


# -- backfill ----------------------------------------------------------------------------------------
def _backfill(args: argparse.Namespace) -> int:
    from syncline.adapters.jobs import DynamoJobStore  # noqa: PLC0415
    from syncline.adapters.storefront_pg import PostgresStorefront  # noqa: PLC0415
    from syncline.erp.sage300 import Sage300Reader  # noqa: PLC0415
    from syncline.ops.jobs import backfill_coverage, new_job, run_backfill  # noqa: PLC0415

    ops = context(args)
    declared = ops.config.pair(args.pair)
    reason = backfill_coverage(ops.config, declared)  # e.g. a price pair: its rows are not ICILOC's
    if reason is not None:
        print(f"syncline: {reason}", file=sys.stderr)
        return EXIT_USAGE
    pair = pair_context(ops, args.pair)
    jobs = DynamoJobStore(ops.dynamodb, ops.table)
    if args.resume:
        job = jobs.load(args.resume)
        if job is None:
            raise NotFound(f"no backfill job {args.resume!r} in {ops.table}")
        if job.pair != pair.name:
            raise NotFound(f"job {job.id} is for pair {job.pair}, not {pair.name}")
        if args.since:
            print("note: --since is ignored with --resume (the job keeps its own)", file=sys.stderr)
    else:
        job = new_job(pair.name, since=args.since, page_size=args.page_size)
    print(
        f"job {job.id}: {'resuming after ' + '|'.join(job.position) if job.position else 'starting'}", file=sys.stderr
    )
    try:
        erp = ops.connection(pair.source, read_only=True)
        store = ops.connection(ops.config.pair(pair.name).target, read_only=False)
        with progress(f"backfill {pair.name}", None, enabled=not args.json) as advance:
            seen = {"read": job.read}

            def report(step: Any) -> None:
                advance(step.read - seen["read"])
                seen["read"] = step.read

            try:
                job = run_backfill(
                    job,
                    source=Sage300Reader(lambda: erp),
                    target=PostgresStorefront(lambda: store),
                    jobs=jobs,
                    pair=pair,
                    on_progress=report,
                )
            except Exception:
                print(
                    f"job {job.id} stopped; continue with: syncline backfill {pair.name} --resume {job.id}",
                    file=sys.stderr,
                )
                raise
    finally:
        ops.close()
    if args.json:
        emit(job.as_dict())
    else:
        print(
            f"job {job.id} {job.status}: read {job.read} ERP rows in {job.pages} page(s) · loaded {job.loaded} · "
            f"rejected {job.rejected}"
        )
        for key, reason in job.rejects:
            print(f"  rejected {key}: {reason}")
    return EXIT_ATTENTION if job.rejected else EXIT_OK


# -- import ------------------------------------------------------------------------------------------
def _import(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from syncline.adapters.dynamodb import DynamoStateStore  # noqa: PLC0415
    from syncline.adapters.identity_dynamodb import DynamoIdentityStore  # noqa: PLC0415
    from syncline.adapters.storefront_pg import PostgresStorefront  # noqa: PLC0415
    from syncline.erp.sage300 import Sage300Reader  # noqa: PLC0415
    from syncline.ops import file_import  # noqa: PLC0415

    path = Path(args.file)
    if not path.is_file():
        raise NotFound(f"no file {path}")
    mapping = file_import.load_mapping(args.mapping)
    ops = context(args)
    name = args.pair or mapping.pair
    if name is None:
        if len(ops.config.pairs) != 1:
            raise NotFound("several pairs are configured: name one with --pair or `pair` in the mapping file")
        name = ops.config.pairs[0].name
    pair = pair_context(ops, name)
    as_of = args.as_of or datetime.fromtimestamp(path.stat().st_mtime, UTC)
    print(f"import {path.name} into {pair.name} ({args.mode}) as of {as_of.isoformat()}", file=sys.stderr)
    try:
        erp = ops.connection(pair.source, read_only=True)
        store = ops.connection(ops.config.pair(pair.name).target, read_only=args.dry_run)
        identities = DynamoIdentityStore(ops.dynamodb, ops.table)
        catalog = file_import.LookupCatalog(
            known=Sage300Reader(lambda: erp).known_items,
            barcode=lambda code: identities.key_of(mapping.barcode_entity, mapping.barcode_system, code),
        )
        target = PostgresStorefront(lambda: store)
        with progress(f"read {path.name}", None, enabled=not args.json) as advance:
            try:
                planned = file_import.plan(
                    file_import.read_rows(path, mapping),
                    mapping=mapping,
                    mode=args.mode,
                    pair=pair,
                    catalog=catalog,
                    target=target,
                    as_of=as_of,
                    on_progress=advance,
                )
            except file_import.FileFormatError as exc:
                print(f"syncline: {exc}", file=sys.stderr)
                return EXIT_ERROR
        document: dict[str, Any] = {"file": str(path), "dry_run": args.dry_run, "plan": planned.as_dict()}
        if not planned.invalid and not args.dry_run:
            state = DynamoStateStore(ops.dynamodb, ops.table)
            with progress(f"write {pair.name}", len(planned.changes), enabled=not args.json) as advance:
                applied = file_import.apply(
                    planned, target=target, state=state, batch_size=args.batch_size, on_progress=advance
                )
            document["applied"] = applied.as_dict()
    finally:
        ops.close()
    if args.json:
        emit(document)
    else:
        _print_import(planned, document.get("applied"), args.show)
    left = planned.target_ahead or (document.get("applied") or {}).get("refused")
    return EXIT_ATTENTION if planned.invalid or left else EXIT_OK


def _print_import(planned: Any, applied: dict[str, Any] | None, show: int) -> None:
    print(
        f"{planned.rows} row(s) read · locations {', '.join(planned.locations) or '-'} · {len(planned.invalid)} invalid"
    )
    if planned.invalid:
        for row in planned.invalid[:show]:
            print(f"  line {row.line}: {row.reason}")
        if len(planned.invalid) > show:
            print(f"  ... {len(planned.invalid) - show} more (--json lists all)")
        print("Nothing was written: fix the file or the mapping (or `syncline map set` a barcode), then run again.")
        return
    verb = "would write" if applied is None else "wrote"
    written = len(planned.writes) if applied is None else applied["written"]
    zeroed = len(planned.zeroes) if applied is None else applied["zeroed"]
    print(
        f"{verb} {written} · set to zero {zeroed} (full mode: absent from the file) · unchanged {planned.unchanged} · "
        f"outside the pair's filters {planned.filtered} · "
        f"target ahead {len(planned.target_ahead)} (newer than the file: left as is)"
    )
    for level in planned.changes[:show]:
        print(f"  {level.key:<24} on hand {level.on_hand} · available {level.available}")
    for key in planned.target_ahead[:show]:
        print(f"  target ahead: {key}")
    if applied and applied["refused"]:
        print(f"  {len(applied['refused'])} refused by the version guard (written newer meanwhile)")


# -- replay ------------------------------------------------------------------------------------------
def _replay(args: argparse.Namespace) -> int:
    from syncline.ops import replay  # noqa: PLC0415
    from syncline.ops.dlq import now_utc  # noqa: PLC0415
    from syncline.topology import notice_archive_name  # noqa: PLC0415

    now = now_utc()
    end = args.end or now
    try:
        for warning in replay.check_window(args.start, end, now):
            print(f"warning: {warning}", file=sys.stderr)
    except replay.ReplayWindowError as exc:
        print(f"syncline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ops = context(args)
    events = ops.client("events")
    rules = replay.routing_rules(ops.topology.rules, args.source)
    plan = replay.prepare(
        events,
        bus=ops.topology.bus_name,
        archive=args.archive or notice_archive_name(ops.topology.bus_name),
        rules=rules,
        start=args.start,
        end=end,
        now=now,
    )
    document: dict[str, Any] = {"replay": plan.as_dict(), "dry_run": args.dry_run}
    if args.dry_run:
        document["state"] = None
    else:
        document["state"] = replay.start(events, plan)
        print(f"replay {plan.name} started ({document['state']})", file=sys.stderr)
        if not args.no_wait:
            with progress(f"replay {plan.name}", 100, enabled=not args.json) as advance:
                shown = {"percent": 0}

                def report(fraction: float) -> None:
                    percent = int(fraction * 100)
                    advance(percent - shown["percent"])
                    shown["percent"] = percent

                described = replay.wait(events, plan, timeout_seconds=args.timeout, on_progress=report)
            document["state"] = described["State"]
            document["reason"] = described.get("StateReason")
    if args.json:
        emit(document)
    else:
        verb = "would replay" if args.dry_run else "replay"
        print(
            f"{verb} {plan.start.isoformat()} .. {plan.end.isoformat()} from archive {plan.archive} "
            f"to {', '.join(plan.rules)}: {document['state'] or 'not started'}"
        )
        if document.get("reason"):
            print(f"  {document['reason']}")
        if document["state"] == "COMPLETED":
            print("The notices are back in the sync queues; `syncline status` shows the backlog draining.")
    state = document["state"]
    if state in (None, "COMPLETED"):
        return EXIT_OK
    if state in ("FAILED", "CANCELLED"):
        return EXIT_ERROR
    return EXIT_ATTENTION
