"""Poisoned queue messages: each one is parked in the DLQ with its reason, never a crashed batch.

The workers read whatever is on their queue: the poller's EventBridge events, dead letters being
redriven, and anything else someone sent there. ``decode_message`` turns a body into notices or a
``MalformedMessage``; both workers then park what they cannot use and sync the rest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncline.models import ChangeNotice, DeadLetter, UnparsableMessage
from syncline.sync import ENTITY, MalformedMessage, PairContext, decode_message, sync_inventory_batch
from syncline.twoway import Outcome
from syncline.twoway_batch import sync_twoway_batch
from tests.fakes import ListDeadLetters, MemoryErp, MemoryState, MemoryTarget

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAIR = PairContext("erp-storefront", "sage300", {"1": "main"})
FUZZ = settings(
    max_examples=80, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def notice(key: str = "GOOD|1", **changes: Any) -> dict[str, Any]:
    made = ChangeNotice(source_system="sage300", entity=ENTITY, key="GOOD|1", observed_at=NOW, source_version=1)
    return made.model_dump(mode="json") | {"key": key} | changes


def event(*notices: dict[str, Any], **detail: Any) -> dict[str, Any]:
    body = {"source_system": "sage300", "entity": ENTITY, "notices": list(notices) or [notice()]} | detail
    return {"version": "0", "detail-type": "ChangeNotices", "source": "syncline.sage300", "detail": body}


GOOD_BODY = json.dumps(event(notice()))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def poisoned_bodies(draw: st.DrawFn) -> str:
    """A body that is not a usable notice message: garbage, or a real event with one part broken."""
    kind = draw(st.sampled_from(["text", "json", "notice field", "detail field", "key"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "json":
        return json.dumps(draw(JSON))
    if kind == "notice field":
        field = draw(st.sampled_from(["source_system", "entity", "key", "observed_at", "operation", "source_version"]))
        return json.dumps(event(notice(**{field: draw(JSON)})))
    if kind == "detail field":
        field = draw(st.sampled_from(["notices", "entity", "source_system"]))
        document = event()
        document["detail"][field] = draw(JSON)
        return json.dumps(document)
    key = draw(
        st.one_of(
            st.text(max_size=20).filter(lambda k: "|" not in k.strip("|")),  # no ITEM|LOCATION shape
            st.text(min_size=513, max_size=600),  # beyond the notice's 512
            st.just(""),
        )
    )
    return json.dumps(event(notice(key)))


def is_usable(body: str, entity: str = ENTITY) -> bool:
    try:
        decode_message("probe", body, entity)
    except MalformedMessage:
        return False
    return True


@FUZZ
@given(body=st.one_of(st.text(max_size=300), JSON.map(json.dumps), poisoned_bodies()))
def test_decoding_any_body_gives_notices_or_a_clear_rejection(body: str) -> None:
    try:
        message = decode_message("m1", body)
    except MalformedMessage as exc:
        assert str(exc)
    else:
        assert message.notices and all(n.entity == ENTITY for n in message.notices)


def run_inventory(bodies: list[str]) -> tuple[Any, MemoryTarget, ListDeadLetters]:
    erp, target, dlq = MemoryErp(), MemoryTarget(), ListDeadLetters()
    erp.put("GOOD", "1", 5, (20261123, 10000000))
    result = sync_inventory_batch(
        [*((f"bad{i}", body) for i, body in enumerate(bodies)), ("good", GOOD_BODY)],
        pair=PAIR,
        source=erp,
        state=MemoryState(),
        target=target,
        dead_letters=dlq,
        clock=lambda: NOW,
    )
    return result, target, dlq


@FUZZ
@given(bodies=st.lists(poisoned_bodies(), min_size=1, max_size=5))
def test_poisoned_messages_are_parked_verbatim_and_the_good_one_syncs(bodies: list[str]) -> None:
    unusable = [body for body in bodies if not is_usable(body)]
    result, target, dlq = run_inventory(bodies)
    assert result.failed_messages == set(), result.failure
    assert "GOOD|main" in target.rows
    parked = [letter for letter in dlq.letters if isinstance(letter, UnparsableMessage)]
    assert sorted(letter.body for letter in parked) == sorted(unusable)
    assert all(letter.reason and letter.pair == PAIR.name for letter in parked)
    for letter in parked:  # what the DLQ holds is the body itself, as received
        assert json.loads(letter.model_dump_json())["body"] in bodies


def test_the_reason_names_what_is_wrong() -> None:
    cases = {
        "not json at all": "body is not JSON",
        "[1, 2]": "not a JSON object",
        json.dumps(event(notice("NOPIPE"))): "is not ITEM|LOCATION",
        json.dumps(event(notice(entity="contact"))): "entity 'contact' is not handled",
        json.dumps(event(notice(observed_at="yesterday"))): "notices.0.observed_at",
        json.dumps(event(notice("x" * 600))): "notices.0.key",
    }
    _, _, dlq = run_inventory(list(cases))
    reasons = {letter.body: letter.reason for letter in dlq.letters if isinstance(letter, UnparsableMessage)}
    for body, expected in cases.items():
        assert expected in reasons[body], (expected, reasons[body])


def test_notices_from_another_system_are_refused_for_this_pair() -> None:
    _, target, dlq = run_inventory([json.dumps(event(notice(source_system="shopify")))])
    (letter,) = dlq.letters
    assert isinstance(letter, UnparsableMessage) and "syncs from sage300" in letter.reason
    assert "GOOD|main" in target.rows


def test_numbers_beyond_2_53_in_a_notice_stay_exact_through_a_redrive() -> None:
    big = 2**63 + 7
    body = json.dumps(event(notice(source_version=big)))
    (parsed,) = decode_message("m1", body).notices
    assert parsed.source_version == big
    letter = DeadLetter(notice=parsed, reason="r", stage="map", pair="p", failed_at=NOW)
    (redriven,) = decode_message("m2", letter.model_dump_json()).notices
    assert redriven.source_version == big


# -- crashes today --------------------------------------------------------------------------------------
DEEP = '{"detail": ' + "[" * 50_000 + "]" * 50_000 + "}"  # 100 KB: fits an SQS message (256 KiB)
HUGE_NUMBER = '{"detail": ' + "9" * 5_000 + "}"  # Python refuses int() of more than 4,300 digits


@pytest.mark.parametrize("body", [DEEP, HUGE_NUMBER], ids=["nested 50,000 deep", "5,000-digit number"])
def test_deeply_nested_or_huge_number_bodies_are_parked_not_a_crashed_batch(body: str) -> None:
    result, target, dlq = run_inventory([body])
    assert result.failed_messages == set()
    assert "GOOD|main" in target.rows
    assert [letter.body for letter in dlq.letters if isinstance(letter, UnparsableMessage)] == [body]


class PostgresLikeErp(MemoryErp):
    """The ERP as PostgreSQL/SQL Server see it: a NUL or an unencodable character fails the whole query."""

    def fetch_items(self, items: Any) -> list[dict[str, Any]]:
        wanted = list(items)
        for item in wanted:
            if "\x00" in item:
                raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            item.encode("utf-8")
        return super().fetch_items(wanted)


@pytest.mark.parametrize(
    "key",
    [pytest.param("GO\x00OD|1", id="NUL"), pytest.param("GO\udc80OD|1", id="lone surrogate")],
)
def test_a_key_no_database_can_take_is_parked_and_does_not_fail_the_batch(key: str) -> None:
    erp, target, dlq = PostgresLikeErp(), MemoryTarget(), ListDeadLetters()
    erp.put("GOOD", "1", 5, (20261123, 10000000))
    poisoned = json.dumps(event(notice(key)))
    result = sync_inventory_batch(
        [("bad", poisoned), ("good", GOOD_BODY)],
        pair=PAIR,
        source=erp,
        state=MemoryState(),
        target=target,
        dead_letters=dlq,
        clock=lambda: NOW,
    )
    assert result.failed_messages == set(), result.failure
    assert "GOOD|main" in target.rows
    (letter,) = dlq.letters  # the message verbatim, or its notice with a reason
    assert letter.body == poisoned if isinstance(letter, UnparsableMessage) else letter.notice.key == key


# -- the two-way worker ---------------------------------------------------------------------------------
class SettlingSync:
    """TwoWaySync stand-in: every record it is asked about is settled with one write."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def sync(self, key: str) -> Outcome:
        self.keys.append(key)
        return Outcome(key=key, status="settled", writes=["oms"])


