"""Conflict policies: what the agreed value of a record is when two systems changed it.

Pure and deterministic: the same inputs give the same outcome on any machine, whichever side is
called "local", and every outcome names the rule that decided it and why. Policies are declared per
sync pair and field group (``PolicySpec``), and built with :func:`build_policy`.

Rules:
- ``last_writer_wins``: the side changed last wins; ties go to the higher source version, then to
  the system listed first in ``priority`` (then by name), so there is always exactly one winner.
- ``source_authority``: one system owns the fields (e.g. the ERP owns price and on-hand).
- ``three_way_merge``: against the last synced base, a field changed on one side only takes that
  side; fields both sides changed differently go to the ``fallback`` rule.
- ``business_order``: a status field never moves backwards (``rank``); equal ranks go to ``fallback``.
- ``manual_review``: nothing automatic; the conflict is stored for a person to decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Side:
    """One system's current view of a record."""

    system: str
    values: Mapping[str, Any]
    changed_at: datetime
    version: int | None = None


@dataclass(frozen=True)
class Resolution:
    values: dict[str, Any]
    winners: dict[str, str] = field(default_factory=dict)  # field -> system whose value was taken
    rules: dict[str, str] = field(default_factory=dict)  # field -> rule that decided it
    needs_review: tuple[str, ...] = ()  # fields no automatic rule could settle
    reasons: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        return not self.needs_review


class FieldRule(Protocol):
    @property
    def name(self) -> str: ...

    def decide(self, name: str, base: Mapping[str, Any] | None, a: Side, b: Side) -> tuple[Side | None, str]:
        """The side whose value of field ``name`` wins (``None``: needs review), and why."""


@dataclass(frozen=True)
class LastWriterWins:
    priority: tuple[str, ...] = ()
    name: str = "last_writer_wins"

    def decide(self, name: str, base: Mapping[str, Any] | None, a: Side, b: Side) -> tuple[Side | None, str]:
        winner = max((a, b), key=self._rank)
        loser = b if winner is a else a
        if winner.changed_at != loser.changed_at:
            why = f"{winner.system} changed it later ({winner.changed_at.isoformat()})"
        elif (winner.version or 0) != (loser.version or 0):
            why = f"same time; {winner.system} has the higher version"
        else:
            why = f"same time and version; {winner.system} wins the tie-break"
        return winner, why

    def _rank(self, side: Side) -> tuple[datetime, int, int, str]:
        listed = self.priority.index(side.system) if side.system in self.priority else len(self.priority)
        # Later time, then higher version, then earlier in priority, then smaller name: always one winner.
        return (side.changed_at, side.version or 0, -listed, _reverse(side.system))


@dataclass(frozen=True)
class SourceAuthority:
    owner: str
    fallback: FieldRule | None = None
    name: str = "source_authority"

    def decide(self, name: str, base: Mapping[str, Any] | None, a: Side, b: Side) -> tuple[Side | None, str]:
        for side in (a, b):
            if side.system == self.owner:
                return side, f"{self.owner} owns {name}"
        if self.fallback is None:
            return None, f"neither side is the owner {self.owner}"
        return self.fallback.decide(name, base, a, b)


@dataclass(frozen=True)
class ThreeWayMerge:
    fallback: FieldRule
    name: str = "three_way_merge"

    def decide(self, name: str, base: Mapping[str, Any] | None, a: Side, b: Side) -> tuple[Side | None, str]:
        if base is not None and name in base:
            a_changed, b_changed = a.values.get(name) != base[name], b.values.get(name) != base[name]
            if a_changed and not b_changed:
                return a, f"only {a.system} changed it"
            if b_changed and not a_changed:
                return b, f"only {b.system} changed it"
        chosen, why = self.fallback.decide(name, base, a, b)
        return chosen, f"both changed it; {why}"


