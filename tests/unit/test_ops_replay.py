"""Replay planning without AWS: the window, the rules a source uses, waiting on a replay's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncline.config import load_config
from syncline.ops.replay import ReplayPlan, ReplayWindowError, check_window, replay_name, routing_rules, wait
from syncline.topology import build_topology

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_window_must_be_ordered_and_not_in_the_future_and_warns_past_retention() -> None:
    with pytest.raises(ReplayWindowError, match="is not before"):
        check_window(NOW, NOW - timedelta(hours=1), NOW)
    with pytest.raises(ReplayWindowError, match="in the future"):
        check_window(NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW)
    assert check_window(NOW - timedelta(hours=2), NOW, NOW) == []
    (warning,) = check_window(NOW - timedelta(days=40), NOW, NOW)
    assert "keeps 30 days" in warning


def test_a_source_selects_the_rules_that_route_its_notices() -> None:
    rules = build_topology(load_config()).rules
    assert routing_rules(rules, None) == list(rules)
    assert [r.id for r in routing_rules(rules, "sage300")] == [
        r.id for r in rules if "syncline.sage300" in r.pattern["source"]
    ]
    with pytest.raises(LookupError, match="sources: sage300"):
        routing_rules(rules, "hubspot-nowhere")


def test_replay_names_are_unique_and_fit_eventbridge() -> None:
    first, second = replay_name(NOW, NOW), replay_name(NOW, NOW)
    assert first != second
    assert len(first) <= 64


class FakeEvents:
    def __init__(self, states: list[tuple[str, datetime | None]]) -> None:
        self.states = states
        self.calls = 0

    def describe_replay(self, ReplayName: str) -> dict[str, Any]:
        state, last = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return {"State": state, **({"EventLastReplayedTime": last} if last else {})}


PLAN = ReplayPlan("r", "a", "arn:a", "arn:b", ("rule",), ("arn:rule",), NOW - timedelta(hours=4), NOW)


def test_wait_reports_progress_until_a_final_state() -> None:
    events = FakeEvents(
        [
            ("STARTING", None),
            ("RUNNING", NOW - timedelta(hours=3)),
            ("RUNNING", NOW - timedelta(hours=1)),
            ("COMPLETED", NOW),
        ]
    )
    seen: list[float] = []
    slept: list[float] = []
    final = wait(events, PLAN, timeout_seconds=60, on_progress=seen.append, sleep=slept.append, monotonic=lambda: 0.0)
    assert final["State"] == "COMPLETED"
    assert seen == [0.25, 0.75, 1.0]
    assert len(slept) == 3


def test_wait_gives_up_at_the_timeout_with_the_replay_still_running() -> None:
    clock = iter([0.0, 10.0, 20.0, 30.0, 40.0])
    final = wait(
        FakeEvents([("RUNNING", None)]), PLAN, timeout_seconds=25, sleep=lambda _s: None, monotonic=lambda: next(clock)
    )
    assert final["State"] == "RUNNING"