def run_twoway(bodies: list[str]) -> tuple[Any, SettlingSync, ListDeadLetters]:
    sync, dlq = SettlingSync(), ListDeadLetters()
    good = json.dumps(event(notice("C-1", entity="contact", source_system="hubspot"), entity="contact"))
    result = sync_twoway_batch(
        [*((f"bad{i}", body) for i, body in enumerate(bodies)), ("good", good)],
        pair="crm-oms-contacts",
        entity="contact",
        sync=sync,  # type: ignore[arg-type]
        review=None,  # type: ignore[arg-type]
        dead_letters=dlq,
        clock=lambda: NOW,
    )
    return result, sync, dlq


@FUZZ
@given(bodies=st.lists(st.one_of(st.text(max_size=100), JSON.map(json.dumps), poisoned_bodies()), max_size=5))
def test_the_two_way_worker_parks_poisoned_messages_and_syncs_the_rest(bodies: list[str]) -> None:
    result, sync, dlq = run_twoway(bodies)
    assert "C-1" in sync.keys
    assert result.failed_messages == set()
    parked = [letter.body for letter in dlq.letters if isinstance(letter, UnparsableMessage)]
    assert sorted(parked) == sorted(body for body in bodies if not is_usable(body, "contact"))


@pytest.mark.parametrize("body", [DEEP, HUGE_NUMBER], ids=["nested 50,000 deep", "5,000-digit number"])
def test_the_two_way_worker_parks_deeply_nested_or_huge_number_bodies(body: str) -> None:
    _, sync, dlq = run_twoway([body])
    assert "C-1" in sync.keys
    assert [letter.body for letter in dlq.letters if isinstance(letter, UnparsableMessage)] == [body]
