"""The conflict review list: recorded once, escalated once, settled by the sweeper when the rules can, and a
person's decision applied through two-way sync's write path, refused when the record moved since."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from syncline.conflicts import LastWriterWins, ManualReview, RecordPolicy
from syncline.review import Conflict, ConflictReview, MemoryConflictStore
from syncline.twoway import RecordChanged, TwoWaySync
from tests.unit.test_twoway_properties import T0, Clock, MemoryBases, MemoryEchoes, MemoryLeases, MemorySystem

KEY = "SKU-1|main"


class Escalations:
    def __init__(self) -> None:
        self.sent: list[tuple[str, timedelta]] = []

    def escalate(self, conflict: Conflict, *, age: timedelta) -> None:
        self.sent.append((conflict.id, age))


@pytest.fixture
def world() -> dict[str, Any]:
    clock, notices = Clock(), []
    erp, store = MemorySystem("erp", clock, notices, 0.1), MemorySystem("store-a", clock, notices, 0.2)
    # price is reviewed by a person; everything else: last writer wins.
    policy = RecordPolicy(LastWriterWins(), ((frozenset({"price"}), ManualReview()),))
    sync = TwoWaySync("pair", [erp, store], policy, MemoryBases(), MemoryEchoes(), MemoryLeases(clock), "w", clock.now)
    escalations = Escalations()
    review = ConflictReview(MemoryConflictStore(), clock.now, timedelta(seconds=30), escalations)
    erp.edit({"price": 10, "on_hand": 5})
    assert sync.sync(KEY).status == "settled"
    return {"clock": clock, "erp": erp, "store": store, "sync": sync, "review": review, "escalations": escalations}


def _diverge(world: dict[str, Any]) -> Conflict:
    world["erp"].edit({"price": 11, "on_hand": 5})
    world["store"].edit({"price": 12, "on_hand": 7})
    outcome = world["sync"].sync(KEY)
    assert outcome.status == "review"
    conflict: Conflict = world["review"].record("pair", "price", outcome)
    return conflict


def _apply(world: dict[str, Any]) -> Any:
    return lambda conflict, values: world["sync"].apply(conflict.key, values, expected=conflict.versions)


def test_a_conflict_is_recorded_once_with_both_sides_the_base_and_what_the_rules_settled(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    again = world["review"].record("pair", "price", world["sync"].sync(KEY))  # a redelivered notice
    assert again.id == conflict.id and len(world["review"].store.items) == 1
    assert conflict.fields == ("price",) and conflict.status == "pending"
    assert {side.system: dict(side.values) for side in conflict.sides} == {
        "erp": {"price": 11, "on_hand": 5},
        "store-a": {"price": 12, "on_hand": 7},
    }
    assert conflict.base == {"price": 10, "on_hand": 5}
    assert conflict.proposal == {"price": 10, "on_hand": 7}  # on_hand settled (store-a later), price kept
    assert Conflict.from_dict(conflict.to_dict()) == conflict
    # Nothing was overwritten while it waits.
    assert world["erp"].copy.values == {"price": 11, "on_hand": 5}
    assert world["store"].copy.values == {"price": 12, "on_hand": 7}


def test_taking_a_side_applies_its_value_for_the_fields_in_question_everywhere(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    closed = world["review"].resolve(conflict.id, "erp", _apply(world), by="ana", note="ERP price list")
    assert closed.status == "resolved" and closed.decision is not None and closed.decision.by == "ana"
    expected = {"price": 11, "on_hand": 7}
    assert world["erp"].copy.values == world["store"].copy.values == expected
    assert world["sync"].sync(KEY).status == "echo"  # our own writes come back as echoes: no loop
    with pytest.raises(ValueError, match="already resolved"):
        world["review"].resolve(conflict.id, "erp", _apply(world), by="ana")


def test_a_merged_decision_needs_every_field_in_question(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    with pytest.raises(ValueError, match="missing: price"):
        world["review"].resolve(conflict.id, "merged", _apply(world), by="ana")
    world["review"].resolve(conflict.id, "merged", _apply(world), overrides={"price": 11.5}, by="ana")
    assert world["erp"].copy.values == world["store"].copy.values == {"price": 11.5, "on_hand": 7}


def test_an_unknown_side_is_named_with_the_real_ones(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    with pytest.raises(ValueError, match="its sides: erp, store-a"):
        world["review"].resolve(conflict.id, "store-b", _apply(world), by="ana")


def test_a_decision_on_a_record_that_changed_since_is_refused_and_nothing_is_written(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    world["store"].edit({"price": 13, "on_hand": 7})
    with pytest.raises(RecordChanged, match="store-a"):
        world["review"].resolve(conflict.id, "erp", _apply(world), by="ana")
    assert world["review"].store.get(conflict.id).status == "pending"
    assert world["erp"].copy.values == {"price": 11, "on_hand": 5}


def test_the_sweeper_escalates_once_after_the_configured_age(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    retry = lambda c: world["sync"].sync(c.key)  # noqa: E731
    report = world["review"].sweep(retry)
    assert (report.checked, report.escalated, report.still_open) == (1, 0, 1)
    world["clock"].tick += 60
    report = world["review"].sweep(retry)
    assert report.escalated == 1 and world["escalations"].sent[0][0] == conflict.id
    assert world["review"].store.get(conflict.id).status == "escalated"
    report = world["review"].sweep(retry)
    assert report.escalated == 0 and len(world["escalations"].sent) == 1 and report.still_open == 1


def test_the_sweeper_closes_a_conflict_the_rules_settle_now(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    world["erp"].edit({"price": 12, "on_hand": 7})  # the ERP agrees with the store now
    report = world["review"].sweep(lambda c: world["sync"].sync(c.key))
    assert report.settled == 1
    assert world["review"].store.get(conflict.id).status == "resolved"
    assert world["erp"].copy.values == world["store"].copy.values == {"price": 12, "on_hand": 7}


def test_the_sweeper_supersedes_a_conflict_that_turned_into_another(world: dict[str, Any]) -> None:
    conflict = _diverge(world)
    world["store"].edit({"price": 14, "on_hand": 7})
    report = world["review"].sweep(lambda c: world["sync"].sync(c.key))
    assert report.superseded == 1
    assert world["review"].store.get(conflict.id).status == "superseded"
    (newer,) = world["review"].store.list("pending")
    assert newer.side("store-a").values["price"] == 14 and newer.created_at > T0


def test_an_outcome_says_whether_two_systems_changed_the_record_differently(world: dict[str, Any]) -> None:
    world["erp"].edit({"price": 10, "on_hand": 6})  # one side only: a plain change, not a conflict
    outcome = world["sync"].sync(KEY)
    assert outcome.status == "settled" and not outcome.contested
    world["erp"].edit({"price": 10, "on_hand": 8})
    world["store"].edit({"price": 10, "on_hand": 9})  # both changed on_hand: settled by last writer wins
    outcome = world["sync"].sync(KEY)
    assert outcome.status == "settled" and outcome.contested
    assert _diverge(world).status == "pending"
