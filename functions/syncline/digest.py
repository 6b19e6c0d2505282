"""The daily digest: one e-mail a day on what Syncline did and what needs a person.

Per pair: records synced in the window (state items whose ``synced_at`` falls in it: a record synced
three times counts once), conflicts opened and resolved in the window and still open, and the
consistency ratio of the latest scheduled reconcile (``RECONCILE#<pair>``). Overall: the health level
and reasons of the monitor's latest report (``HEALTH#latest``), dead letters that failed in the window
and still sit in a DLQ (redriven ones have left it), each DLQ's depth, and the most frequent errors
(reasons grouped with their numbers masked, so ``-5.0000`` and ``-3.0000`` count as one).

``build_digest`` reads everything through the ``DigestSource`` port; ``render_text`` and
``render_html`` format it; ``send_digest`` sends it through any ``AlertChannel`` (text), and an
``DigestEmail`` adds the HTML part. ``OpsDigestSource`` reads the state table and the DLQs of an
``OpsContext`` (the CLI's and the functions' wiring).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from syncline.connectors.alerts import Alert, AlertChannel, Delivery, SesEmail

if TYPE_CHECKING:
    from syncline.ops.wiring import OpsContext
    from syncline.review import Conflict, Status

HEALTH_KEY = "HEALTH#latest"
RECONCILE_PREFIX = "RECONCILE#"
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class DeadLetterFigure:
    queue: str
    failed_at: datetime
    reason: str


class DigestSource(Protocol):
    def synced(self, pair: str, since: datetime, until: datetime) -> int:
        """Records of ``pair`` whose last sync falls in [since, until)."""

    def dead_letters(self) -> Sequence[DeadLetterFigure]:
        """Every message in every DLQ (read without consuming)."""

    def conflicts(self) -> Sequence[Conflict]:
        """The review list, every status."""

    def reconcile(self, pair: str) -> Mapping[str, Any] | None:
        """The latest scheduled reconcile summary of ``pair``."""

    def health(self) -> Mapping[str, Any] | None:
        """The monitor's latest health report."""


@dataclass(frozen=True)
class PairDay:
    pair: str
    synced: int
    conflicts_opened: int
    conflicts_resolved: int
    conflicts_open: int
    consistency: float | None
    compared: int | None
    reconciled_at: str | None


@dataclass(frozen=True)
class Digest:
    app: str
    since: datetime
    until: datetime
    level: str | None  # the monitor's, None when it has not reported
    reasons: tuple[str, ...]
    pairs: tuple[PairDay, ...]
    dead_letters: int  # failed in the window, still in a DLQ
    dlq_depth: Mapping[str, int]
    top_errors: tuple[tuple[str, int], ...] = field(default=())

    @property
    def needs_attention(self) -> bool:
        return (
            self.level not in {None, "healthy"}
            or self.dead_letters > 0
            or any(p.conflicts_open for p in self.pairs)
            or any(p.consistency is not None and p.consistency < 1 for p in self.pairs)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "level": self.level,
            "reasons": list(self.reasons),
            "pairs": [vars(pair) for pair in self.pairs],
            "dead_letters": self.dead_letters,
            "dlq_depth": dict(self.dlq_depth),
            "top_errors": [{"error": error, "count": count} for error, count in self.top_errors],
        }


