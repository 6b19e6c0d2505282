"""The health report behind ``syncline status``: figures gathered from what Syncline already stores.

Inputs, per pair: the poller's checkpoints (position = newest ERP change detected, and when it
moved) and the newest ``synced_at`` of the pair's state items (the worker's last committed sync);
per queue: SQS depths, and the DLQ's messages (read without consuming) for their age and how many
failed in the last hour.

Lag is "work is waiting and nothing has synced for this long": ``now - last sync`` while the
pair's queue holds messages, 0 when it is empty (every detected change is synced or parked in the
DLQ, which has its own figures). Levels: ``unhealthy`` when a hard limit is crossed (lag, errors
per hour), ``degraded`` when something needs a look (messages in a DLQ, a backlog above its limit),
else ``healthy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Level = Literal["healthy", "degraded", "unhealthy"]


@dataclass(frozen=True)
class Thresholds:
    max_lag_seconds: float = 300
    max_errors_per_hour: int = 10
    max_backlog: int = 5000
    max_dlq: int = 0


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


@dataclass
class HealthReport:
    level: Level
    generated_at: datetime
    reasons: list[str] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "generated_at": self.generated_at.isoformat(),
            "reasons": self.reasons,
            "pairs": self.pairs,
            "queues": self.queues,
        }


def assess(
    pairs: list[PairFigures], queues: list[QueueFigures], *, now: datetime, thresholds: Thresholds = Thresholds()
) -> HealthReport:
    """Combine the figures into one report and level (see the module docstring)."""
    report = HealthReport("healthy", now)
    unhealthy: list[str] = []
    degraded: list[str] = []
    by_queue = {q.queue: q for q in queues}
    for pair in pairs:
        queue = by_queue.get(pair.queue)
        backlog = queue.backlog if queue else 0
        lag = 0.0
        if backlog and pair.last_sync_at is not None:
            lag = max((now - pair.last_sync_at).total_seconds(), 0.0)
        elif backlog and pair.last_change_detected is not None:
            lag = max((now - pair.last_change_detected).total_seconds(), 0.0)  # nothing ever synced
        if lag > thresholds.max_lag_seconds:
            unhealthy.append(
                f"{pair.pair}: {backlog} message(s) waiting and nothing synced for {lag:.0f} s "
                f"(limit {thresholds.max_lag_seconds:.0f} s)"
            )
        report.pairs.append(
            {
                "pair": pair.pair,
                "queue": pair.queue,
                "last_sync_at": _iso(pair.last_sync_at),
                "since_last_sync_seconds": _age(now, pair.last_sync_at),
                "last_change_detected": _iso(pair.last_change_detected),
                "checkpoint_moved_at": _iso(pair.checkpoint_moved_at),
                "lag_seconds": round(lag, 1),
            }
        )
    for queue in queues:
        if queue.dlq_last_hour > thresholds.max_errors_per_hour:
            unhealthy.append(
                f"{queue.queue}: {queue.dlq_last_hour} failure(s) in the last hour (limit {thresholds.max_errors_per_hour})"
            )
        if queue.dlq > thresholds.max_dlq:
            degraded.append(f"{queue.queue}: {queue.dlq} message(s) in the DLQ (`syncline dlq list`)")
        if queue.backlog > thresholds.max_backlog:
            degraded.append(f"{queue.queue}: backlog {queue.backlog} above {thresholds.max_backlog}")
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
    report.reasons = unhealthy + degraded
    report.level = "unhealthy" if unhealthy else "degraded" if degraded else "healthy"
    return report


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _age(now: datetime, moment: datetime | None) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None
