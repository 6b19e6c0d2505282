import json
from datetime import UTC, datetime

from syncline.models import ChangeNotice, DeadLetter, NoticeBatch, UnparsableMessage
from syncline.sync import PairContext, sync_inventory_batch
from tests.fakes import ListDeadLetters, MemoryErp, MemoryState, MemoryTarget

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAIR = PairContext("erp-storefront", "sage300", {"1": "main", "2": "east"})


def _event(*keys: str, version: int = 1) -> str:
    notices = [
        ChangeNotice(source_system="sage300", entity="inventory_level", key=k, observed_at=NOW, source_version=version)
        for k in keys
    ]
    detail = NoticeBatch(source_system="sage300", entity="inventory_level", notices=notices).model_dump(mode="json")
    return json.dumps({"version": "0", "detail-type": "ChangeNotices", "source": "syncline.sage300", "detail": detail})


class World:
    def __init__(self) -> None:
        self.erp, self.state, self.target, self.dlq = MemoryErp(), MemoryState(), MemoryTarget(), ListDeadLetters()

    def sync(self, *records: tuple[str, str]):  # type: ignore[no-untyped-def]
        return sync_inventory_batch(
            list(records),
            pair=PAIR,
            source=self.erp,
            state=self.state,
            target=self.target,
            dead_letters=self.dlq,
            clock=lambda: NOW,
        )


def test_batch_is_fetched_in_one_query_and_written_once() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.erp.put("A", "2", 7, (20261123, 10000000))
    world.erp.put("B", "1", 1, (20261123, 10000000))
    result = world.sync(("m1", _event("A|1", "A|2")), ("m2", _event("B|1")))
    assert world.erp.fetches == 1
    assert sorted(r.key for r in result.synced) == ["A|east", "A|main", "B|main"]
    assert world.target.rows["A|east"].on_hand == 7
    assert result.failed_messages == set()


def test_redelivery_changes_nothing() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.sync(("m1", _event("A|1")))
    again = world.sync(("m1", _event("A|1")))
    assert (again.synced, again.skipped_unchanged, world.target.writes) == ([], 1, 1)


def test_item_level_notice_syncs_every_location_of_the_item() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.erp.put("A", "2", 6, (20261123, 10000000))
    result = world.sync(("m1", _event("A|*")))
    assert sorted(r.key for r in result.synced) == ["A|east", "A|main"]


def test_bad_row_is_dead_lettered_with_context_while_the_rest_syncs() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.erp.put("NEG", "1", -3, (20261123, 10000000))
    world.erp.put("LOST", "9", 1, (20261123, 10000000))
    result = world.sync(("m1", _event("A|1", "NEG|1", "LOST|9")))
    assert [r.key for r in result.synced] == ["A|main"]
    assert result.failed_messages == set()  # nothing to retry: the bad rows are parked, not lost
    letters = {letter.notice.key: letter for letter in world.dlq.letters if isinstance(letter, DeadLetter)}
    assert "negative quantity: QTYONHAND = -3" in letters["NEG|1"].reason
    assert letters["NEG|1"].fetched is not None and letters["NEG|1"].fetched["QTYONHAND"] == -3
    assert "location '9' is not mapped" in letters["LOST|9"].reason


def test_unparsable_message_is_kept_verbatim_in_the_dlq() -> None:
    world = World()
    result = world.sync(("m1", "not json"), ("m2", json.dumps({"detail": {"notices": []}})))
    assert result.failed_messages == set()
    bodies = [letter.body for letter in world.dlq.letters if isinstance(letter, UnparsableMessage)]
    assert bodies == ["not json", json.dumps({"detail": {"notices": []}})]


def test_redriven_dead_letter_is_accepted_as_input() -> None:
    world = World()
    world.erp.put("NEG", "1", -3, (20261123, 10000000))
    world.sync(("m1", _event("NEG|1")))
    letter = world.dlq.letters[0]
    world.erp.put("NEG", "1", 4, (20261123, 10000100))  # fixed in the ERP
    result = world.sync(("m2", letter.model_dump_json()))
    assert [r.key for r in result.synced] == ["NEG|main"]


def test_erp_down_fails_every_message_for_retry_and_writes_nothing() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.erp.down = True
    result = world.sync(("m1", _event("A|1")), ("m2", _event("A|1")))
    assert result.failed_messages == {"m1", "m2"}
    assert "cannot reach SQL Server" in (result.failure or "")
    assert world.target.rows == {}


def test_crash_after_target_write_before_state_commit_converges_on_retry() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.state.fail_commit = True
    first = world.sync(("m1", _event("A|1")))
    assert first.failed_messages == {"m1"}
    world.state.fail_commit = False
    second = world.sync(("m1", _event("A|1")))
    assert [r.key for r in second.synced] == ["A|main"]
    assert world.target.rows["A|main"].on_hand == 5


def test_older_state_never_overwrites_newer() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.erp.put("A", "1", 9, (20261123, 12000000))
    world.sync(("m1", _event("A|1")))
    world.erp.put("A", "1", 1, (20261123, 11000000))  # restored from a backup / clock-skewed: older stamp
    result = world.sync(("m2", _event("A|1")))
    assert (result.skipped_stale, world.target.rows["A|main"].on_hand) == (1, 9)


def test_state_is_committed_only_for_what_the_target_accepted() -> None:
    world = World()
    world.erp.put("A", "1", 5, (20261123, 10000000))
    world.target.reject_all = True  # e.g. the target already holds a newer version written by someone else
    result = world.sync(("m1", _event("A|1")))
    assert result.synced == [] and result.skipped_stale == 1
    assert world.state.items == {}


def test_notices_from_another_system_are_parked_not_fetched_from_the_erp() -> None:
    world = World()
    body = _event("A|1").replace('"source_system": "sage300"', '"source_system": "shopify-store-a"')
    result = world.sync(("m1", body))
    assert world.erp.fetches == 0 and result.failed_messages == set()
    assert "notices from shopify-store-a" in world.dlq.letters[0].reason


def test_rows_outside_the_pairs_filters_are_skipped_not_dead_lettered() -> None:
    world = World()
    world.erp.put("A-1", "1", 5, (20261123, 10000000))
    world.erp.put("B-1", "1", 5, (20261123, 10000000))
    filtered = PairContext("p", "sage300", {"1": "main"}, accepts=lambda sku, location: sku.startswith("A-"))
    result = sync_inventory_batch(
        [("m1", _event("A-1|1", "B-1|1"))],
        pair=filtered,
        source=world.erp,
        state=world.state,
        target=world.target,
        dead_letters=world.dlq,
        clock=lambda: NOW,
    )
    assert [r.key for r in result.synced] == ["A-1|main"]
    assert (result.filtered, world.dlq.letters) == (1, [])
