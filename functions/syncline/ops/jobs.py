"""Resumable backfill: the bulk path, page by page, with a job record that remembers where it stands.

Each page of ERP rows (keyset order: item, location) is mapped with the incremental path's rules,
filtered to rows changed since ``since`` if given, and loaded through the target's bulk loader
(COPY straight into the table when it holds neither the page's first nor its last row, else COPY into
staging and a version-guarded merge). The next page is read from the ERP while the current one loads. Only after a
page has loaded does the job's position move past it; the record is written (a conditional write on
its revision) at most every ``CHECKPOINT_SECONDS`` and when the run ends, fails or stops. A process
killed between two writes reloads at most that many seconds of pages on resume, which the version
guard makes harmless; two runs of the same job cannot both advance it (the second one's write fails
and it stops).
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from syncline.config import Pair, SynclineConfig
from syncline.erp.sage300 import INVENTORY_FIELDS, MappingError, bulk_key, inventory_values
from syncline.stamps import stamp_of, version_of
from syncline.sync import PairContext

JobStatus = Literal["running", "failed", "completed"]
_VERSION = INVENTORY_FIELDS.index("source_version")
MAX_RECORDED_REJECTS = 20
CHECKPOINT_SECONDS = 1.0  # how often a running job's record is written (one DynamoDB write each)


@dataclass(frozen=True)
class BackfillJob:
    id: str
    pair: str
    since: datetime | None
    page_size: int
    status: JobStatus = "running"
    position: tuple[str, str] | None = None
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    pages: int = 0
    rejects: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revision: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pair": self.pair,
            "since": self.since.isoformat() if self.since else None,
            "page_size": self.page_size,
            "status": self.status,
            "position": list(self.position) if self.position else None,
            "read": self.read,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "pages": self.pages,
            "rejects": [list(r) for r in self.rejects],
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class JobMoved(RuntimeError):
    """Another run advanced this job first; this one stops."""


class JobStore(Protocol):
    def load(self, job_id: str) -> BackfillJob | None: ...

    def save(self, job: BackfillJob, *, expected_revision: int) -> None:
        """Write ``job`` only if the stored revision is ``expected_revision`` (0: must not exist); else ``JobMoved``."""


class ResumableSource(Protocol):
    def iter_rows(self, page_size: int = ..., after: tuple[str, str] | None = ...) -> Iterator[list[Sequence[Any]]]:
        """Pages of ICILOC rows as fetched (``FETCH_FIELDS`` order), in keyset order, after ``after``."""


class BulkTarget(Protocol):
    def bulk_load(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Load one page of mapped rows (``INVENTORY_FIELDS`` order), never replacing a newer version."""


BACKFILLED = "one-way inventory_level pairs from sage300 into postgres (a PostgreSQL storefront)"


def backfill_coverage(config: SynclineConfig, pair: Pair) -> str | None:
    """None when backfill can load ``pair`` (its bulk path is ICILOC -> a storefront's COPY); else why not."""
    kinds = (config.systems[pair.source].kind, config.systems[pair.target].kind)
    if pair.direction == "one_way" and pair.entity == "inventory_level" and kinds == ("sage300", "postgres"):
        return None
    return (
        f"backfill loads {BACKFILLED}; {pair.name} is {pair.direction} {pair.entity}, {kinds[0]} -> {kinds[1]} "
        "(use `syncline reconcile --apply` to converge it)"
    )


def new_job(pair: str, *, since: datetime | None, page_size: int) -> BackfillJob:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return BackfillJob(id=f"bf-{stamp}-{secrets.token_hex(3)}", pair=pair, since=since, page_size=page_size)


def run_backfill(
    job: BackfillJob,
    *,
    source: ResumableSource,
    target: BulkTarget,
    jobs: JobStore,
    pair: PairContext,
    on_progress: Callable[[BackfillJob], None] | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> BackfillJob:
    """Run (or resume) ``job`` to completion; returns the final record. Raises after recording a failure.

    Three stages overlap: the ERP read (:func:`prefetched`), the mapping here, and the load on a writer
    thread (the target's COPY and commit mostly wait on the database). Pages load one at a time, in key
    order, and the job counts a page only once its load returned.
    """
    if job.status == "completed":
        return job
    job = _save(jobs, replace(job, status="running", error=None))
    since_version = version_of(*stamp_of(job.since, pair.tz)) if job.since else None
    saved_at = clock()
    loading: deque[tuple[Future[int], Sequence[Any], int, list[tuple[str, str]]]] = deque()

    def loaded(pending: tuple[Future[int], Sequence[Any], int, list[tuple[str, str]]]) -> BackfillJob:
        nonlocal saved_at
        future, last, read, rejects = pending
        done = replace(
            job,
            position=bulk_key(last),
            read=job.read + read,
            loaded=job.loaded + future.result(),
            rejected=job.rejected + len(rejects),
            rejects=(job.rejects + tuple(rejects))[:MAX_RECORDED_REJECTS],
            pages=job.pages + 1,
        )
        if clock() - saved_at >= checkpoint_seconds:
            done, saved_at = _save(jobs, done), clock()
        if on_progress:
            on_progress(done)
        return done

    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-load")
    failed = threading.Event()

    def load(rows: list[tuple[Any, ...]]) -> int:
        if failed.is_set():  # never load past a page that failed: the job resumes from before it
            raise RuntimeError("not loaded: an earlier page failed")
        try:
            return target.bulk_load(rows) if rows else 0
        except BaseException:
            failed.set()
            raise

    try:
        for page in prefetched(source.iter_rows(job.page_size, job.position)):
            rows, rejects = _map_page(page, pair, since_version)
            loading.append((writer.submit(load, rows), page[-1], len(page), rejects))
            while len(loading) > 1 or (loading and loading[0][0].done()):
                job = loaded(loading.popleft())
        while loading:
            job = loaded(loading.popleft())
    except JobMoved:
        raise
    except Exception as exc:
        _save(jobs, replace(job, status="failed", error=str(exc)[:500]))
        raise
    finally:
        writer.shutdown(wait=True, cancel_futures=True)
    return _save(jobs, replace(job, status="completed"))


def prefetched(pages: Iterator[list[Sequence[Any]]], depth: int = 2) -> Iterator[list[Sequence[Any]]]:
    """``pages``, read ahead on a thread (database drivers release the GIL while they wait) by at most ``depth``.

    A reader error is raised here, in the consumer; when the consumer stops early (an error of its own),
    the reader stops after the page it is on.
    """
    buffer: queue.Queue[list[Sequence[Any]] | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                buffer.put(page)
        except BaseException as exc:
            buffer.put(exc)
        else:
            buffer.put(None)

    reader = threading.Thread(target=produce, daemon=True, name="erp-prefetch")
    reader.start()
    try:
        while (item := buffer.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put a page nobody will take
            try:
                buffer.get(timeout=0.05)
            except queue.Empty:
                continue


def _map_page(
    page: Sequence[Sequence[Any]], pair: PairContext, since_version: int | None
) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    rows, rejects = [], []
    for fetched in page:
        try:
            row = inventory_values(fetched, pair.locations, pair.tz)
        except MappingError as exc:
            rejects.append(("|".join(bulk_key(fetched)), str(exc)))
            continue
        if since_version is None or row[_VERSION] >= since_version:
            rows.append(row)
    return rows, rejects


def _save(jobs: JobStore, job: BackfillJob) -> BackfillJob:
    saved = replace(job, revision=job.revision + 1, updated_at=datetime.now(UTC))
    jobs.save(saved, expected_revision=job.revision)
    return saved
