"""Resumable backfill: the bulk path, page by page, with a job record that remembers where it stands.

Each page of ERP rows (keyset order: item, location) is mapped with the incremental path's rules,
filtered to rows changed since ``since`` if given, and loaded through the target's bulk loader
(COPY, then a version-guarded merge when the table is not empty). Only then does the job record
move its position past the page, with a conditional write on its revision. A crash between load
and record reloads one page on resume, which the version guard makes harmless; two runs of the
same job cannot both advance it (the second one's write fails and it stops).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from syncline.config import Pair, SynclineConfig
from syncline.erp.sage300 import INVENTORY_FIELDS, MappingError, inventory_row
from syncline.stamps import stamp_of, version_of
from syncline.sync import PairContext

JobStatus = Literal["running", "failed", "completed"]
_VERSION = INVENTORY_FIELDS.index("source_version")
MAX_RECORDED_REJECTS = 20


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
    def iter_all(self, page_size: int = ..., after: tuple[str, str] | None = ...) -> Iterator[list[dict[str, Any]]]: ...


class BulkTarget(Protocol):
    def bulk_load(self, rows: Any) -> int: ...


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
) -> BackfillJob:
    """Run (or resume) ``job`` to completion; returns the final record. Raises after recording a failure."""
    if job.status == "completed":
        return job
    job = _save(jobs, replace(job, status="running", error=None))
    since_version = version_of(*stamp_of(job.since, pair.tz)) if job.since else None
    try:
        for page in source.iter_all(job.page_size, job.position):
            rows, rejects = _map_page(page, pair, since_version)
            loaded = target.bulk_load([rows]) if rows else 0
            job = _save(
                jobs,
                replace(
                    job,
                    position=(str(page[-1]["ITEMNO"]), str(page[-1]["LOCATION"])),
                    read=job.read + len(page),
                    loaded=job.loaded + loaded,
                    rejected=job.rejected + len(rejects),
                    rejects=(job.rejects + tuple(rejects))[:MAX_RECORDED_REJECTS],
                    pages=job.pages + 1,
                ),
            )
            if on_progress:
                on_progress(job)
    except JobMoved:
        raise
    except Exception as exc:
        _save(jobs, replace(job, status="failed", error=str(exc)[:500]))
        raise
    return _save(jobs, replace(job, status="completed"))


def _map_page(
    page: Sequence[dict[str, Any]], pair: PairContext, since_version: int | None
) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    rows, rejects = [], []
    for record in page:
        try:
            row = inventory_row(record, pair.locations, pair.tz)
        except MappingError as exc:
            rejects.append((f"{record['ITEMNO']}|{record['LOCATION']}", str(exc)))
            continue
        if since_version is None or row[_VERSION] >= since_version:
            rows.append(row)
    return rows, rejects


def _save(jobs: JobStore, job: BackfillJob) -> BackfillJob:
    saved = replace(job, revision=job.revision + 1, updated_at=datetime.now(UTC))
    jobs.save(saved, expected_revision=job.revision)
    return saved
