"""The identity map: each record's id in each system, matched by SKU or barcode, never guessed.

Records are known by a canonical key (a SKU, or SKU|location for inventory). A system's own ids
(Shopify variant / inventory-item GIDs, HubSpot ids, ERP ITEMNO) are attached to that key, either
by :func:`match` (exact SKU, else exact barcode, else nothing) or by an operator (``syncline map``).
An id is attached to at most one key; a record that cannot be matched is reported with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Identity:
    entity: str
    key: str
    ids: Mapping[str, str] = field(default_factory=dict)  # system -> that system's id


@dataclass(frozen=True)
class ExternalRecord:
    """A record as a system lists it, with what can identify it."""

    system: str
    id: str
    sku: str | None = None
    barcode: str | None = None


@dataclass(frozen=True)
class Unmatched:
    record: ExternalRecord
    reason: str


class AlreadyMapped(ValueError):
    """The system id is attached to another key; unset it there first."""


class IdentityStore(Protocol):
    def get(self, entity: str, key: str) -> Identity | None: ...

    def key_of(self, entity: str, system: str, system_id: str) -> str | None: ...

    def set(self, entity: str, key: str, system: str, system_id: str) -> None:
        """Attach; raise ``AlreadyMapped`` if ``system_id`` belongs to another key."""

    def unset(self, entity: str, key: str, system: str) -> None: ...

    def list(self, entity: str) -> Iterator[Identity]: ...


@dataclass
class MatchReport:
    matched: dict[str, ExternalRecord] = field(default_factory=dict)  # key -> record
    unmatched: list[Unmatched] = field(default_factory=list)


def match(records: Iterable[ExternalRecord], skus: Iterable[str], barcodes: Mapping[str, str]) -> MatchReport:
    """Match a system's records to canonical SKUs: exact SKU first, then exact barcode; ambiguity is reported.

    ``barcodes`` maps barcode -> canonical SKU (from the ERP or the product catalogue).
    """
    known = set(skus)
    report = MatchReport()
    claimed: dict[str, ExternalRecord] = {}
    for record in records:
        sku = record.sku.strip() if record.sku else None
        if sku and sku in known:
            key, how = sku, "sku"
        elif record.barcode and record.barcode.strip() in barcodes:
            key, how = barcodes[record.barcode.strip()], "barcode"
        else:
            why = (
                "no SKU or barcode"
                if not (sku or record.barcode)
                else f"SKU {sku!r} and barcode {record.barcode!r} are unknown"
            )
            report.unmatched.append(Unmatched(record, why))
            continue
        if key in claimed:
            other = claimed[key]
            report.unmatched.append(
                Unmatched(record, f"{how} matches {key}, already matched by {other.system} id {other.id}")
            )
            continue
        claimed[key] = record
    report.matched = claimed
    return report


def apply_matches(store: IdentityStore, entity: str, report: MatchReport) -> list[Unmatched]:
    """Attach every match; a conflicting existing mapping is reported, not overwritten."""
    conflicts: list[Unmatched] = []
    for key, record in sorted(report.matched.items()):
        try:
            store.set(entity, key, record.system, record.id)
        except AlreadyMapped as exc:
            conflicts.append(Unmatched(record, str(exc)))
    return conflicts


def describe(identities: Sequence[Identity], systems: Sequence[str]) -> list[dict[str, str]]:
    """Rows for ``syncline map list``: one per key, a column per system ('-' where unmapped)."""
    return [{"key": i.key, **{s: i.ids.get(s, "-") for s in systems}} for i in identities]
