"""The health report's levels and lag, from figures (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncline.ops.health import PairFigures, QueueFigures, Thresholds, assess

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _queue(waiting: int = 0, dlq: int = 0, last_hour: int = 0) -> QueueFigures:
    return QueueFigures("sync_storefront", waiting, 0, 0, dlq, NOW - timedelta(minutes=5) if dlq else None, last_hour)


def _pair(last_sync: datetime | None) -> PairFigures:
    return PairFigures("p", "sync_storefront", last_sync, NOW - timedelta(minutes=1), NOW)


def test_an_empty_queue_means_no_lag_however_old_the_last_sync() -> None:
    report = assess([_pair(NOW - timedelta(days=3))], [_queue()], now=NOW)
    assert (report.level, report.pairs[0]["lag_seconds"]) == ("healthy", 0)


def test_waiting_work_with_an_old_last_sync_is_lag() -> None:
    report = assess([_pair(NOW - timedelta(minutes=10))], [_queue(waiting=3)], now=NOW)
    assert report.level == "unhealthy"
    assert report.pairs[0]["lag_seconds"] == 600
    assert "nothing synced for 600 s" in report.reasons[0]


def test_dead_letters_degrade_and_too_many_per_hour_make_unhealthy() -> None:
    assert assess([_pair(NOW)], [_queue(dlq=2, last_hour=2)], now=NOW).level == "degraded"
    report = assess([_pair(NOW)], [_queue(dlq=20, last_hour=20)], now=NOW)
    assert report.level == "unhealthy"
    assert report.queues[0]["dlq_oldest_age_seconds"] == 300


def test_backlog_over_its_limit_degrades() -> None:
    report = assess([_pair(NOW)], [_queue(waiting=11)], now=NOW, thresholds=Thresholds(max_backlog=10))
    assert (report.level, report.reasons) == ("degraded", ["sync_storefront: backlog 11 above 10"])
