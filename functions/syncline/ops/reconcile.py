"""Reconciliation of a pair: a full compare of both sides, and a guarded repair of what differs.

Change detection sees what a source notifies or stamps; it never sees a row deleted in the ERP, a write
lost to an operator's hand edit, a record removed from a store, or a change that sat in a DLQ and was
purged. A full compare finds all of them. One model serves every pair: each side is read as
*key -> comparable values* (``Side``: the ERP's mapped rows, the storefront's rows, a Shopify store's
levels, a Fracttal warehouse, a two-way record store), and every key is classified:

- ``missing_in_target``: the source has it, the target does not;
- ``missing_in_source``: the target has it, the source does not (deleted in the ERP, removed from a store);
- ``mismatch``: both have it and a compared value differs;
- ``target_ahead``: a mismatch where the target holds a *newer* source version (only where both sides
  carry one: the PostgreSQL storefront); the version guard will not let an older row replace it, so it
  is reported, never overwritten;
- ``stale_version``: content equal, target version older. Informational; it counts as in agreement.

Source rows no mapping can take (negative quantity, unmapped location, bad stamp) are ``unmappable``:
the DLQ's business, not a discrepancy. Rows outside the pair's filters are not compared at all.

The consistency ratio is records in agreement / records compared. ``apply`` repairs in batches
through the pair's own write path (``syncline.ops.reconcile_sides``: the sync worker's
``write_levels`` for one-way inventory, the pair's ``TwoWaySync`` for a two-way pair), never from
the compare's snapshot, so version guards, compare-and-swap, echo suppression and conflict policies
hold exactly as for a notified change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

Kind = Literal["missing_in_target", "missing_in_source", "mismatch", "target_ahead", "stale_version"]
DISCREPANCIES: tuple[Kind, ...] = ("missing_in_target", "missing_in_source", "mismatch", "target_ahead")
MAX_REPORTED_UNMAPPABLE = 100


@dataclass(frozen=True)
class Entry:
    """One record of one side: its key, the values compared, and a version where versions are comparable."""

    key: str
    values: Mapping[str, Any]
    version: int | None = None
    ref: tuple[str, str] | None = None  # an ERP row's own (item, location)


@dataclass(frozen=True)
class Unmappable:
    """A source row no mapping can take; ``key`` is the target key it would have (its target row is then no delete)."""

    label: str
    reason: str
    key: str | None = None


class Side(Protocol):
    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        """Every record of the side, in pages."""


@dataclass(frozen=True)
class Discrepancy:
    kind: Kind
    key: str
    fields: dict[str, tuple[str | None, str | None]]  # name -> (source, target)
    source_version: int | None = None
    target_version: int | None = None
    ref: tuple[str, str] | None = None  # the ERP row's (item, location), when the source is the ERP
    note: str | None = None  # what apply will do about it, when that is not the obvious repair

    @property
    def item(self) -> str:
        return self.ref[0] if self.ref else self.key.rpartition("|")[0]

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"kind": self.kind, "key": self.key}
        if self.ref is not None:
            document["erp_location"] = self.ref[1]
        document |= {
            "fields": {name: list(values) for name, values in self.fields.items()},
            "source_version": self.source_version,
            "target_version": self.target_version,
        }
        if self.note:
            document["note"] = self.note
        return document


@dataclass
class CompareReport:
    pair: str
    entity: str
    source: str = ""  # "system (kind)"
    target: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    source_rows: int = 0
    target_rows: int = 0
    in_agreement: int = 0
    stale_versions: int = 0
    unmappable: int = 0
    unmappable_examples: list[tuple[str, str]] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def compared(self) -> int:
        return self.in_agreement + len(self.discrepancies)

    @property
    def consistency(self) -> float:
        """Records in agreement / records compared (1.0 for an empty pair)."""
        return self.in_agreement / self.compared if self.compared else 1.0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(DISCREPANCIES, 0)
        for discrepancy in self.discrepancies:
            counts[discrepancy.kind] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "entity": self.entity,
            "source": self.source,
            "target": self.target,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "compared": self.compared,
            "in_agreement": self.in_agreement,
            "consistency": round(self.consistency, 6),
            "counts": self.counts(),
            "stale_versions": self.stale_versions,
            "unmappable": self.unmappable,
            "unmappable_examples": [list(example) for example in self.unmappable_examples],
            "discrepancies": [d.as_dict() for d in self.discrepancies],
        }


def compare(
    *,
    source: Side,
    target: Side,
    pair: str,
    entity: str,
    labels: tuple[str, str] = ("", ""),
    notes: Mapping[Kind, str] | None = None,
    page_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> CompareReport:
    """Read both sides in full and classify every key (see the module docstring); ``notes`` say, per kind,
    what apply does when that is not the obvious repair (a SaaS product missing in the ERP is left)."""
    report = CompareReport(pair=pair, entity=entity, source=labels[0], target=labels[1])
    remaining: dict[str, Entry] = {}
    for page in target.pages(page_size):
        for entry in page:
            if isinstance(entry, Entry):
                remaining[entry.key] = entry
    report.target_rows = len(remaining)
    notes = notes or {}
    for page in source.pages(page_size):
        for entry in page:
            report.source_rows += 1
            if isinstance(entry, Unmappable):
                # Still in the source: its target row (if any) is the DLQ's case, not a delete.
                if entry.key is not None:
                    remaining.pop(entry.key, None)
                report.unmappable += 1
                if len(report.unmappable_examples) < MAX_REPORTED_UNMAPPABLE:
                    report.unmappable_examples.append((entry.label, entry.reason))
                continue
            _classify(report, entry, remaining.pop(entry.key, None), notes)
        if on_progress:
            on_progress(len(page))
    for key, found in sorted(remaining.items()):
        kind: Kind = "missing_in_source"
        report.discrepancies.append(Discrepancy(kind, key, {}, None, found.version, note=notes.get(kind)))
    report.finished_at = datetime.now(UTC)
    return report


def _classify(report: CompareReport, wanted: Entry, found: Entry | None, notes: Mapping[Kind, str]) -> None:
    kind: Kind
    if found is None:
        kind = "missing_in_target"
        report.discrepancies.append(
            Discrepancy(kind, wanted.key, {}, wanted.version, None, wanted.ref, notes.get(kind))
        )
        return
    names = sorted(set(wanted.values) | set(found.values), key=_field_order(wanted.values, found.values))
    differing = {
        name: (_text(wanted.values.get(name)), _text(found.values.get(name)))
        for name in names
        if wanted.values.get(name) != found.values.get(name)
    }
    ahead = stale = False
    if wanted.version is not None and found.version is not None:
        ahead, stale = found.version > wanted.version, found.version < wanted.version
    if differing:
        kind = "target_ahead" if ahead else "mismatch"
        report.discrepancies.append(
            Discrepancy(kind, wanted.key, differing, wanted.version, found.version, wanted.ref, notes.get(kind))
        )
        return
    report.in_agreement += 1
    report.stale_versions += stale


def _field_order(*sides: Mapping[str, Any]) -> Callable[[str], tuple[int, str]]:
    """Fields in the order the source declares them, then the target's extra ones by name."""
    order: dict[str, int] = {}
    for values in sides:
        for name in values:
            order.setdefault(name, len(order))
    return lambda name: (order[name], name)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass
