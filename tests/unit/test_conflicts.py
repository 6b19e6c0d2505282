"""Conflict policies: deterministic, symmetric, and each rule's promise holds for any inputs (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from syncline.conflicts import (
    BusinessOrder,
    LastWriterWins,
    ManualReview,
    PolicySpec,
    RecordPolicy,
    Side,
    SourceAuthority,
    ThreeWayMerge,
    build_rule,
    resolve,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FIELDS = ("on_hand", "reserved", "price", "title")
STATUS_RANK = {"pending": 0, "confirmed": 1, "partially_fulfilled": 2, "fulfilled": 3, "cancelled": 3}

values = st.fixed_dictionaries({name: st.integers(0, 3) for name in FIELDS})
systems = st.sampled_from(["erp", "store-a", "store-b"])


@st.composite
def sides(draw: Any) -> tuple[Side, Side]:
    first, second = draw(st.lists(systems, min_size=2, max_size=2, unique=True))

    def side(system: str) -> Side:
        return Side(
            system, draw(values), T0 + timedelta(seconds=draw(st.integers(0, 3))), draw(st.integers(0, 2) | st.none())
        )

    return side(first), side(second)


POLICIES = {
    "lww": RecordPolicy(LastWriterWins(("erp",))),
    "authority": RecordPolicy(
        LastWriterWins(), groups=[(frozenset({"price", "on_hand"}), SourceAuthority("erp", LastWriterWins()))]
    ),
    "merge": RecordPolicy(ThreeWayMerge(LastWriterWins())),
    "merge-review": RecordPolicy(ThreeWayMerge(ManualReview())),
}


@settings(max_examples=300)
@given(pair=sides(), base=values | st.none(), policy=st.sampled_from(sorted(POLICIES)))
def test_outcome_is_deterministic_and_does_not_depend_on_which_side_is_local(
    pair: tuple[Side, Side], base: Any, policy: str
) -> None:
    a, b = pair
    first = resolve(base, a, b, POLICIES[policy])
    assert resolve(base, a, b, POLICIES[policy]) == first
    swapped = resolve(base, b, a, POLICIES[policy])
    assert (swapped.values, swapped.winners, swapped.needs_review) == (first.values, first.winners, first.needs_review)


@settings(max_examples=300)
@given(pair=sides())
def test_last_writer_wins_takes_every_field_from_the_latest_change(pair: tuple[Side, Side]) -> None:
    a, b = pair
    result = resolve(None, a, b, POLICIES["lww"])
    latest = max((a, b), key=lambda s: (s.changed_at, s.version or 0, s.system == "erp", [-ord(c) for c in s.system]))
    assert result.values == dict(latest.values)
    assert result.settled


@settings(max_examples=300)
@given(pair=sides())
def test_the_owner_always_keeps_its_fields(pair: tuple[Side, Side]) -> None:
    a, b = pair
    result = resolve(None, a, b, POLICIES["authority"])
    for side in (a, b):
        if side.system == "erp":
            assert result.values["price"] == side.values["price"]
            assert result.values["on_hand"] == side.values["on_hand"]


@settings(max_examples=300)
@given(base=values, pair=sides())
def test_three_way_merge_keeps_every_one_sided_change(base: dict[str, int], pair: tuple[Side, Side]) -> None:
    a, b = pair
    result = resolve(base, a, b, POLICIES["merge-review"])
    for name in FIELDS:
        a_changed, b_changed = a.values[name] != base[name], b.values[name] != base[name]
        if a_changed and not b_changed:
            assert result.values[name] == a.values[name]
        elif b_changed and not a_changed:
            assert result.values[name] == b.values[name]
        elif a_changed and b_changed and a.values[name] != b.values[name]:
            assert name in result.needs_review
            assert result.values[name] == base[name]  # nothing overwritten until a person decides
        else:
            assert result.values[name] == a.values[name] == b.values[name]


@settings(max_examples=300)
@given(
    statuses=st.lists(st.sampled_from(sorted(STATUS_RANK)), min_size=2, max_size=2),
    times=st.lists(st.integers(0, 5), min_size=2, max_size=2),
)
def test_an_order_status_never_moves_backwards(statuses: list[str], times: list[int]) -> None:
    policy = RecordPolicy(
        LastWriterWins(), groups=[(frozenset({"status"}), BusinessOrder(STATUS_RANK, LastWriterWins()))]
    )
    a = Side("store-a", {"status": statuses[0]}, T0 + timedelta(seconds=times[0]))
    b = Side("oms", {"status": statuses[1]}, T0 + timedelta(seconds=times[1]))
    chosen = resolve(None, a, b, policy).values["status"]
    assert STATUS_RANK[chosen] == max(STATUS_RANK[s] for s in statuses)


def test_a_pending_retry_never_replaces_cancelled_and_the_reason_says_so() -> None:
    policy = RecordPolicy(
        LastWriterWins(), groups=[(frozenset({"status"}), BusinessOrder(STATUS_RANK, LastWriterWins()))]
    )
    late_pending = Side("store-a", {"status": "pending"}, T0 + timedelta(minutes=5))
    cancelled = Side("oms", {"status": "cancelled"}, T0)
    result = resolve(None, late_pending, cancelled, policy)
    assert result.values == {"status": "cancelled"}
    assert result.rules == {"status": "business_order"}
    assert result.reasons == ("status: cancelled is further along than pending",)


def test_full_tie_goes_to_the_priority_list_then_the_name() -> None:
    a, b = Side("store-b", {"x": 1}, T0, 3), Side("erp", {"x": 2}, T0, 3)
    assert resolve(None, a, b, RecordPolicy(LastWriterWins(("store-b",)))).winners == {"x": "store-b"}
    assert resolve(None, a, b, RecordPolicy(LastWriterWins())).winners == {"x": "erp"}


def test_policies_are_declared_in_configuration_form() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(PolicySpec)
    spec = adapter.validate_python(
        {
            "rule": "business_order",
            "order": [["pending"], ["confirmed"], ["fulfilled", "cancelled"]],
            "fallback": {"rule": "manual_review"},
        }
    )
    rule = build_rule(spec)
    a, b = Side("a", {"s": "fulfilled"}, T0), Side("b", {"s": "cancelled"}, T0)
    result = resolve(None, a, b, RecordPolicy(rule))
    assert result.needs_review == ("s",)  # both terminal: a person decides