@dataclass(frozen=True)
class BusinessOrder:
    rank: Mapping[str, int]
    fallback: FieldRule
    name: str = "business_order"

    def decide(self, name: str, base: Mapping[str, Any] | None, a: Side, b: Side) -> tuple[Side | None, str]:
        a_rank, b_rank = self._rank_of(a.values.get(name)), self._rank_of(b.values.get(name))
        if a_rank != b_rank:
            winner = a if a_rank > b_rank else b
            return (
                winner,
                f"{winner.values.get(name)!s} is further along than {(b if winner is a else a).values.get(name)!s}",
            )
        tied, why = self.fallback.decide(name, base, a, b)
        return tied, f"same stage; {why}"

    def _rank_of(self, value: Any) -> int:
        return self.rank.get(str(value), -1)


@dataclass(frozen=True)
class ManualReview:
    name: str = "manual_review"

    def decide(self, name: str, base: Mapping[str, Any] | None, a: Side, b: Side) -> tuple[Side | None, str]:
        return None, "this field is reviewed by a person"


@dataclass(frozen=True)
class RecordPolicy:
    """Rules per field group; fields in no group follow ``default``."""

    default: FieldRule
    groups: Sequence[tuple[frozenset[str], FieldRule]] = ()

    def rule_for(self, name: str) -> FieldRule:
        for fields, rule in self.groups:
            if name in fields:
                return rule
        return self.default


def resolve(base: Mapping[str, Any] | None, a: Side, b: Side, policy: RecordPolicy) -> Resolution:
    """The agreed record of ``a`` and ``b`` (``base``: the last version both agreed on, if known)."""
    values: dict[str, Any] = {}
    winners: dict[str, str] = {}
    rules: dict[str, str] = {}
    review: list[str] = []
    reasons: list[str] = []
    for name in sorted(set(a.values) | set(b.values)):
        if a.values.get(name) == b.values.get(name):
            values[name] = a.values.get(name)
            continue
        rule = policy.rule_for(name)
        winner, why = rule.decide(name, base, a, b)
        rules[name] = rule.name
        reasons.append(f"{name}: {why}")
        if winner is None:
            review.append(name)
            # Keep the last agreed value until a person decides; nothing is overwritten meanwhile.
            values[name] = base.get(name) if base is not None else None
        else:
            values[name] = winner.values.get(name)
            winners[name] = winner.system
    return Resolution(values, winners, rules, tuple(review), tuple(reasons))


def _reverse(text: str) -> str:
    # max() picks the largest; invert the name so the alphabetically first system wins a full tie.
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


# -- declarative form, as the configuration file spells it ------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LastWriterWinsSpec(_Spec):
    rule: Literal["last_writer_wins"]
    priority: list[str] = Field(default_factory=list, description="tie-break order of systems")


class SourceAuthoritySpec(_Spec):
    rule: Literal["source_authority"]
    owner: str


class ThreeWayMergeSpec(_Spec):
    rule: Literal["three_way_merge"]
    fallback: LastWriterWinsSpec | ManualReviewSpec | SourceAuthoritySpec


class BusinessOrderSpec(_Spec):
    rule: Literal["business_order"]
    order: list[list[str]] = Field(min_length=2, description="stages in order; values in one inner list rank equal")
    fallback: LastWriterWinsSpec | ManualReviewSpec | SourceAuthoritySpec


class ManualReviewSpec(_Spec):
    rule: Literal["manual_review"]


PolicySpec = Annotated[
    LastWriterWinsSpec | SourceAuthoritySpec | ThreeWayMergeSpec | BusinessOrderSpec | ManualReviewSpec,
    Field(discriminator="rule"),
]


def build_rule(spec: PolicySpec) -> FieldRule:
    if isinstance(spec, LastWriterWinsSpec):
        return LastWriterWins(tuple(spec.priority))
    if isinstance(spec, SourceAuthoritySpec):
        return SourceAuthority(spec.owner)
    if isinstance(spec, ThreeWayMergeSpec):
        return ThreeWayMerge(build_rule(spec.fallback))
    if isinstance(spec, BusinessOrderSpec):
        rank = {value: i for i, stage in enumerate(spec.order) for value in stage}
        return BusinessOrder(rank, build_rule(spec.fallback))
    return ManualReview()