class ApplyReport:
    upserted: int = 0  # one-way: records written through the worker's write path
    deleted: int = 0  # one-way into the PostgreSQL storefront: rows deleted in the ERP, deleted here too
    unchanged: int = 0  # not written: a newer version arrived meanwhile, the source now agrees, or the target refused
    kept: int = 0  # deletes skipped because the source has the record again
    left: int = 0  # never touched: target ahead, or a SaaS record the source lacks (see the discrepancy's note)
    resynced: int = 0  # two-way: records the pair's sync settled (its policy chose the values)
    review: list[str] = field(default_factory=list)  # two-way: conflict ids no rule settles (syncline conflicts)
    busy: int = 0  # two-way: another worker held the record; the next compare shows whether it settled
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (key, reason): could not be repaired

    def as_dict(self) -> dict[str, Any]:
        return {
            "upserted": self.upserted,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "left": self.left,
            "resynced": self.resynced,
            "review": list(self.review),
            "busy": self.busy,
            "rejected": [list(r) for r in self.rejected],
        }


class Repair(Protocol):
    def __call__(self, batch: Sequence[Discrepancy], result: ApplyReport) -> None:
        """Repair one batch of discrepancies through the pair's write path, counting what happened in ``result``."""


@dataclass
class Reconciliation:
    """One pair, ready to compare and repair: a reader per side and the pair's repair."""

    pair: str
    entity: str
    source: Side
    target: Side
    repair: Repair
    labels: tuple[str, str] = ("", "")
    notes: Mapping[Kind, str] = field(default_factory=dict)

    def compare(self, *, page_size: int = 5000, on_progress: Callable[[int], None] | None = None) -> CompareReport:
        return compare(
            source=self.source,
            target=self.target,
            pair=self.pair,
            entity=self.entity,
            labels=self.labels,
            notes=self.notes,
            page_size=page_size,
            on_progress=on_progress,
        )

    def apply(
        self, report: CompareReport, *, batch_size: int = 500, on_progress: Callable[[int], None] | None = None
    ) -> ApplyReport:
        return apply(report, self.repair, batch_size=batch_size, on_progress=on_progress)


def apply(
    report: CompareReport,
    repair: Repair,
    *,
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> ApplyReport:
    """Repair the discrepancies of ``report`` in batches of ``batch_size``."""
    result = ApplyReport()
    for start in range(0, len(report.discrepancies), batch_size):
        batch = report.discrepancies[start : start + batch_size]
        repair(batch, result)
        if on_progress:
            on_progress(len(batch))
    return result
