"""Reconciliation of a pair: a full compare of ERP and target, and a guarded repair of what differs.

Change detection sees what the ERP stamps; it never sees a row deleted in the ERP, a write lost to
an operator's hand edit of the storefront, or a record that sat in a DLQ and was purged. A full
compare finds all of them:

- ``missing_in_target``: an ERP row (at a mapped location) the target does not have;
- ``missing_in_source``: a target row with no ERP row any more (deleted in the ERP);
- ``mismatch``: both exist and a synced field differs (quantities, description, unit, active);
- ``target_ahead``: a mismatch where the target holds a *newer* version than the ERP; the version
  guard will not let an older row replace it, so it is reported, never overwritten;
- ``stale_version``: content equal, target version older. Normal (the worker skips re-stamped but
  unchanged rows) and reported for information; it counts as in agreement.

Rows the ERP holds but no mapping can take (negative quantity, unmapped location, bad stamp) are
counted as ``unmappable``: they are the DLQ's business, not a discrepancy.

``apply`` repairs through the normal write path: it fetches the *current* ERP rows of the keys to
fix (fetch-on-notify, never the compare's snapshot), upserts them with the target's version guard
and commits the state cache like the worker does. A delete is re-checked against the ERP first and
guarded by the version the compare saw, so a row written again meanwhile is never deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from syncline.config import Pair, PostgresSystem, SynclineConfig
from syncline.erp.sage300 import INVENTORY_FIELDS, MappingError, inventory_row, to_inventory_level
from syncline.models import InventoryLevel, inventory_key
from syncline.ports import KnownState
from syncline.sync import ENTITY, PairContext, write_levels

Kind = Literal["missing_in_target", "missing_in_source", "mismatch", "target_ahead", "stale_version"]
DISCREPANCIES: tuple[Kind, ...] = ("missing_in_target", "missing_in_source", "mismatch", "target_ahead")
COMPARED_FIELDS = INVENTORY_FIELDS[2:9]  # on_hand ... active: what the sync writes
_VERSION = INVENTORY_FIELDS.index("source_version")
MAX_REPORTED_UNMAPPABLE = 100


class ReconcileSource(Protocol):
    def iter_all(self, page_size: int = ...) -> Iterator[list[dict[str, Any]]]: ...
    def fetch_items(self, items: Iterable[str]) -> list[dict[str, Any]]: ...


class ReconcileTarget(Protocol):
    def iter_rows(self, page_size: int = ...) -> Iterator[list[tuple[Any, ...]]]:
        """Every row, ``INVENTORY_FIELDS`` order, in pages."""

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]: ...

    def delete_inventory(self, rows: Sequence[tuple[str, str, int]]) -> set[str]:
        """Delete (sku, location) rows whose version is still at most the given one; return the keys deleted."""


class ReconcileState(Protocol):
    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]: ...
    def forget_many(self, pair: str, entity: str, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class Discrepancy:
    kind: Kind
    key: str  # target key: sku|location
    item: str
    erp_location: str | None
    fields: dict[str, tuple[str | None, str | None]]  # name -> (ERP, target)
    source_version: int | None
    target_version: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "erp_location": self.erp_location,
            "fields": {name: list(values) for name, values in self.fields.items()},
            "source_version": self.source_version,
            "target_version": self.target_version,
        }


@dataclass
class CompareReport:
    pair: str
    entity: str = ENTITY
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
    source: ReconcileSource,
    target: ReconcileTarget,
    pair: PairContext,
    page_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> CompareReport:
    """Read both sides in full and classify every key (see the module docstring)."""
    report = CompareReport(pair=pair.name)
    remaining: dict[tuple[str, str], tuple[Any, ...]] = {}
    for page in target.iter_rows(page_size):
        for row in page:
            remaining[(row[0], row[1])] = row
    report.target_rows = len(remaining)
    for records in source.iter_all(page_size):
        for record in records:
            report.source_rows += 1
            try:
                wanted = inventory_row(record, pair.locations, pair.tz)
            except MappingError as exc:
                # Still in the ERP: its target row (if any) is the DLQ's case, not a delete.
                location = pair.locations.get(str(record["LOCATION"]))
                if location is not None:
                    remaining.pop((str(record["ITEMNO"]), location), None)
                report.unmappable += 1
                if len(report.unmappable_examples) < MAX_REPORTED_UNMAPPABLE:
                    report.unmappable_examples.append((f"{record['ITEMNO']}|{record['LOCATION']}", str(exc)))
                continue
            _classify(report, wanted, remaining.pop((wanted[0], wanted[1]), None), str(record["LOCATION"]))
        if on_progress:
            on_progress(len(records))
    for (sku, location), row in sorted(remaining.items()):
        report.discrepancies.append(
            Discrepancy("missing_in_source", inventory_key(sku, location), sku, None, {}, None, int(row[_VERSION]))
        )
    report.finished_at = datetime.now(UTC)
    return report


def _classify(report: CompareReport, wanted: tuple[Any, ...], found: tuple[Any, ...] | None, erp_location: str) -> None:
    sku, location, version = wanted[0], wanted[1], int(wanted[_VERSION])
    key = inventory_key(sku, location)
    if found is None:
        report.discrepancies.append(Discrepancy("missing_in_target", key, sku, erp_location, {}, version, None))
        return
    differing = {
        name: (_text(wanted[i]), _text(found[i]))
        for i, name in enumerate(INVENTORY_FIELDS)
        if name in COMPARED_FIELDS and wanted[i] != found[i]
    }
    found_version = int(found[_VERSION])
    if differing:
        kind: Kind = "target_ahead" if found_version > version else "mismatch"
        report.discrepancies.append(Discrepancy(kind, key, sku, erp_location, differing, version, found_version))
        return
    report.in_agreement += 1
    if found_version < version:
        report.stale_versions += 1


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass
class ApplyReport:
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0  # the guard refused (a newer version arrived meanwhile) or the ERP now agrees
    kept: int = 0  # deletes skipped because the ERP has the row again
    left: int = 0  # target_ahead: never overwritten
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (key, reason) unmappable at apply time

    def as_dict(self) -> dict[str, Any]:
        return {
            "upserted": self.upserted,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "left": self.left,
            "rejected": [list(r) for r in self.rejected],
        }


def apply(
    report: CompareReport,
    *,
    source: ReconcileSource,
    target: ReconcileTarget,
    state: ReconcileState,
    pair: PairContext,
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> ApplyReport:
    """Repair the discrepancies of ``report`` in batches (see the module docstring)."""
    result = ApplyReport(left=sum(1 for d in report.discrepancies if d.kind == "target_ahead"))
    to_write = [d for d in report.discrepancies if d.kind in ("missing_in_target", "mismatch")]
    to_delete = [d for d in report.discrepancies if d.kind == "missing_in_source"]
    for start in range(0, len(to_write), batch_size):
        batch = to_write[start : start + batch_size]
        _write_batch(batch, result, source, target, state, pair)
        if on_progress:
            on_progress(len(batch))
    for start in range(0, len(to_delete), batch_size):
        batch = to_delete[start : start + batch_size]
        _delete_batch(batch, result, source, target, state, pair)
        if on_progress:
            on_progress(len(batch))
    return result


def _current_levels(
    items: Iterable[str], source: ReconcileSource, pair: PairContext, result: ApplyReport
) -> dict[str, InventoryLevel]:
    """Fresh ERP rows of ``items`` as canonical levels, by target key."""
    levels = {}
    for record in source.fetch_items(items):
        try:
            level = to_inventory_level(record, pair.locations, pair.tz)
        except (MappingError, ValueError) as exc:
            result.rejected.append((f"{record['ITEMNO']}|{record['LOCATION']}", str(exc)))
            continue
        levels[level.key] = level
    return levels


def _write_batch(
    batch: Sequence[Discrepancy],
    result: ApplyReport,
    source: ReconcileSource,
    target: ReconcileTarget,
    state: ReconcileState,
    pair: PairContext,
) -> None:
    current = _current_levels({d.item for d in batch}, source, pair, result)
    levels = [current[d.key] for d in batch if d.key in current]
    accepted = write_levels(levels, target=target, state=state, pair=pair.name)
    result.upserted += len(accepted)
    result.unchanged += len(levels) - len(accepted)


def _delete_batch(
    batch: Sequence[Discrepancy],
    result: ApplyReport,
    source: ReconcileSource,
    target: ReconcileTarget,
    state: ReconcileState,
    pair: PairContext,
) -> None:
    # Re-check: a row that is back in the ERP (or was only unmappable a moment ago) is not deleted.
    present = _present_keys({d.item for d in batch}, source, pair)
    gone = [d for d in batch if d.key not in present]
    result.kept += len(batch) - len(gone)
    deleted = target.delete_inventory([(d.item, d.key.rpartition("|")[2], d.target_version or 0) for d in gone])
    if deleted:
        state.forget_many(pair.name, ENTITY, sorted(deleted))
    result.deleted += len(deleted)
    result.unchanged += len(gone) - len(deleted)


def _present_keys(items: Iterable[str], source: ReconcileSource, pair: PairContext) -> set[str]:
    keys = set()
    for record in source.fetch_items(items):
        location = pair.locations.get(str(record["LOCATION"]))
        if location is not None:
            keys.add(inventory_key(str(record["ITEMNO"]), location))
    return keys


def reconcilable(config: SynclineConfig, pair: Pair) -> bool:
    """Pairs the full compare covers today: one-way inventory from the ERP into a PostgreSQL storefront."""
    return (
        pair.direction == "one_way"
        and pair.entity == "inventory_level"
        and isinstance(config.systems[pair.target], PostgresSystem)
    )
