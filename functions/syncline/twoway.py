"""Keeping one record in agreement across several systems that can all change it (two-way sync).

For a notice about ``key`` the engine, under a short per-key lease:
1. reads every system's current copy (fetch-on-notify: the notice's payload is never trusted);
2. decides which copies changed: a copy still at the version Syncline last saw or wrote there (or,
   for a system without versions, whose fingerprint equals what Syncline last wrote) is its own
   echo, unchanged, and speaks with the time of the agreed base, not of the write;
3. resolves the copies against the base with the pair's policy (``syncline.conflicts``);
4. writes the agreed values where a copy differs, with compare-and-swap on the version it read, and
   records the fingerprint of what it wrote first, so the change coming back is recognised;
5. commits the new base conditionally on the base version it read; on a lost race, a stale write or
   a busy lease it re-reads and decides again, never overwriting blindly.
A record no rule settles is left untouched and reported for review. Each user edit costs at most
one write per other system, and echoes cost none, so two-way sync settles after a bounded number of
writes whatever order deliveries come in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from syncline.conflicts import RecordPolicy, Resolution, Side, resolve


@dataclass(frozen=True)
class Copy:
    """A system's current copy of a record (``version``: the system's own, when it has one)."""

    values: Mapping[str, Any]
    changed_at: datetime
    version: int | None = None


class StaleWrite(RuntimeError):
    """The copy changed between our read and our write (compare-and-swap failed)."""


class RecordSystem(Protocol):
    name: str

    def read(self, key: str) -> Copy | None: ...

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        """Store ``values`` only if the copy is still at ``expected_version``; return the stored copy."""


@dataclass(frozen=True)
class Base:
    """The last values every system agreed on, the time of the change they came from, and the
    version each system's copy had at that agreement (``seen``)."""

    values: Mapping[str, Any]
    changed_at: datetime
    version: int
    seen: Mapping[str, int] = field(default_factory=dict)


class BaseStore(Protocol):
    def get(self, pair: str, key: str) -> Base | None: ...

    def put(self, pair: str, key: str, base: Base, *, expected_version: int) -> bool:
        """Store ``base`` only if the stored version is still ``expected_version`` (0: absent)."""


@dataclass(frozen=True)
class Echo:
    """What Syncline wrote to a system: the fingerprint, the version the system gave it (once known), and
    the time of the change those values carry (``origin``), so the copy never speaks with our write's time."""

    fingerprint: str
    version: int | None = None
    origin: datetime | None = None
    # While a write is in flight, the expectation the copy matched before it: if the write never lands (the
    # worker died first), the copy is still recognised as ours and keeps the time of the change it carries.
    prior: Echo | None = None

    def matches(self, copy: Copy) -> bool:
        if self.version is not None and copy.version is not None:
            return copy.version == self.version
        return fingerprint(copy.values) == self.fingerprint

    def match(self, copy: Copy) -> Echo | None:
        """The expectation (this one or its prior) the copy is the echo of, if any."""
        if self.matches(copy):
            return self
        return self.prior if self.prior is not None and self.prior.matches(copy) else None


class EchoStore(Protocol):
    def expected(self, system: str, key: str) -> Echo | None: ...

    def expect(self, system: str, key: str, echo: Echo) -> None: ...


class LeaseStore(Protocol):
    def acquire(self, key: str, owner: str, *, seconds: float) -> bool: ...

    def release(self, key: str, owner: str) -> None: ...


@dataclass
class Outcome:
    key: str
    status: Literal["settled", "echo", "review", "busy"]
    writes: list[str] = field(default_factory=list)  # systems written
    resolution: Resolution | None = None
    attempts: int = 1
    # For "review": every system's copy as judged, the version each copy had, and the base they diverged from.
    sides: tuple[Side, ...] = ()
    versions: Mapping[str, int | None] = field(default_factory=dict)
    base: Mapping[str, Any] | None = None
    contested: bool = False  # two or more systems changed the record differently since the base (a conflict)


class RecordChanged(RuntimeError):
    """A decision was taken on copies that have changed since: look at the record again."""


