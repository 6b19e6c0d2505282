"""The conflict review list: records no policy settles, kept for a person to decide.

When two-way sync meets a field its pair's policy leaves to a person (``manual_review``, or an authority
rule with no owner among the sides), the record is left untouched everywhere and a ``Conflict`` is stored:
every system's copy and version, the last agreed base, the fields in question, the reasons, and the
values the rules did settle (``proposal``). Its life:

    pending --(sweeper: older than escalate_after)--> escalated (one notification)
    pending | escalated --(a person: syncline conflicts resolve)--> resolved (the decision is applied)
    pending | escalated --(sweeper: the rules now settle it, or it changed into another conflict)--> resolved | superseded

A conflict's id is derived from the pair, the key and the copies' versions and values, so a notice
delivered twice records it once. Deciding applies the values through two-way sync's own write path
(compare-and-swap on the versions the decision was taken on, echo expectations, base commit): a record
that changed since is refused with ``RecordChanged``, and the person looks again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from syncline.twoway import Outcome, fingerprint

Status = Literal["pending", "escalated", "resolved", "superseded"]
OPEN: tuple[Status, ...] = ("pending", "escalated")
MERGED = "merged"


@dataclass(frozen=True)
class ConflictSide:
    system: str
    values: Mapping[str, Any]
    changed_at: datetime
    version: int | None  # the copy's own version when the conflict was recorded (None: absent there)


@dataclass(frozen=True)
class Decision:
    take: str  # a system's name, or "merged"
    values: Mapping[str, Any]  # the whole record as applied
    by: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class Conflict:
    id: str
    pair: str
    entity: str
    key: str
    sides: tuple[ConflictSide, ...]
    base: Mapping[str, Any] | None
    fields: tuple[str, ...]  # the fields a person must decide
    proposal: Mapping[str, Any]  # the rules' values: settled fields decided, the fields in question at the base
    reasons: tuple[str, ...]
    status: Status
    created_at: datetime
    updated_at: datetime
    escalated_at: datetime | None = None
    decision: Decision | None = None
    revision: int = 1

    def side(self, system: str) -> ConflictSide:
        for side in self.sides:
            if side.system == system:
                return side
        names = ", ".join(side.system for side in self.sides)
        raise ValueError(f"{system!r} is not a side of conflict {self.id} (its sides: {names})")

    @property
    def versions(self) -> dict[str, int | None]:
        return {side.system: side.version for side in self.sides}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pair": self.pair,
            "entity": self.entity,
            "key": self.key,
            "status": self.status,
            "fields": list(self.fields),
            "reasons": list(self.reasons),
            "sides": [
                {
                    "system": side.system,
                    "values": dict(side.values),
                    "changed_at": side.changed_at.isoformat(),
                    "version": side.version,
                }
                for side in self.sides
            ],
            "base": dict(self.base) if self.base is not None else None,
            "proposal": dict(self.proposal),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "escalated_at": self.escalated_at.isoformat() if self.escalated_at else None,
            "decision": (
                {
                    "take": self.decision.take,
                    "values": dict(self.decision.values),
                    "by": self.decision.by,
                    "at": self.decision.at.isoformat(),
                    "note": self.decision.note,
                }
                if self.decision
                else None
            ),
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conflict:
        decision = data.get("decision")
        return cls(
            id=data["id"],
            pair=data["pair"],
            entity=data["entity"],
            key=data["key"],
            sides=tuple(
                ConflictSide(
                    side["system"], side["values"], datetime.fromisoformat(side["changed_at"]), side.get("version")
                )
                for side in data["sides"]
            ),
            base=data.get("base"),
            fields=tuple(data["fields"]),
            proposal=data.get("proposal") or {},
            reasons=tuple(data.get("reasons", ())),
            status=data["status"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            escalated_at=datetime.fromisoformat(data["escalated_at"]) if data.get("escalated_at") else None,
            decision=(
                Decision(
                    decision["take"],
                    decision["values"],
                    decision["by"],
                    datetime.fromisoformat(decision["at"]),
                    decision.get("note", ""),
                )
                if decision
                else None
            ),
            revision=int(data.get("revision", 1)),
        )


def conflict_id(pair: str, key: str, versions: Mapping[str, int | None], values: Iterable[Mapping[str, Any]]) -> str:
    """The same divergence always gets the same id (a redelivered notice records it once)."""
    material = json.dumps(
        [pair, key, sorted(versions.items()), sorted(fingerprint(v) for v in values)], default=str
    ).encode()
    return "cf-" + hashlib.blake2b(material, digest_size=6).hexdigest()


class ConflictStore(Protocol):
    def add(self, conflict: Conflict) -> bool:
        """Store ``conflict`` unless one with its id exists; whether it was stored."""

    def get(self, conflict_id: str) -> Conflict | None: ...

    def list(self, status: Status, *, limit: int = 100) -> list[Conflict]:
        """Conflicts with ``status``, oldest first."""

    def save(self, conflict: Conflict, *, expected_revision: int) -> bool:
        """Replace the stored conflict only if its revision is still ``expected_revision``."""


class Escalation(Protocol):
    def escalate(self, conflict: Conflict, *, age: timedelta) -> None:
        """Tell a person (SNS -> e-mail / Slack / PagerDuty) that ``conflict`` has waited too long."""


class ConflictMoved(RuntimeError):
    """The conflict was changed by someone else meanwhile (another sweeper or person): read it again."""


@dataclass
class SweepReport:
    checked: int = 0
    settled: int = 0  # the rules settle it now (a side changed, or the policy did)
    superseded: int = 0  # it turned into another conflict (its own entry)
    escalated: int = 0
    still_open: int = 0
    busy: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class ConflictReview:
    store: ConflictStore
    clock: Callable[[], datetime]
    escalate_after: timedelta = timedelta(hours=4)
    escalation: Escalation | None = None

    def record(self, pair: str, entity: str, outcome: Outcome) -> Conflict:
        """Store the conflict a ``review`` outcome describes (once, however often it is delivered)."""
        if outcome.status != "review" or outcome.resolution is None:
            raise ValueError(f"outcome for {outcome.key} is {outcome.status!r}, not a conflict to review")
        versions = {side.system: outcome.versions.get(side.system) for side in outcome.sides}
        now = self.clock()
        conflict = Conflict(
            id=conflict_id(pair, outcome.key, versions, (side.values for side in outcome.sides)),
            pair=pair,
            entity=entity,
            key=outcome.key,
            sides=tuple(
                ConflictSide(side.system, dict(side.values), side.changed_at, versions[side.system])
                for side in outcome.sides
            ),
            base=dict(outcome.base) if outcome.base is not None else None,
            fields=outcome.resolution.needs_review,
            proposal=dict(outcome.resolution.values),
            reasons=outcome.resolution.reasons,
            status="pending",
            created_at=now,
            updated_at=now,
        )
        if not self.store.add(conflict):
            stored = self.store.get(conflict.id)
            return stored or conflict
        return conflict

    def decision_values(
        self, conflict: Conflict, take: str, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The whole record a decision applies: the rules' proposal, with the fields in question taken from
        ``take`` (a side) or, for ``merged``, from ``overrides``, which must then name every one of them."""
        values = dict(conflict.proposal)
        overrides = dict(overrides or {})
        if take == MERGED:
            missing = [name for name in conflict.fields if name not in overrides]
            if missing:
                raise ValueError(
                    f"--take merged needs a value for every field in question; missing: {', '.join(missing)} "
                    f"(give --value {missing[0]}=...)"
                )
        else:
            side = conflict.side(take)
            for name in conflict.fields:
                values[name] = side.values.get(name)
        values.update(overrides)
        return values

    def resolve(
        self,
        conflict_id: str,
        take: str,
        apply: Callable[[Conflict, Mapping[str, Any]], Outcome],
        *,
        overrides: Mapping[str, Any] | None = None,
        by: str,
        note: str = "",
    ) -> Conflict:
        """Apply a person's decision through ``apply`` (two-way sync's write path) and close the conflict."""
        conflict = self.store.get(conflict_id)
        if conflict is None:
            raise KeyError(f"no conflict {conflict_id} (see `syncline conflicts list`)")
        if conflict.status not in OPEN:
            raise ValueError(f"conflict {conflict_id} is already {conflict.status}")
        values = self.decision_values(conflict, take, overrides)
        outcome = apply(conflict, values)  # raises RecordChanged if a copy moved since the conflict was recorded
        if outcome.status == "busy":
            raise ConflictMoved(f"{conflict.key} is being synced right now; try again in a few seconds")
        now = self.clock()
        closed = replace(
            conflict,
            status="resolved",
            decision=Decision(take, values, by, now, note),
            updated_at=now,
            revision=conflict.revision + 1,
        )
        if not self.store.save(closed, expected_revision=conflict.revision):
            raise ConflictMoved(f"conflict {conflict_id} changed while it was being resolved; read it again")
        return closed

    def sweep(self, retry: Callable[[Conflict], Outcome], *, limit: int = 100) -> SweepReport:
        """Retry the automatic rules on every open conflict; close what they settle now, escalate the old."""
        report = SweepReport()
        for status in OPEN:
            for conflict in self.store.list(status, limit=limit):
                report.checked += 1
                try:
                    self._sweep_one(conflict, retry, report)
                except Exception as exc:  # one bad record must not stop the sweep; it is retried next time
                    report.errors.append(f"{conflict.id}: {type(exc).__name__}: {exc}"[:300])
        return report

    def _sweep_one(self, conflict: Conflict, retry: Callable[[Conflict], Outcome], report: SweepReport) -> None:
        outcome = retry(conflict)
        now = self.clock()
        if outcome.status in {"settled", "echo"}:
            self._close(conflict, "resolved", now, Decision("rules", {}, "sweeper", now, "settled by the rules"))
            report.settled += 1
            return
        if outcome.status == "review":
            recorded = self.record(conflict.pair, conflict.entity, outcome)
            if recorded.id != conflict.id:
                self._close(conflict, "superseded", now, None)
                report.superseded += 1
                return
        elif outcome.status == "busy":
            report.busy += 1
        age = now - conflict.created_at
        if conflict.status == "pending" and age >= self.escalate_after:
            escalated = replace(
                conflict, status="escalated", escalated_at=now, updated_at=now, revision=conflict.revision + 1
            )
            if self.store.save(escalated, expected_revision=conflict.revision):
                if self.escalation is not None:
                    self.escalation.escalate(escalated, age=age)
                report.escalated += 1
                return
        report.still_open += 1

    def _close(self, conflict: Conflict, status: Status, now: datetime, decision: Decision | None) -> None:
        closed = replace(conflict, status=status, decision=decision, updated_at=now, revision=conflict.revision + 1)
        self.store.save(closed, expected_revision=conflict.revision)


