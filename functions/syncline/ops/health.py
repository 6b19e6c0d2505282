"""The health report behind ``syncline status``: figures gathered from what Syncline already stores.

Inputs, per pair: the poller's checkpoints (position = newest ERP change detected, and when it
moved) and the newest ``synced_at`` of the pair's state items (the worker's last committed sync);
per queue: SQS depths, and the DLQ's messages (read without consuming) for their age and how many
failed in the last hour.

Lag is "work is waiting and nothing has synced for this long": ``now - last sync`` while the
pair's queue holds messages, 0 when it is empty (every detected change is synced or parked in the
DLQ, which has its own figures). Conflicts, per pair: the review list's pending and escalated
entries (``syncline conflicts list``). Levels: ``unhealthy`` when a hard limit is crossed (lag,
errors per hour), ``degraded`` when something needs a look (messages in a DLQ, a backlog above its
limit, conflicts waiting for a person above their limit), else ``healthy``.

Limits come from ``[monitoring]`` (``syncline.monitoring_config``): each pair's lag and conflicts are
held to that pair's limits; a queue's figures to the strictest limits among the pairs it serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from syncline.monitoring_config import MonitoringConfig, Thresholds

if TYPE_CHECKING:
    from syncline.review import ConflictStore

__all__ = [
    "ConflictFigures",
    "HealthReport",
    "Level",
    "PairFigures",
    "QueueFigures",
    "Thresholds",
    "assess",
    "conflict_figures",
    "pair_thresholds",
]

Level = Literal["healthy", "degraded", "unhealthy"]
DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class QueueFigures:
    queue: str
    waiting: int
    in_flight: int
    delayed: int
    dlq: int
    dlq_oldest: datetime | None
    dlq_last_hour: int

    @property
    def backlog(self) -> int:
        return self.waiting + self.in_flight + self.delayed


@dataclass(frozen=True)
class PairFigures:
    pair: str
    queue: str
    last_sync_at: datetime | None
    last_change_detected: datetime | None  # the poller's watermark, as a time
    checkpoint_moved_at: datetime | None


@dataclass(frozen=True)
class ConflictFigures:
    """A pair's entries on the conflict review list that wait for a person."""

    pair: str
    pending: int
    escalated: int
    oldest_open_at: datetime | None

    @property
    def open(self) -> int:
        return self.pending + self.escalated


def conflict_figures(store: ConflictStore, *, limit: int = 10_000) -> list[ConflictFigures]:
    """Pending and escalated conflicts per pair, from the review list (its status index; no scan)."""
    counts: dict[str, dict[str, int]] = {}
    oldest: dict[str, datetime] = {}
    for status in ("pending", "escalated"):
        for conflict in store.list(status, limit=limit):
            counts.setdefault(conflict.pair, {"pending": 0, "escalated": 0})[status] += 1
            if conflict.pair not in oldest or conflict.created_at < oldest[conflict.pair]:
                oldest[conflict.pair] = conflict.created_at
    return [
        ConflictFigures(pair, found["pending"], found["escalated"], oldest.get(pair))
        for pair, found in sorted(counts.items())
    ]


def pair_thresholds(
    monitoring: MonitoringConfig, pairs: Iterable[str], overrides: Mapping[str, float | int | None] | None = None
) -> tuple[Thresholds, dict[str, Thresholds]]:
    """The default limits and each pair's, from ``[monitoring]``; ``overrides`` (CLI flags) win over both."""
    given = {name: value for name, value in (overrides or {}).items() if value is not None}
    defaults = monitoring.defaults.model_copy(update=given)
    return defaults, {pair: monitoring.thresholds(pair).model_copy(update=given) for pair in pairs}


@dataclass
class HealthReport:
    level: Level
    generated_at: datetime
    reasons: list[str] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    conflicts: dict[str, int] = field(default_factory=lambda: {"pending": 0, "escalated": 0})

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "generated_at": self.generated_at.isoformat(),
            "reasons": self.reasons,
            "pairs": self.pairs,
            "queues": self.queues,
            "conflicts": self.conflicts,
        }


