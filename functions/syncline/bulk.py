"""The bulk path: initial or catch-up load of every ERP inventory row into the storefront.

Pages of ERP rows (keyset order) are mapped with the same rules as the incremental path and streamed
into the target's bulk loader (PostgreSQL COPY). Reading the next page overlaps with loading the
current one. Rows that cannot be mapped are counted and reported with their reason, never loaded.
The state cache is not written here: a missing state entry only means the next change to that key
is compared against the target's own version guard, which is what makes both paths safe together.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncline.erp.sage300 import MappingError, inventory_row
from syncline.sync import PairContext

MAX_REPORTED_REJECTS = 100


class PagedSource(Protocol):
    def iter_all(self, page_size: int = ...) -> Iterator[list[dict[str, Any]]]: ...


class BulkTarget(Protocol):
    def bulk_load(self, rows: Any) -> int: ...


@dataclass
class BackfillReport:
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (ERP key, reason), first 100


def backfill_inventory(
    *,
    source: PagedSource,
    target: BulkTarget,
    pair: PairContext,
    page_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Load every ERP row of ``pair`` into ``target``; see the module docstring."""
    report = BackfillReport()

    def mapped_pages() -> Iterator[Sequence[tuple[Any, ...]]]:
        for page in _prefetched(source.iter_all(page_size)):
            rows = []
            for record in page:
                if not pair.accepts(record["ITEMNO"], record["LOCATION"]):
                    continue  # outside the pair's filters
                try:
                    rows.append(inventory_row(record, pair.locations, pair.tz))
                except MappingError as exc:
                    report.rejected += 1
                    if len(report.rejects) < MAX_REPORTED_REJECTS:
                        report.rejects.append((f"{record['ITEMNO']}|{record['LOCATION']}", str(exc)))
            report.read += len(page)
            if on_progress:
                on_progress(len(page))
            yield rows

    report.loaded = target.bulk_load(mapped_pages())
    return report


def _prefetched(pages: Iterator[list[dict[str, Any]]], depth: int = 2) -> Iterator[list[dict[str, Any]]]:
    """Read ahead on a thread (database drivers release the GIL while waiting), bounded to ``depth`` pages."""
    buffer: queue.Queue[list[dict[str, Any]] | BaseException | None] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for page in pages:
                buffer.put(page)
        except BaseException as exc:
            buffer.put(exc)
        else:
            buffer.put(None)

    threading.Thread(target=produce, daemon=True, name="erp-prefetch").start()
    while (item := buffer.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
