"""Poisoned ERP rows and poisoned queue messages on the local stack: parked in the DLQ with their reason,
while the good records next to them (in the same batch) still reach the storefront.

The checks that document today's crashes read one worker invocation (``poll_once``) rather than
waiting out five retries, so they fail fast and pass once the fix is in.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest

from syncline.local.lambda_runtime import PollOutcome
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.models import ChangeNotice, NoticeBatch
from tests.e2e.helpers import storefront_levels

pytestmark = pytest.mark.e2e

QUEUE = "sync_storefront"


def seed_good(stack: LocalStack, count: int = 5) -> None:
    erp = stack.erp()
    erp.add_items([(f"GOOD{i}", f"Good item {i}") for i in range(count)])
    erp.set_stock([Stock(f"GOOD{i}", "1", Decimal(10 + i), committed=Decimal(1)) for i in range(count)])


def good_keys(count: int = 5) -> set[tuple[str, str]]:
    return {(f"GOOD{i}", "main") for i in range(count)}


def event_body(*keys: str, source: str = "sage300", entity: str = "inventory_level") -> str:
    now = datetime.now(UTC)
    notices = [ChangeNotice(source_system=source, entity=entity, key=k, observed_at=now) for k in keys]
    detail = NoticeBatch(source_system=source, entity=entity, notices=notices).model_dump(mode="json")
    return json.dumps(
        {"version": "0", "detail-type": "ChangeNotices", "source": f"syncline.{source}", "detail": detail}
    )


def send(stack: LocalStack, bodies: list[str]) -> None:
    sqs, url = boto3.client("sqs"), stack.resources.queues[QUEUE].url
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        assert not response.get("Failed"), response["Failed"]


def deliver_once(stack: LocalStack, expected: int) -> list[PollOutcome]:
    """Hand every queued message to the worker once, in batches as the event source mapping would."""
    source, outcomes = stack.event_sources[QUEUE], []
    while sum(o.received for o in outcomes) < expected and len(outcomes) < expected + 3:
        outcomes.append(source.poll_once())
    return outcomes


def letters_by_key(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return {m["attributes"].get("syncline-key") or m["body"]["body"]: m for m in stack.dead_letters(QUEUE)}


# -- ERP rows -------------------------------------------------------------------------------------------
def test_malformed_erp_rows_are_parked_with_their_reason_and_the_batch_syncs(stack: LocalStack) -> None:
    # Given good rows, and next to them rows no storefront can take, including an item number longer
    # than a SKU may be and a description of 100,000 characters (the columns widened to let them in).
    erp = stack.erp()
    erp._connection.execute(
        "ALTER TABLE ICITEM ALTER COLUMN ITEMNO TYPE varchar(200), ALTER COLUMN FMTITEMNO TYPE varchar(200), "
        'ALTER COLUMN "DESC" TYPE text'
    )
    erp._connection.execute("ALTER TABLE ICILOC ALTER COLUMN ITEMNO TYPE varchar(200)")
    seed_good(stack)
    long_item = "L" * 100
    erp.add_items([("NEG", "negative"), ("FAR", "unmapped"), ("STAMP", "bad stamp"), (long_item, "long"), ("BIG", "x")])
    erp.set_stock(
        [
            Stock("NEG", "1", Decimal("-0.0001")),
            Stock("FAR", "9", Decimal(1)),
            Stock("STAMP", "1", Decimal(1)),
            Stock(long_item, "1", Decimal(1)),
            Stock("BIG", "1", Decimal("999999999999999.9999"), committed=Decimal(0)),  # the largest numeric(19, 4)
        ]
    )
    erp.set_raw_stamp("STAMP", "1", 20261131, 12000000)
    erp.rename_item("GOOD0", "D" * 100_000)

    # When the poller and the worker run
    stack.poll_erp()
    outcomes = stack.drain()

    # Then no invocation crashed, nothing was retried, the good rows synced and each bad one is parked
    assert all(o.invocation_error is None and o.failed == 0 for o in outcomes), outcomes
    synced = storefront_levels(stack)
    assert good_keys() | {("BIG", "main")} == set(synced)
    assert synced[("BIG", "main")][0] == Decimal("999999999999999.9999")
    letters = letters_by_key(stack)
    assert set(letters) == {"NEG|1", "FAR|9", "STAMP|1", f"{long_item}|1"}
    assert letters["NEG|1"]["attributes"]["syncline-reason"] == "negative quantity: QTYONHAND = -0.0001"
    assert "'9' is not mapped" in letters["FAR|9"]["attributes"]["syncline-reason"]
    assert "AUDTDATE 20261131" in letters["STAMP|1"]["body"]["reason"]
    assert "at most 64 characters" in letters[f"{long_item}|1"]["body"]["reason"]
    assert all(letter["attributes"]["syncline-stage"] == "map" for letter in letters.values())
    assert all(letter["body"]["fetched"]["ITEMNO"] == key.split("|")[0] for key, letter in letters.items())


def test_a_nan_quantity_is_parked_and_the_rest_of_its_batch_syncs(stack: LocalStack) -> None:
    seed_good(stack)
    erp = stack.erp()
    erp.add_items([("NAN", "not a number")])
    erp.set_stock([Stock("NAN", "1", Decimal("NaN"))])
    stack.poll_erp()
    depth, _ = stack.event_sources[QUEUE].depth()

    outcomes = deliver_once(stack, depth)

    assert all(o.invocation_error is None and o.failed == 0 for o in outcomes), outcomes
    assert set(storefront_levels(stack)) == good_keys()
    assert "QTYONHAND" in letters_by_key(stack)["NAN|1"]["attributes"]["syncline-reason"]


# -- queue messages -------------------------------------------------------------------------------------
POISONED_BODIES = {
    "not JSON": "<xml>not json</xml>",
    "not an object": "[1, 2, 3]",
    "no detail": json.dumps({"detail-type": "ChangeNotices", "source": "syncline.sage300"}),
    "key without a location": event_body("GOOD1"),
    "another entity": event_body("C-1|x", entity="contact"),
    "another source": event_body("GOOD1|1", source="shopify-store-a"),
    "key of 513 characters": event_body("K" * 500 + "|1").replace("K" * 500, "K" * 511),
    "broken dead letter": json.dumps({"kind": "syncline.dead-letter", "reason": "no notice"}),
}


def test_poisoned_queue_messages_are_parked_verbatim_and_good_messages_beside_them_sync(stack: LocalStack) -> None:
    # Given good notices and poisoned messages interleaved on the worker's queue (one batch of ten)
    seed_good(stack)
    good = [event_body("GOOD0|1", "GOOD1|1"), event_body("GOOD2|1", "GOOD3|1", "GOOD4|1")]
    bodies = [good[0], *POISONED_BODIES.values(), good[1]]
    send(stack, bodies)

    # When the worker takes them
    outcomes = stack.drain()

    # Then nothing failed or was retried, the good ones synced, and each poisoned body is in the DLQ
    # exactly as sent, with the reason and the "parse" stage as attributes
    assert all(o.invocation_error is None and o.failed == 0 for o in outcomes), outcomes
    assert set(storefront_levels(stack)) == good_keys()
    parked = {m["body"]["body"]: m for m in stack.dead_letters(QUEUE)}
    assert set(parked) == set(POISONED_BODIES.values())
    for name, body in POISONED_BODIES.items():
        assert parked[body]["attributes"]["syncline-stage"] == "parse", name
        assert parked[body]["attributes"]["syncline-reason"], name
    assert "is not ITEM|LOCATION" in parked[POISONED_BODIES["key without a location"]]["attributes"]["syncline-reason"]
    assert "syncs from sage300" in parked[POISONED_BODIES["another source"]]["attributes"]["syncline-reason"]


@pytest.mark.parametrize(
    "poison",
    [
        '{"detail": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"detail": {"notices": [' + "9" * 5_000 + "]}}",
        event_body("GO\x00OD1|1"),
    ],
    ids=["nested 50,000 deep", "5,000-digit number", "NUL in the key"],
)
def test_a_message_that_breaks_the_decoder_or_the_erp_query_does_not_fail_its_batch(
    stack: LocalStack, poison: str
) -> None:
    seed_good(stack)
    send(stack, [event_body("GOOD0|1", "GOOD1|1"), poison, event_body("GOOD2|1", "GOOD3|1", "GOOD4|1")])

    outcomes = deliver_once(stack, 3)

    assert all(o.invocation_error is None and o.failed == 0 for o in outcomes), outcomes
    assert set(storefront_levels(stack)) == good_keys()
    (letter,) = stack.dead_letters(QUEUE)  # the message verbatim, or its notice with the reason
    assert letter["body"].get("body") == poison or letter["body"]["notice"]["key"] == "GO\x00OD1|1"
    assert letter["attributes"]["syncline-reason"]
