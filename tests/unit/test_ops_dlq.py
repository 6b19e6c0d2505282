"""The DLQ engine over an in-memory queue: classification, filters, send-before-delete, move task, pacing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncline.models import ChangeNotice, DeadLetter, UnparsableMessage
from syncline.ops.dlq import (
    DlqFilter,
    MoveTask,
    MoveTaskUnsupported,
    Pacer,
    RawMessage,
    explain,
    peek,
    redrive,
)
from syncline.ops.timeparse import age_text, parse_time
from syncline.ops.wiring import resolve_target

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _letter(key: str, reason: str, at: datetime = T0) -> str:
    notice = ChangeNotice(source_system="sage300", entity="inventory_level", key=key, observed_at=at)
    return DeadLetter(notice=notice, reason=reason, stage="map", pair="p", failed_at=at).model_dump_json()


class MemoryDlq:
    """A DLQ and its source queue in memory, with SQS's hold/visibility behaviour."""

    queue_id = "sync_storefront"

    def __init__(self, bodies: Sequence[str], *, move_task: bool = False) -> None:
        self.messages = {f"m{i}": body for i, body in enumerate(bodies)}
        self.hidden: set[str] = set()
        self.source: list[str] = []
        self.log: list[str] = []
        self.move_task = move_task

    def receive(self, max_messages: int, hold_seconds: int) -> list[RawMessage]:
        visible = [mid for mid in self.messages if mid not in self.hidden][:max_messages]
        self.hidden.update(visible)
        return [RawMessage(mid, self.messages[mid], {}, T0, 1, handle=mid) for mid in visible]

    def release(self, messages: Sequence[RawMessage]) -> None:
        self.hidden -= {m.id for m in messages}

    def send_back(self, message: RawMessage) -> None:
        self.log.append(f"send {message.id}")
        self.source.append(message.body)

    def delete(self, message: RawMessage) -> None:
        self.log.append(f"delete {message.id}")
        del self.messages[message.id]
        self.hidden.discard(message.id)

    def start_move_task(self, max_per_second: int | None) -> MoveTask:
        if not self.move_task:
            raise MoveTaskUnsupported("not here")
        moved = len(self.messages)
        self.source.extend(self.messages.values())
        self.messages.clear()
        return MoveTask("task-1", moved)

    def depth(self) -> int:
        return len(self.messages)

    def purge(self) -> None:
        self.messages.clear()


def test_peek_reads_everything_and_leaves_it_visible() -> None:
    queue = MemoryDlq([_letter(f"SKU{i}|1", "negative quantity") for i in range(25)])
    assert len(peek(queue)) == 25
    assert queue.hidden == set()
    assert len(peek(queue)) == 25


def test_messages_are_explained_by_kind() -> None:
    unparsable = UnparsableMessage(body="{", reason="body is not JSON", pair="p", failed_at=T0).model_dump_json()
    event = json.dumps(
        {
            "detail": {
                "source_system": "sage300",
                "entity": "inventory_level",
                "notices": [
                    {
                        "source_system": "sage300",
                        "entity": "inventory_level",
                        "key": "A|1",
                        "observed_at": T0.isoformat(),
                    }
                ],
            }
        }
    )
    raw = [
        RawMessage(str(i), body, {}, T0, 1) for i, body in enumerate([_letter("A|1", "x"), unparsable, event, "hello"])
    ]
    assert [explain("q", r).kind for r in raw] == ["dead-letter", "unparsable", "retries-exhausted", "unknown"]
    assert explain("q", raw[2]).keys == ("A|1",)


def test_filtered_redrive_sends_before_it_deletes_and_skips_what_does_not_match() -> None:
    queue = MemoryDlq([_letter("A|1", "negative quantity"), _letter("B|1", "location 'QC' is not mapped")])
    report = redrive(queue, DlqFilter(error="NEGATIVE"))
    assert (report.moved, report.skipped, report.failed, report.method) == (1, 1, 0, "one-by-one")
    assert queue.log == ["send m0", "delete m0"]
    assert list(queue.messages) == ["m1"] and queue.hidden == set()


def test_a_failed_send_deletes_nothing_and_is_reported() -> None:
    queue = MemoryDlq([_letter("A|1", "x")])

    def refuse(_message: RawMessage) -> None:
        raise ConnectionError("SQS unreachable")

    queue.send_back = refuse  # type: ignore[method-assign]
    report = redrive(queue, DlqFilter(key="A"))
    assert (report.moved, report.failed) == (0, 1)
    assert list(queue.messages) == ["m0"] and queue.hidden == set()


def test_dry_run_and_unparsable_messages_move_nothing() -> None:
    unparsable = UnparsableMessage(body="{", reason="body is not JSON", pair="p", failed_at=T0).model_dump_json()
    queue = MemoryDlq([_letter("A|1", "x"), unparsable])
    dry = redrive(queue, DlqFilter(), dry_run=True)
    assert (dry.moved, dry.skipped, dry.method) == (1, 1, "dry-run")
    assert queue.source == [] and len(queue.messages) == 2
    report = redrive(queue, DlqFilter())
    assert (report.moved, report.skipped_reasons) == (1, {"unparsable: can never sync": 1})


def test_the_whole_queue_uses_the_move_task_when_supported_but_a_filter_never_does() -> None:
    queue = MemoryDlq([_letter("A|1", "x"), _letter("B|1", "y")], move_task=True)
    report = redrive(queue, DlqFilter(source="sage300"))
    assert report.method == "one-by-one"
    queue = MemoryDlq([_letter("A|1", "x"), _letter("B|1", "y")], move_task=True)
    report = redrive(queue, DlqFilter())
    assert (report.method, report.moved, report.task) == ("move-task", 2, "task-1")


def test_filters_combine() -> None:
    message = explain("q", RawMessage("abc123", _letter("SKU-NEG|1", "negative quantity", T0), {}, T0, 1))
    assert DlqFilter(ids=frozenset({"abc"}), source="sage300", key="NEG", since=T0 - timedelta(1)).matches(message)
    assert not DlqFilter(since=T0 + timedelta(seconds=1)).matches(message)
    assert not DlqFilter(source="shopify").matches(message)


def test_pacer_spaces_calls_at_the_rate() -> None:
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = Pacer(4, sleep=sleep, clock=lambda: now[0])
    for _ in range(3):
        pacer.wait()
    assert slept == [0.25, 0.25]


def test_times_and_ages() -> None:
    assert parse_time("2h", now=T0) == T0 - timedelta(hours=2)
    assert parse_time("2026-11-23T03:00Z") == T0
    assert parse_time("2026-11-23 03:00") == T0
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")
    assert (age_text(None), age_text(65), age_text(7300)) == ("-", "1m 5s", "2h 1m")


def test_target_resolution_order(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    assert resolve_target(state_file=state).label.startswith("AWS")
    state.write_text(json.dumps({"moto_endpoint": "http://127.0.0.1:5999"}))
    local = resolve_target(state_file=state)
    assert (local.local, local.endpoint_url) == (True, "http://127.0.0.1:5999")
    assert resolve_target(profile="prod", state_file=state).endpoint_url is None
    assert resolve_target(force_aws=True, state_file=state).endpoint_url is None
    assert resolve_target(endpoint_url="http://127.0.0.1:7000", profile="x", state_file=state).endpoint_url == (
        "http://127.0.0.1:7000"
    )