@dataclass
class MemoryConflictStore:
    """In memory, for tests and the engine's own checks."""

    items: dict[str, Conflict] = field(default_factory=dict)

    def add(self, conflict: Conflict) -> bool:
        if conflict.id in self.items:
            return False
        self.items[conflict.id] = conflict
        return True

    def get(self, conflict_id: str) -> Conflict | None:
        return self.items.get(conflict_id)

    def list(self, status: Status, *, limit: int = 100) -> list[Conflict]:
        found = sorted((c for c in self.items.values() if c.status == status), key=lambda c: c.created_at)
        return found[:limit]

    def save(self, conflict: Conflict, *, expected_revision: int) -> bool:
        current = self.items.get(conflict.id)
        if current is None or current.revision != expected_revision:
            return False
        self.items[conflict.id] = conflict
        return True


def summary_line(conflict: Conflict, now: datetime) -> Sequence[str]:
    """One row of ``syncline conflicts list``: id, status, pair, key, fields, age, sides."""
    age = now - conflict.created_at
    hours, rest = divmod(int(age.total_seconds()), 3600)
    return (
        conflict.id,
        conflict.status,
        conflict.pair,
        conflict.key,
        ", ".join(conflict.fields),
        f"{hours}h{rest // 60:02d}m",
        ", ".join(side.system for side in conflict.sides),
    )