def build_digest(
    source: DigestSource,
    pairs: Sequence[str],
    *,
    until: datetime,
    period: timedelta = timedelta(days=1),
    top_errors: int = 5,
    app: str = "syncline",
) -> Digest:
    """Gather the window ``[until - period, until)`` from ``source``."""
    since = until - period

    def within(moment: datetime | None) -> bool:
        return moment is not None and since <= moment < until

    conflicts = list(source.conflicts())
    days = []
    for pair in pairs:
        mine = [c for c in conflicts if c.pair == pair]
        report = source.reconcile(pair)
        days.append(
            PairDay(
                pair=pair,
                synced=source.synced(pair, since, until),
                conflicts_opened=sum(1 for c in mine if within(c.created_at)),
                conflicts_resolved=sum(
                    1 for c in mine if c.status == "resolved" and within(c.decision.at if c.decision else c.updated_at)
                ),
                conflicts_open=sum(1 for c in mine if c.status in {"pending", "escalated"}),
                consistency=float(report["consistency"]) if report and "consistency" in report else None,
                compared=int(report["compared"]) if report and "compared" in report else None,
                reconciled_at=str(report.get("finished_at")) if report and report.get("finished_at") else None,
            )
        )
    letters = list(source.dead_letters())
    today = [letter for letter in letters if within(letter.failed_at)]
    depth: Counter[str] = Counter(letter.queue for letter in letters)
    errors = Counter(_pattern(letter.reason) for letter in today)
    health = source.health() or {}
    return Digest(
        app=app,
        since=since,
        until=until,
        level=health.get("level"),
        reasons=tuple(health.get("reasons", ())),
        pairs=tuple(days),
        dead_letters=len(today),
        dlq_depth=dict(sorted(depth.items())),
        top_errors=tuple(errors.most_common(top_errors)),
    )


def _pattern(reason: str) -> str:
    """A reason with its numbers masked, so one cause with different values is counted once."""
    return _NUMBER.sub("#", " ".join(reason.split()))[:200]


# --- rendering --------------------------------------------------------------------------------------------


def subject(digest: Digest) -> str:
    state = "needs attention" if digest.needs_attention else "all well"
    return f"{digest.app} daily digest {digest.until:%Y-%m-%d}: {state}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def render_text(digest: Digest) -> str:
    lines = [
        subject(digest),
        f"window {digest.since:%Y-%m-%d %H:%M} to {digest.until:%Y-%m-%d %H:%M} UTC",
        "",
        f"health: {digest.level or 'no report from the monitor'}",
        *(f"  ! {reason}" for reason in digest.reasons),
        "",
    ]
    for pair in digest.pairs:
        lines += [
            f"{pair.pair}",
            f"  records synced      {pair.synced}",
            f"  conflicts           {pair.conflicts_opened} opened, {pair.conflicts_resolved} resolved, "
            f"{pair.conflicts_open} open",
            f"  consistency         {_ratio(pair.consistency)}"
            + (f" of {pair.compared} compared (reconcile {pair.reconciled_at})" if pair.compared is not None else ""),
        ]
    depth = ", ".join(f"{queue} {count}" for queue, count in digest.dlq_depth.items()) or "empty"
    lines += ["", f"failures: {digest.dead_letters} dead-lettered in the window; DLQ now: {depth}"]
    if digest.top_errors:
        lines.append("top errors:")
        lines += [f"  {count:>5}  {error}" for error, count in digest.top_errors]
    if digest.needs_attention:
        lines += ["", "next: `syncline status`, `syncline dlq list`, `syncline conflicts list` (docs/OPERATIONS.md)"]
    return "\n".join(lines)


def render_html(digest: Digest) -> str:
    """The same content as ``render_text``; every value from the data is escaped."""

    def e(value: object) -> str:
        return html.escape(str(value))

    rows = "".join(
        f"<tr><td>{e(p.pair)}</td><td>{p.synced}</td><td>{p.conflicts_opened}</td><td>{p.conflicts_resolved}</td>"
        f"<td>{p.conflicts_open}</td><td>{e(_ratio(p.consistency))}</td></tr>"
        for p in digest.pairs
    )
    reasons = "".join(f"<li>{e(reason)}</li>" for reason in digest.reasons)
    errors = "".join(f"<tr><td>{count}</td><td><code>{e(error)}</code></td></tr>" for error, count in digest.top_errors)
    depth = ", ".join(f"{e(queue)} {count}" for queue, count in digest.dlq_depth.items()) or "empty"
    return (
        f"<html><body><h2>{e(subject(digest))}</h2>"
        f"<p>{digest.since:%Y-%m-%d %H:%M} to {digest.until:%Y-%m-%d %H:%M} UTC</p>"
        f"<p>Health: <b>{e(digest.level or 'no report from the monitor')}</b></p>"
        + (f"<ul>{reasons}</ul>" if reasons else "")
        + "<table border='1' cellpadding='4'><tr><th>pair</th><th>records synced</th><th>conflicts opened</th>"
        f"<th>resolved</th><th>open</th><th>consistency</th></tr>{rows}</table>"
        f"<p>Failures: {digest.dead_letters} dead-lettered in the window; DLQ now: {depth}</p>"
        + (f"<table><tr><th>count</th><th>error</th></tr>{errors}</table>" if errors else "")
        + "</body></html>"
    )


