from datetime import UTC, datetime, timedelta

from syncline.poller import PollLimits, poll
from syncline.ports import Checkpoint
from tests.fakes import ListPublisher, MemoryCheckpoints, MemoryErp

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _poll(
    erp: MemoryErp, checkpoints: MemoryCheckpoints, publisher: ListPublisher, at: datetime = NOW, **limits: object
) -> list:
    return poll(
        source="sage300",
        scanner=erp,
        checkpoints=checkpoints,
        publisher=publisher,
        limits=PollLimits(**limits),  # type: ignore[arg-type]
        clock=lambda: at,
    )


LATER = NOW + timedelta(seconds=61)  # past the default one-minute rescan interval


def _keys(publisher: ListPublisher) -> list[str]:
    return [n.key for n in publisher.published]


def test_first_poll_emits_every_row_and_item_then_nothing() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    for i in range(7):
        erp.put(f"A{i}", "1", i, (20261123, 10000000 + i))
    reports = _poll(erp, checkpoints, publisher, page_size=3)
    assert [r.emitted for r in reports] == [7, 7]
    assert _keys(publisher)[:7] == [f"A{i}|1" for i in range(7)]
    assert _keys(publisher)[7:] == [f"A{i}|*" for i in range(7)]

    again = ListPublisher()
    reports = _poll(erp, checkpoints, again, at=LATER, page_size=3)
    assert again.published == []
    assert [r.already_seen for r in reports] == [7, 7]  # rescanned in the lookback window, not re-emitted


def test_rows_sharing_a_stamp_are_paged_by_the_tie_break_key() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    for i in range(10):
        erp.put(f"B{i:02d}", "1", 1, (20261123, 10000000))
    _poll(erp, checkpoints, publisher, page_size=4)
    assert _keys(publisher)[:10] == [f"B{i:02d}|1" for i in range(10)]


def test_row_budget_stops_the_run_and_the_next_resumes_exactly_after_it() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    for i in range(10):
        erp.put(f"C{i}", "1", 1, (20261123, 10000000 + i))
    first = _poll(erp, checkpoints, publisher, page_size=3, max_rows_per_run=4)
    assert (first[0].scanned, first[0].caught_up) == (4, False)
    second = _poll(erp, checkpoints, publisher, page_size=3, max_rows_per_run=100)
    assert second[0].already_seen == 0  # resumed after the position, no rescan
    iloc = [k for k in _keys(publisher) if not k.endswith("*")]
    assert iloc == [f"C{i}|1" for i in range(10)]


def test_late_commit_with_an_earlier_stamp_is_seen_within_the_lookback() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    erp.put("D1", "1", 1, (20261123, 11000000))
    _poll(erp, checkpoints, publisher)
    # A transaction stamped 10:58 commits after the poll that saw 11:00.
    erp.put("D0", "1", 5, (20261123, 10580000))
    late = ListPublisher()
    _poll(erp, checkpoints, late, at=NOW + timedelta(seconds=10))  # between rescans: not yet seen
    assert late.published == []
    _poll(erp, checkpoints, late, at=LATER)  # the periodic rescan of the window finds it
    assert _keys(late) == ["D0|1", "D0|*"]


def test_runs_between_rescans_read_only_after_the_position() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    for i in range(50):
        erp.put(f"W{i:02d}", "1", 1, (20261123, 11000000 + i))
    _poll(erp, checkpoints, publisher)
    erp.put("NEW", "1", 1, (20261123, 11010000))
    newer = ListPublisher()
    reports = _poll(erp, checkpoints, newer, at=NOW + timedelta(seconds=5))
    assert _keys(newer) == ["NEW|1", "NEW|*"]
    assert reports[0].scanned == 1  # only the new row, not the 50 in the window


def test_without_lookback_a_late_commit_would_be_missed() -> None:
    # The counterfactual that shows the lookback matters.
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    erp.put("D1", "1", 1, (20261123, 11000000))
    _poll(erp, checkpoints, publisher, lookback=timedelta(0))
    erp.put("D0", "1", 5, (20261123, 10580000))
    late = ListPublisher()
    _poll(erp, checkpoints, late, at=LATER, lookback=timedelta(0))
    assert late.published == []


def test_changed_row_in_the_window_is_emitted_again_at_its_new_version() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    erp.put("E1", "1", 1, (20261123, 11000000))
    _poll(erp, checkpoints, publisher)
    erp.put("E1", "1", 2, (20261123, 11000100))
    changed = ListPublisher()
    _poll(erp, checkpoints, changed, at=LATER)
    assert [(n.key, n.source_version) for n in changed.published] == [("E1|1", 2026112311000100)]


def test_a_concurrent_poller_that_advanced_first_wins_the_checkpoint() -> None:
    erp, publisher = MemoryErp(), ListPublisher()
    erp.put("F1", "1", 1, (20261123, 11000000))

    class Racing(MemoryCheckpoints):
        def load(self, source: str, stream: str) -> Checkpoint:
            loaded = super().load(source, stream)
            # Another poller saves between our load and our save.
            self.saved[(source, stream)] = Checkpoint(position=(20261123, 0, "X"), revision=loaded.revision + 1)
            return loaded

    reports = _poll(erp, Racing(), publisher)
    assert all(r.checkpoint_moved for r in reports)
    assert _keys(publisher) == ["F1|1", "F1|*"]  # published anyway: a duplicate is harmless downstream


def test_a_future_or_broken_stamp_does_not_hide_later_changes() -> None:
    erp, checkpoints, publisher = MemoryErp(), MemoryCheckpoints(), ListPublisher()
    erp.put("OK", "1", 1, (20261123, 11000000))
    erp.put("BROKEN", "1", 1, (20261131, 11000000))  # 31 November sorts after every real stamp
    erp.put("FUTURE", "1", 1, (20271231, 0))  # a clock set a year ahead
    _poll(erp, checkpoints, publisher)
    assert sorted(k for k in _keys(publisher) if k.endswith("|1")) == ["BROKEN|1", "FUTURE|1", "OK|1"]
    assert checkpoints.load("sage300", "ICILOC").position == (20261123, 11000000, "OK", "1")

    erp.put("LATER", "1", 1, (20261123, 11300000))
    later = ListPublisher()
    _poll(erp, checkpoints, later, at=LATER)
    assert _keys(later) == ["LATER|1", "LATER|*"]  # and the odd rows are not emitted again
