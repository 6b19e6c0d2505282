"""``syncline conflicts list | show | resolve``: the records no policy settles, and a person's decision."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from syncline.ops.commands import (
    EXIT_ATTENTION,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    TARGET_HELP,
    context,
    emit,
    json_option,
    target_options,
)

STATUSES = ("pending", "escalated", "resolved", "superseded")


def add_conflict_commands(commands: Any) -> None:
    target, as_json = target_options(), json_option()
    formatter = argparse.RawDescriptionHelpFormatter
    conflicts = commands.add_parser(
        "conflicts",
        help="records two systems disagree on that no policy settles: list, show, resolve",
        description="A two-way pair's policy settles most disagreements (last writer wins, an owner per field, "
        "three-way merge, business order). Fields declared `manual_review`, or an owner missing from both sides, "
        "are left untouched everywhere and listed here with both sides, the last agreed values and the rules' "
        "reasons. The sweeper rechecks them (closing what the rules settle after a later edit) and escalates "
        "those pending longer than [review] escalate_after_hours to the escalation topic.\n\n"
        "Exit codes: 0 nothing open / done, 3 no such conflict, 4 open conflicts listed or the record changed "
        "since (look again), 1 error.\n\n" + TARGET_HELP,
        formatter_class=formatter,
    ).add_subparsers(title="conflicts commands", metavar="COMMAND")

    listing = conflicts.add_parser(
        "list",
        parents=[target, as_json],
        help="open conflicts (pending and escalated), oldest first",
        description="Open conflicts, oldest first; --status picks another list. Exit 4 when any is open.",
    )
    listing.add_argument("--status", choices=STATUSES, action="append", help="only these (repeatable)")
    listing.add_argument("--pair", help="only this pair")
    listing.add_argument("--limit", type=int, default=100, help="at most this many per status (default 100)")
    listing.set_defaults(run=_list)

    show = conflicts.add_parser("show", parents=[target, as_json], help="one conflict with both sides in full")
    show.add_argument("id", help="conflict id (cf-...), from `syncline conflicts list`")
    show.set_defaults(run=_show)

    resolve = conflicts.add_parser(
        "resolve",
        parents=[target, as_json],
        help="decide a conflict; the values are written to every system of the pair",
        description="Decide the fields in question and apply the record everywhere through the pair's normal "
        "write path (compare-and-swap, echo suppression). Fields the rules already settled keep their values.\n\n"
        "  --take SYSTEM      that system's values for the fields in question\n"
        "  --take merged      your own values: give every field in question with --value FIELD=VALUE\n"
        '  --value FIELD=V    override one field (JSON: 12.5, true, "text"; anything else is a string)\n\n'
        "If a system's copy changed since the conflict was recorded, nothing is written (exit 4): the sweeper "
        "or the next notice records the new situation; look at it again with `syncline conflicts list`.\n\n"
        "Example:\n  syncline conflicts resolve cf-1a2b3c4d5e6f --take erp --note 'price list of 1 Dec'",
        formatter_class=formatter,
    )
    resolve.add_argument("id", help="conflict id (cf-...)")
    resolve.add_argument("--take", required=True, metavar="SYSTEM|merged", help="whose values win")
    resolve.add_argument("--value", action="append", default=[], metavar="FIELD=VALUE", help="set one field")
    resolve.add_argument("--note", default="", help="why (kept with the decision)")
    resolve.add_argument("--by", default=None, help="who decides (default: $USER)")
    resolve.set_defaults(run=_resolve)


def _parse_values(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in pairs:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--value {item!r}: write FIELD=VALUE")
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    return values


def _list(args: argparse.Namespace) -> int:
    from syncline.review import OPEN, summary_line  # noqa: PLC0415

    ops = context(args)
    review = ops.conflict_review()
    statuses = args.status or list(OPEN)
    found = [c for status in statuses for c in review.store.list(status, limit=args.limit)]
    if args.pair:
        found = [c for c in found if c.pair == args.pair]
    found.sort(key=lambda c: c.created_at)
    if args.json:
        emit([c.to_dict() for c in found])
    elif not found:
        print(f"No {' or '.join(statuses)} conflicts{' for ' + args.pair if args.pair else ''}.")
    else:
        now = datetime.now(UTC)
        header = ("id", "status", "pair", "key", "fields", "age", "sides")
        rows = [header, *(summary_line(c, now) for c in found)]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        for row in rows:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
        print(
            f"\n{len(found)} conflict(s). `syncline conflicts show ID` for both sides; `resolve ID --take ...` decides."
        )
    open_ones = [c for c in found if c.status in OPEN]
    return EXIT_ATTENTION if open_ones else EXIT_OK


def _show(args: argparse.Namespace) -> int:
    ops = context(args)
    conflict = ops.conflict_review().store.get(args.id)
    if conflict is None:
        print(f"syncline: no conflict {args.id} (see `syncline conflicts list`)", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        emit(conflict.to_dict())
        return EXIT_OK
    print(f"{conflict.id}  {conflict.status}  pair {conflict.pair}  {conflict.entity} {conflict.key}")
    print(f"recorded {conflict.created_at.isoformat()}  updated {conflict.updated_at.isoformat()}")
    print(f"fields in question: {', '.join(conflict.fields)}")
    names = sorted({name for side in conflict.sides for name in side.values} | set(conflict.base or {}))
    columns = ["field", "base", *(side.system for side in conflict.sides), "rules"]
    rows = [columns] + [
        [
            ("* " if name in conflict.fields else "  ") + name,
            json.dumps((conflict.base or {}).get(name), default=str),
            *(json.dumps(side.values.get(name), default=str) for side in conflict.sides),
            "?" if name in conflict.fields else json.dumps(conflict.proposal.get(name), default=str),
        ]
        for name in names
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for side in conflict.sides:
        print(f"  {side.system}: changed {side.changed_at.isoformat()}, version {side.version}")
    for reason in conflict.reasons:
        print(f"  why: {reason}")
    if conflict.decision:
        d = conflict.decision
        print(f"decided by {d.by} at {d.at.isoformat()}: take {d.take} {json.dumps(dict(d.values), default=str)}")
        if d.note:
            print(f"  note: {d.note}")
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415

    from syncline.review import ConflictMoved  # noqa: PLC0415
    from syncline.twoway import RecordChanged  # noqa: PLC0415

    try:
        overrides = _parse_values(args.value)
    except ValueError as exc:
        print(f"syncline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ops = context(args)
    review = ops.conflict_review()
    conflict = review.store.get(args.id)
    if conflict is None:
        print(f"syncline: no conflict {args.id} (see `syncline conflicts list`)", file=sys.stderr)
        return EXIT_NOT_FOUND
    engine = ops.twoway(conflict.pair)
    try:
        closed = review.resolve(
            args.id,
            args.take,
            lambda c, values: engine.apply(c.key, values, expected=c.versions),
            overrides=overrides,
            by=args.by or getpass.getuser(),
            note=args.note,
        )
    except (RecordChanged, ConflictMoved) as exc:
        print(
            f"syncline: not applied: {exc}. Nothing was written; look again: syncline conflicts list", file=sys.stderr
        )
        return EXIT_ATTENTION
    except ValueError as exc:
        print(f"syncline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"syncline: could not apply the decision: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        ops.close()
    if args.json:
        emit(closed.to_dict())
    else:
        values = dict(closed.decision.values) if closed.decision else {}
        print(f"{closed.id} resolved: {closed.key} is now {json.dumps(values, default=str)} in every system")
    return EXIT_OK