# --- sending ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestAlert(Alert):
    """An ``Alert`` carrying an HTML body as well; channels that know no HTML send the text summary."""

    html: str = ""


class DigestEmail(SesEmail):
    """``SesEmail`` that adds a ``DigestAlert``'s HTML part (the text part stays for plain-text readers)."""

    def message(self, alert: Alert) -> dict[str, Any]:
        request = super().message(alert)
        if isinstance(alert, DigestAlert) and alert.html:
            request["Content"]["Simple"]["Body"]["Html"] = {"Data": alert.html, "Charset": "UTF-8"}
        return request


def to_alert(digest: Digest) -> DigestAlert:
    return DigestAlert(
        summary=render_text(digest),
        title=subject(digest),
        severity="warning" if digest.needs_attention else "info",
        source=f"{digest.app}/digest",
        component="digest",
        dedup_key=f"digest:{digest.until:%Y-%m-%d}",
        html=render_html(digest),
    )


def send_digest(digest: Digest, channel: AlertChannel) -> Delivery:
    """Send the digest; raises the channel's ``ApiError`` when it is not accepted."""
    return channel.send(to_alert(digest))


# --- the source on the state table and the DLQs -----------------------------------------------------------


class OpsDigestSource:
    """``DigestSource`` over an ``OpsContext``: one scan of the pair's state items, DLQs peeked, items read."""

    def __init__(self, ops: OpsContext, *, conflict_limit: int = 10_000) -> None:
        self._ops, self._limit = ops, conflict_limit

    def synced(self, pair: str, since: datetime, until: datetime) -> int:
        count = 0
        # synced_at is ISO 8601 in UTC (the state adapter's), so string order is time order.
        for page in self._ops.dynamodb.get_paginator("scan").paginate(
            TableName=self._ops.table,
            Select="COUNT",
            FilterExpression="begins_with(pk, :prefix) AND synced_at >= :since AND synced_at < :until",
            ExpressionAttributeValues={
                ":prefix": {"S": f"ST#{pair}#"},
                ":since": {"S": since.isoformat()},
                ":until": {"S": until.isoformat()},
            },
        ):
            count += page.get("Count", 0)
        return count

    def dead_letters(self) -> list[DeadLetterFigure]:
        from syncline.ops.dlq import peek  # noqa: PLC0415

        return [
            DeadLetterFigure(spec.id, message.when, message.reason)
            for spec in self._ops.topology.queues
            for message in peek(self._ops.dead_letter_queue(spec), limit=10_000)
        ]

    def conflicts(self) -> list[Conflict]:
        store = self._ops.conflict_review().store
        statuses: tuple[Status, ...] = ("pending", "escalated", "resolved", "superseded")
        return [conflict for status in statuses for conflict in store.list(status, limit=self._limit)]

    def reconcile(self, pair: str) -> Mapping[str, Any] | None:
        return self._report(f"{RECONCILE_PREFIX}{pair}")

    def health(self) -> Mapping[str, Any] | None:
        return self._report(HEALTH_KEY)

    def _report(self, key: str) -> Mapping[str, Any] | None:
        item = self._ops.dynamodb.get_item(TableName=self._ops.table, Key={"pk": {"S": key}}).get("Item")
        if not item or "report" not in item:
            return None
        document: dict[str, Any] = json.loads(item["report"]["S"])
        return document
