"""The chaos suite's oracle for the HubSpot <-> OMS contacts pair: the record as its latest edit left it, with the
engine's last-writer-wins tie-break (the same rule, stated independently)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncline.conflicts import LastWriterWins, Side
from syncline.local.chaos import _ContactEdit, _expected_contact

T0 = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def _edit(system: str, first_name: str, at: datetime, version: int) -> _ContactEdit:
    return _ContactEdit(system, "ada@example.com", {"first_name": first_name}, at, version)


def test_the_latest_edit_wins_wherever_it_was_made() -> None:
    edits = [_edit("crm", "Ada", T0, 10), _edit("oms", "Augusta", T0 + timedelta(milliseconds=2), 2)]
    assert _expected_contact(edits)[0] == {"first_name": "Augusta"}
    edits.append(_edit("crm", "A.", T0 + timedelta(milliseconds=3), 11))
    assert _expected_contact(edits)[0] == {"first_name": "A."}


def test_a_tie_goes_to_the_higher_version_then_to_the_system_named_first_as_the_engine_decides() -> None:
    tie = [_edit("oms", "Augusta", T0, 7), _edit("crm", "Ada", T0, 5)]
    assert _expected_contact(tie)[0] == {"first_name": "Augusta"}
    full_tie = [_edit("oms", "Augusta", T0, 5), _edit("crm", "Ada", T0, 5)]
    assert _expected_contact(full_tie)[0] == {"first_name": "Ada"}

    for edits in (tie, full_tie):
        sides = [Side(e.system, e.values, e.changed_at, e.version) for e in edits]
        winner, _ = LastWriterWins().decide("first_name", None, sides[0], sides[1])
        assert winner is not None and dict(winner.values) == _expected_contact(edits)[0]
