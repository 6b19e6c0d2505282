"""run_backfill: pages load in order on the writer thread, the job counts a page once it loaded, its record is
written at most every checkpoint interval, and nothing loads past a page that failed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from syncline.ops.jobs import BackfillJob, JobMoved, new_job, prefetched, run_backfill
from syncline.sync import PairContext

PAIR = PairContext("erp-storefront-inventory", "sage300", {"1": "main", "2": "east"})


def _fetched(item: int, location: str) -> tuple[Any, ...]:
    """An ICILOC row as the bulk query returns it (FETCH_FIELDS order)."""
    return (f"I{item:04d}", location, Decimal(item), Decimal(0), Decimal(0), Decimal(0), 20261201, 8000000, "x", "EA")


def _row(item: int, location: str) -> tuple[Any, ...]:
    return (*_fetched(item, location), 0, 20261201, 8000000)


class Erp:
    def __init__(self, items: int) -> None:
        self.rows: list[Sequence[Any]] = [_row(i, location) for i in range(items) for location in "12"]

    def iter_rows(self, page_size: int = 5000, after: tuple[str, str] | None = None) -> Iterator[list[Sequence[Any]]]:
        rows = [row for row in self.rows if after is None or (row[0], row[1]) > after]
        for start in range(0, len(rows), page_size):
            yield rows[start : start + page_size]


class Storefront:
    def __init__(self, fail_on_call: int | None = None) -> None:
        self.loaded: list[tuple[Any, ...]] = []
        self.calls, self.fail_on_call = 0, fail_on_call
        self.threads: set[str] = set()

    def bulk_load(self, rows: Sequence[tuple[Any, ...]]) -> int:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.calls == self.fail_on_call:
            time.sleep(0.05)  # long enough for the next page to be handed to the writer behind this one
            raise ConnectionError("storefront connection lost")
        self.loaded.extend(rows)
        return len(rows)


class Jobs:
    def __init__(self) -> None:
        self.records: dict[str, BackfillJob] = {}
        self.writes: list[BackfillJob] = []

    def load(self, job_id: str) -> BackfillJob | None:
        return self.records.get(job_id)

    def save(self, job: BackfillJob, *, expected_revision: int) -> None:
        stored = self.records.get(job.id)
        if (stored.revision if stored else 0) != expected_revision:
            raise JobMoved(job.id)
        self.records[job.id] = job
        self.writes.append(job)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25  # every reading is a quarter of a second later
        return self.now


def test_every_page_loads_in_key_order_on_the_writer_and_the_record_is_written_once_a_second() -> None:
    erp, storefront, jobs = Erp(50), Storefront(), Jobs()
    progress: list[int] = []
    job = run_backfill(
        new_job(PAIR.name, since=None, page_size=10),
        source=erp,
        target=storefront,
        jobs=jobs,
        pair=PAIR,
        on_progress=lambda step: progress.append(step.read),
        clock=Clock(),
    )
    assert (job.status, job.read, job.loaded, job.pages, job.position) == ("completed", 100, 100, 10, ("I0049", "2"))
    assert [(row[0], row[1]) for row in storefront.loaded] == [
        (f"I{i:04d}", location) for i in range(50) for location in ("main", "east")
    ]
    assert storefront.threads and not storefront.threads & {"MainThread"}
    assert progress == list(range(10, 101, 10))
    # Started, a few checkpoints (the fake clock moves a second every few readings), then completed.
    statuses = [write.status for write in jobs.writes]
    checkpoints = statuses.count("running") - 1
    assert statuses == ["running"] * (checkpoints + 1) + ["completed"]
    assert 0 < checkpoints < job.pages
    positions = [write.position or ("", "") for write in jobs.writes[1:-1]]
    assert positions == sorted(positions)  # each checkpoint is a page that loaded, in order


def test_nothing_loads_past_a_failed_page_and_the_record_says_where_to_resume() -> None:
    erp, storefront, jobs = Erp(50), Storefront(fail_on_call=3), Jobs()
    with pytest.raises(ConnectionError, match="connection lost"):
        run_backfill(new_job(PAIR.name, since=None, page_size=10), source=erp, target=storefront, jobs=jobs, pair=PAIR)
    (failed,) = list(jobs.records.values())
    assert (failed.status, failed.pages, failed.loaded, failed.position) == ("failed", 2, 20, ("I0009", "2"))
    assert len(storefront.loaded) == 20  # the page after the failed one was refused on the writer, not loaded

    resumed = run_backfill(replace(failed), source=erp, target=Storefront(), jobs=jobs, pair=PAIR)
    assert (resumed.status, resumed.read, resumed.loaded, resumed.pages) == ("completed", 100, 100, 10)


def test_a_second_run_of_the_same_job_stops_at_its_first_write() -> None:
    erp, jobs = Erp(50), Jobs()
    job = new_job(PAIR.name, since=None, page_size=10)
    jobs.save(replace(job, revision=1), expected_revision=0)  # another run already advanced it
    with pytest.raises(JobMoved):
        run_backfill(job, source=erp, target=Storefront(), jobs=jobs, pair=PAIR)


def test_prefetch_hands_over_a_reader_error_and_stops_the_reader_when_the_consumer_stops() -> None:
    read: list[int] = []

    def pages() -> Iterator[list[Sequence[Any]]]:
        for n in range(1000):
            read.append(n)
            yield [(n,)]

    for page in prefetched(pages(), depth=2):
        if page[0][0] == 3:
            break
    assert len(read) <= 3 + 2 + 2  # the pages taken, the buffer, and the one the reader was putting

    def failing() -> Iterator[list[Sequence[Any]]]:
        yield [(1,)]
        raise RuntimeError("ERP connection lost")

    with pytest.raises(RuntimeError, match="ERP connection lost"):
        list(prefetched(failing()))