def assess(
    pairs: list[PairFigures],
    queues: list[QueueFigures],
    *,
    now: datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    per_pair: Mapping[str, Thresholds] | None = None,
    conflicts: Sequence[ConflictFigures] = (),
) -> HealthReport:
    """Combine the figures into one report and level (see the module docstring).

    ``thresholds`` are the defaults; ``per_pair`` the limits of pairs that have their own
    (``pair_thresholds`` builds both from ``[monitoring]``).
    """
    report = HealthReport("healthy", now)
    unhealthy: list[str] = []
    degraded: list[str] = []
    limits = {pair.pair: (per_pair or {}).get(pair.pair, thresholds) for pair in pairs}
    by_queue = {q.queue: q for q in queues}
    by_pair = {c.pair: c for c in conflicts}
    for pair in pairs:
        limit = limits[pair.pair]
        queue = by_queue.get(pair.queue)
        backlog = queue.backlog if queue else 0
        lag = 0.0
        if backlog and pair.last_sync_at is not None:
            lag = max((now - pair.last_sync_at).total_seconds(), 0.0)
        elif backlog and pair.last_change_detected is not None:
            lag = max((now - pair.last_change_detected).total_seconds(), 0.0)  # nothing ever synced
        if lag > limit.max_lag_seconds:
            unhealthy.append(
                f"{pair.pair}: {backlog} message(s) waiting and nothing synced for {lag:.0f} s "
                f"(limit {limit.max_lag_seconds:.0f} s)"
            )
        waiting = by_pair.pop(pair.pair, ConflictFigures(pair.pair, 0, 0, None))
        if waiting.open > limit.max_pending_conflicts:
            degraded.append(_conflict_reason(waiting, limit))
        report.pairs.append(
            {
                "pair": pair.pair,
                "queue": pair.queue,
                "last_sync_at": _iso(pair.last_sync_at),
                "since_last_sync_seconds": _age(now, pair.last_sync_at),
                "last_change_detected": _iso(pair.last_change_detected),
                "checkpoint_moved_at": _iso(pair.checkpoint_moved_at),
                "lag_seconds": round(lag, 1),
                "conflicts_pending": waiting.pending,
                "conflicts_escalated": waiting.escalated,
                "oldest_conflict_age_seconds": _age(now, waiting.oldest_open_at),
                "thresholds": limit.model_dump(),
            }
        )
    # Conflicts of a pair no longer declared are still someone's to decide.
    degraded.extend(
        _conflict_reason(orphan, thresholds)
        for orphan in by_pair.values()
        if orphan.open > thresholds.max_pending_conflicts
    )
    for queue in queues:
        served = [limits[p.pair] for p in pairs if p.queue == queue.queue]
        limit = Thresholds.strictest(served) if served else thresholds
        if queue.dlq_last_hour > limit.max_errors_per_hour:
            unhealthy.append(
                f"{queue.queue}: {queue.dlq_last_hour} failure(s) in the last hour (limit {limit.max_errors_per_hour})"
            )
        if queue.dlq > limit.max_dlq:
            degraded.append(f"{queue.queue}: {queue.dlq} message(s) in the DLQ (`syncline dlq list`)")
        if queue.backlog > limit.max_backlog:
            degraded.append(f"{queue.queue}: backlog {queue.backlog} above {limit.max_backlog}")
        report.queues.append(
            {
                "queue": queue.queue,
                "waiting": queue.waiting,
                "in_flight": queue.in_flight,
                "delayed": queue.delayed,
                "backlog": queue.backlog,
                "dlq": queue.dlq,
                "dlq_oldest_age_seconds": _age(now, queue.dlq_oldest),
                "errors_last_hour": queue.dlq_last_hour,
            }
        )
    report.conflicts = {
        "pending": sum(c.pending for c in conflicts),
        "escalated": sum(c.escalated for c in conflicts),
    }
    report.reasons = unhealthy + degraded
    report.level = "unhealthy" if unhealthy else "degraded" if degraded else "healthy"
    return report


def _conflict_reason(figures: ConflictFigures, limit: Thresholds) -> str:
    escalated = f", {figures.escalated} escalated" if figures.escalated else ""
    return (
        f"{figures.pair}: {figures.open} conflict(s) waiting for a person{escalated} "
        f"(limit {limit.max_pending_conflicts}; `syncline conflicts list --pair {figures.pair}`)"
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _age(now: datetime, moment: datetime | None) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None