def fingerprint(values: Mapping[str, Any]) -> str:
    encoded = json.dumps(values, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


@dataclass
class TwoWaySync:
    pair: str
    systems: Sequence[RecordSystem]
    policy: RecordPolicy
    bases: BaseStore
    echoes: EchoStore
    leases: LeaseStore
    owner: str
    clock: Callable[[], datetime]
    lease_seconds: float = 30.0
    max_attempts: int = 5

    def sync(self, key: str) -> Outcome:
        if not self.leases.acquire(key, self.owner, seconds=self.lease_seconds):
            return Outcome(key, "busy")  # another worker holds the key: the notice is retried later
        try:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    outcome = self._decide_and_apply(key)
                except (StaleWrite, _LostRace):
                    continue
                outcome.attempts = attempt
                return outcome
            return Outcome(key, "busy", attempts=self.max_attempts)
        finally:
            self.leases.release(key, self.owner)

    def _decide_and_apply(self, key: str) -> Outcome:
        base = self.bases.get(self.pair, key)
        copies = {system.name: system.read(key) for system in self.systems}
        judged = {name: self._side(name, key, copy, base) for name, copy in copies.items() if copy is not None}
        if not judged:
            return Outcome(key, "settled")
        if base is not None and not any(changed for _, changed, _ in judged.values()):
            sides = [side for side, _, _ in judged.values()]
            if all(dict(side.values) == dict(sides[0].values) for side in sides):
                return Outcome(key, "echo")  # every copy is what we agreed or wrote: nothing changed
            # Unchanged but unequal: an earlier attempt died half-way. Decide again; each copy carries its origin.
        sides = [side for side, _, _ in judged.values()]
        changed = [side for side, moved, _ in judged.values() if moved]
        contested = len({fingerprint(side.values) for side in changed}) > 1
        resolution = _resolve_all(base, sides, self.policy)
        if not resolution.settled:
            versions = {name: copy.version if copy else None for name, copy in copies.items()}
            return Outcome(
                key,
                "review",
                resolution=resolution,
                sides=tuple(sides),
                versions=versions,
                base=base.values if base else None,
                contested=contested,
            )
        origin = max(side.changed_at for side in sides)  # the time of the newest change the agreement comes from
        matched = {name: echo for name, (_, _, echo) in judged.items()}
        written = self._agree(key, base, copies, resolution.values, origin, matched)
        return Outcome(key, "settled", written, resolution, contested=contested)

    def apply(self, key: str, values: Mapping[str, Any], *, expected: Mapping[str, int | None]) -> Outcome:
        """Apply a person's decision: write ``values`` everywhere, if every copy is still at the version the
        decision was taken on (``expected``: system -> version, None for "absent"); else raise ``RecordChanged``."""
        if not self.leases.acquire(key, self.owner, seconds=self.lease_seconds):
            return Outcome(key, "busy")
        try:
            base = self.bases.get(self.pair, key)
            copies = {system.name: system.read(key) for system in self.systems}
            current = {name: copy.version if copy else None for name, copy in copies.items()}
            moved = sorted(name for name, version in expected.items() if current.get(name) != version)
            if moved:
                raise RecordChanged(f"{key} changed in {', '.join(moved)} since the decision was taken")
            try:
                written = self._agree(key, base, copies, dict(values), self.clock(), {})
            except (StaleWrite, _LostRace) as exc:
                raise RecordChanged(f"{key} changed while the decision was being applied") from exc
            return Outcome(key, "settled", written)
        finally:
            self.leases.release(key, self.owner)

    def _agree(
        self,
        key: str,
        base: Base | None,
        copies: Mapping[str, Copy | None],
        agreed: Mapping[str, Any],
        origin: datetime,
        matched: Mapping[str, Echo | None],
    ) -> list[str]:
        """Write ``agreed`` where a copy differs (CAS), then commit it as the new base; the systems written."""
        written = []
        seen: dict[str, int] = {}
        for system in self.systems:
            copy = copies[system.name]
            if copy is None or dict(copy.values) != dict(agreed):
                # Expect the echo before writing: the system may notify before write() even returns. Keep the
                # expectation the copy matched, should this write never land.
                prior = matched.get(system.name) if copy is not None else None
                self.echoes.expect(system.name, key, Echo(fingerprint(agreed), None, origin, prior))
                copy = system.write(key, agreed, expected_version=copy.version if copy else None)
                self.echoes.expect(system.name, key, Echo(fingerprint(copy.values), copy.version, origin))
                written.append(system.name)
            if copy.version is not None:
                seen[system.name] = copy.version
        # The agreed values carry the time of the newest change they were decided from.
        committed = Base(agreed, origin, (base.version if base else 0) + 1, seen)
        if not self.bases.put(self.pair, key, committed, expected_version=base.version if base else 0):
            raise _LostRace
        # An expectation left by a crashed attempt (no version yet) is settled by this agreement: pin it to the
        # copy's exact version, or it would keep matching any later edit that happens to carry the same values.
        for system in self.systems:
            echo, copy = self.echoes.expected(system.name, key), copies[system.name]
            if echo is not None and echo.version is None and system.name not in written and copy is not None:
                self.echoes.expect(system.name, key, Echo(fingerprint(copy.values), copy.version, origin))
        return written

    def _side(self, system: str, key: str, copy: Copy, base: Base | None) -> tuple[Side, bool, Echo | None]:
        """The copy as a conflict side, whether it changed since the base, and the expectation it matched."""
        if base is not None and copy.version is not None and base.seen.get(system) == copy.version:
            # Still the copy of the last agreement (exact, even after an edit back to the same values).
            return Side(system, copy.values, base.changed_at, base.version), False, None
        expected = self.echoes.expected(system, key)
        echo = expected.match(copy) if expected is not None else None
        if echo is not None:
            # Still what we last wrote there, also when a crash kept the base from moving: it speaks with
            # the time of the change it carries, never with the time of our write.
            origin = echo.origin or (base.changed_at if base else copy.changed_at)
            return Side(system, copy.values, origin, base.version if base else None), False, replace(echo, prior=None)
        return Side(system, copy.values, copy.changed_at, copy.version), True, None


def _resolve_all(base: Base | None, sides: Sequence[Side], policy: RecordPolicy) -> Resolution:
    """Fold the sides pairwise in a fixed order; the policies are associative for a fixed order."""
    ordered = sorted(sides, key=lambda side: side.system)
    current = ordered[0]
    resolution = Resolution(dict(current.values))
    for side in ordered[1:]:
        resolution = resolve(base.values if base else None, current, side, policy)
        if not resolution.settled:
            return resolution
        newest = max(current.changed_at, side.changed_at)
        current = Side(
            f"{current.system}+{side.system}", resolution.values, newest, max(current.version or 0, side.version or 0)
        )
    return resolution


class _LostRace(Exception):  # control flow: another worker committed the base first
    pass


class FieldSubset:
    """A system seen through some of its fields only: the ones every system of a pair can store. A write keeps the
    other fields as the system holds them (read, then written back with the same compare-and-swap)."""

    def __init__(self, system: RecordSystem, fields: Sequence[str]) -> None:
        self.system, self.fields, self.name = system, tuple(fields), system.name

    def _project(self, copy: Copy) -> Copy:
        return replace(copy, values={name: copy.values.get(name) for name in self.fields})

    def read(self, key: str) -> Copy | None:
        copy = self.system.read(key)
        return self._project(copy) if copy is not None else None

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        current = self.system.read(key)
        if (current is None) != (expected_version is None) or (
            current is not None and current.version != expected_version
        ):
            raise StaleWrite(f"{self.name}: {key} moved on before our write")
        kept = dict(current.values) if current is not None else {}
        merged = {**kept, **{name: values.get(name) for name in self.fields}}
        return self._project(self.system.write(key, merged, expected_version=expected_version))


def shared_fields(systems: Sequence[RecordSystem]) -> list[RecordSystem]:
    """The systems of a pair, each narrowed to the fields all of them store when one declares fewer
    (``synced_fields``: a Salesforce contact has no lifecycle stage), so a copy read back equals what was written
    and a field one side cannot hold is never cleared on the other."""
    declared = [tuple(fields) for system in systems if (fields := getattr(system, "synced_fields", None))]
    if not declared:
        return list(systems)
    common = tuple(name for name in declared[0] if all(name in fields for fields in declared[1:]))
    return [
        system if tuple(getattr(system, "synced_fields", ())) == common else FieldSubset(system, common)
        for system in systems
    ]
