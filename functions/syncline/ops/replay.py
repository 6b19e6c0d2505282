"""Replay of archived notices: an EventBridge replay of a time window from the bus's notice archive.

Every notice published on the bus is archived (``topology.notice_archive_name``; 30 days in the CDK
app). A replay sends the archived events of ``[start, end)`` back through the bus's routing rules,
so they reach the sync queues again. That is safe by construction: a notice is only a hint, the
worker fetches the current row and skips what its state cache already holds, so a replayed notice
whose record is in sync changes nothing, and one whose record was lost (a purged DLQ, a restored
storefront) syncs the *current* ERP row, never the old one.

``--source S`` restricts the replay to the rules that route S's notices (EventBridge's
``Destination.FilterArns``). A replay cannot filter on an event's content, so notices of other
sources that travel on the same rules are replayed with them: harmless, for the reason above.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from syncline.models import NOTICE_SOURCE_PREFIX
from syncline.topology import RuleSpec

FINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
ARCHIVE_RETENTION = timedelta(days=30)


class ReplayWindowError(ValueError):
    """The window is empty, in the future or reversed."""


def check_window(start: datetime, end: datetime, now: datetime) -> list[str]:
    """Raise for a window EventBridge would refuse; return warnings for one it would only partly serve."""
    if start >= end:
        raise ReplayWindowError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    if start > now:
        raise ReplayWindowError(f"--from {start.isoformat()} is in the future")
    warnings = []
    if now - start > ARCHIVE_RETENTION:
        warnings.append(
            f"the archive keeps {ARCHIVE_RETENTION.days} days: notices before {(now - ARCHIVE_RETENTION).isoformat()} "
            "are gone; run `syncline reconcile PAIR` to catch up instead"
        )
    return warnings


def routing_rules(rules: Sequence[RuleSpec], source: str | None) -> list[RuleSpec]:
    """The rules that route ``source``'s notices (all of them without a source); ``LookupError`` if none."""
    if source is None:
        return list(rules)
    event_source = f"{NOTICE_SOURCE_PREFIX}{source}"
    chosen = [rule for rule in rules if event_source in rule.pattern.get("source", [])]
    if not chosen:
        known = sorted({s.removeprefix(NOTICE_SOURCE_PREFIX) for rule in rules for s in rule.pattern.get("source", [])})
        raise LookupError(f"no rule routes notices from {source!r}; sources: {', '.join(known) or 'none'}")
    return chosen


def replay_name(start: datetime, now: datetime) -> str:
    """Unique, readable, within EventBridge's 64 characters: ``syncline-<from>-<when started>-<random>``."""
    return f"syncline-{start:%Y%m%dT%H%M}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class ReplayPlan:
    name: str
    archive: str
    archive_arn: str
    bus_arn: str
    rules: tuple[str, ...]
    rule_arns: tuple[str, ...]
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "archive": self.archive,
            "rules": list(self.rules),
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
        }


def prepare(
    events: Any,
    *,
    bus: str,
    archive: str,
    rules: Sequence[RuleSpec],
    start: datetime,
    end: datetime,
    now: datetime,
) -> ReplayPlan:
    """Resolve the archive, bus and rule ARNs (``LookupError`` when the archive or a rule is missing)."""
    try:
        described = events.describe_archive(ArchiveName=archive)
    except events.exceptions.ResourceNotFoundException:
        raise LookupError(f"no event archive {archive!r}: the CDK app's notice bus creates it; deploy first") from None
    rule_arns = tuple(events.describe_rule(Name=rule.name, EventBusName=bus)["Arn"] for rule in rules)
    return ReplayPlan(
        name=replay_name(start, now),
        archive=archive,
        archive_arn=described["ArchiveArn"],
        bus_arn=described["EventSourceArn"],
        rules=tuple(rule.name for rule in rules),
        rule_arns=rule_arns,
        start=start,
        end=end,
    )


def start(events: Any, plan: ReplayPlan) -> str:
    """Start the replay; returns its state as EventBridge reports it."""
    response = events.start_replay(
        ReplayName=plan.name,
        Description=f"syncline replay {plan.start.isoformat()} .. {plan.end.isoformat()}",
        EventSourceArn=plan.archive_arn,
        EventStartTime=plan.start,
        EventEndTime=plan.end,
        Destination={"Arn": plan.bus_arn, "FilterArns": list(plan.rule_arns)},
    )
    return str(response["State"])


def wait(
    events: Any,
    plan: ReplayPlan,
    *,
    timeout_seconds: float,
    poll_seconds: float = 2.0,
    on_progress: Callable[[float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the replay is in a final state or ``timeout_seconds`` pass; returns the last description.

    ``on_progress`` gets the fraction of the window replayed so far (from ``EventLastReplayedTime``).
    """
    deadline = monotonic() + timeout_seconds
    span = (plan.end - plan.start).total_seconds()
    while True:
        described: dict[str, Any] = events.describe_replay(ReplayName=plan.name)
        last = described.get("EventLastReplayedTime")
        if on_progress and isinstance(last, datetime):
            done = (last.astimezone(UTC) - plan.start).total_seconds()
            on_progress(min(max(done / span, 0.0), 1.0))
        if described["State"] in FINAL_STATES or monotonic() >= deadline:
            return described
        sleep(poll_seconds)
