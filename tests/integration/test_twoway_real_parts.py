"""Two-way sync between two PostgreSQL-backed stores, with bases, echoes and leases in DynamoDB (moto server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from syncline.adapters.pg_records import PostgresRecords
from syncline.adapters.twoway_dynamodb import DynamoBaseStore, DynamoEchoStore, DynamoLeaseStore
from syncline.conflicts import LastWriterWins, RecordPolicy
from syncline.twoway import Base, Copy, Echo, StaleWrite, TwoWaySync


@pytest.fixture
def world(stack: Any) -> Iterator[dict[str, Any]]:
    stores = {}
    for name in ("store_a", "store_b"):
        stack.postgres.recreate_database(name)
        connection = stack.postgres.connect(name)
        stack._connections.append(connection)
        records = PostgresRecords(name, lambda c=connection: c)
        records.ensure_schema()
        stores[name] = records
    client, table = boto3.client("dynamodb"), stack.resources.table
    yield {
        "stores": stores,
        "bases": DynamoBaseStore(client, table),
        "echoes": DynamoEchoStore(client, table),
        "leases": DynamoLeaseStore(client, table),
    }


def _worker(world: dict[str, Any], owner: str, lease_seconds: float = 10) -> TwoWaySync:
    return TwoWaySync(
        "stores",
        list(world["stores"].values()),
        RecordPolicy(LastWriterWins()),
        world["bases"],
        world["echoes"],
        world["leases"],
        owner,
        lambda: datetime.now(UTC),
        lease_seconds=lease_seconds,
    )


def _docs(world: dict[str, Any], key: str) -> list[Any]:
    return [(store.read(key).values if store.read(key) else None) for store in world["stores"].values()]


def test_an_edit_propagates_once_and_its_echo_is_dropped(world: dict[str, Any]) -> None:
    a, b = world["stores"]["store_a"], world["stores"]["store_b"]
    a.edit("SKU-1", {"on_hand": 5, "price": "9.90"})
    first = _worker(world, "w1").sync("SKU-1")
    assert (first.status, first.writes) == ("settled", ["store_b"])
    echo = _worker(world, "w1").sync("SKU-1")  # store_b's webhook for our own write
    assert (echo.status, echo.writes) == ("echo", [])
    b.edit("SKU-1", {"on_hand": 4, "price": "9.90"})
    back = _worker(world, "w2").sync("SKU-1")
    assert back.writes == ["store_a"]
    assert _docs(world, "SKU-1") == [{"on_hand": 4, "price": "9.90"}] * 2


def test_concurrent_workers_and_edits_converge_on_the_last_writer(world: dict[str, Any]) -> None:
    a, b = world["stores"]["store_a"], world["stores"]["store_b"]
    a.edit("SKU-2", {"on_hand": 1})
    b.edit("SKU-2", {"on_hand": 2})  # later: wins under last-writer-wins
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda i: _worker(world, f"w{i}").sync("SKU-2").status, range(8)))
    while "busy" in outcomes:  # the queue redelivers what found the key leased
        outcomes = [_worker(world, "late").sync("SKU-2").status]
    assert _docs(world, "SKU-2") == [{"on_hand": 2}, {"on_hand": 2}]
    assert world["bases"].get("stores", "SKU-2").values == {"on_hand": 2}


def test_a_dead_workers_lease_blocks_the_key_only_until_it_expires(world: dict[str, Any]) -> None:
    leases = world["leases"]
    assert leases.acquire("SKU-3", "dead-worker", seconds=0.5)  # took the key, then died without releasing
    world["stores"]["store_a"].edit("SKU-3", {"on_hand": 7})
    assert _worker(world, "w1").sync("SKU-3").status == "busy"
    time.sleep(0.6)
    assert _worker(world, "w1").sync("SKU-3").status == "settled"
    assert leases.acquire("SKU-3", "w2", seconds=5)  # the settled sync released its lease
    leases.release("SKU-3", "someone-else")  # not the owner: the lease stays
    assert not leases.acquire("SKU-3", "w3", seconds=5)


def test_base_commit_is_conditional_on_the_version_read(world: dict[str, Any]) -> None:
    bases = world["bases"]
    now = datetime.now(UTC)
    assert bases.put("stores", "SKU-4", Base({"x": 1}, now, 1, {"store_a": 1}), expected_version=0)
    assert not bases.put("stores", "SKU-4", Base({"x": 2}, now, 1), expected_version=0)  # someone committed first
    assert bases.put("stores", "SKU-4", Base({"x": 3}, now, 2), expected_version=1)
    assert bases.get("stores", "SKU-4") == Base({"x": 3}, now, 2, {})


def test_a_write_over_an_unseen_edit_is_refused_and_redecided(world: dict[str, Any]) -> None:
    a, b = world["stores"]["store_a"], world["stores"]["store_b"]
    a.edit("SKU-5", {"on_hand": 1})
    _worker(world, "w1").sync("SKU-5")
    stale = b.read("SKU-5")
    b.edit("SKU-5", {"on_hand": 9})  # a user edit lands between a worker's read and its write
    with pytest.raises(StaleWrite):
        b.write("SKU-5", {"on_hand": 1}, expected_version=stale.version if stale else None)
    assert _worker(world, "w2").sync("SKU-5").status == "settled"
    assert _docs(world, "SKU-5") == [{"on_hand": 9}, {"on_hand": 9}]


def test_an_echo_expectation_keeps_its_prior_while_a_write_is_in_flight(world: dict[str, Any]) -> None:
    echoes, now = world["echoes"], datetime.now(UTC).replace(microsecond=0)
    first = Echo("f1", 3, now)
    echoes.expect("store_a", "SKU-6", Echo("f2", None, now, first))
    stored = echoes.expected("store_a", "SKU-6")
    assert stored == Echo("f2", None, now, first)
    assert stored.match(Copy({"x": 0}, now, 3)) == first  # the write never landed: still our first one
    echoes.expect("store_a", "SKU-6", Echo("f2", 4, now))  # it landed: the prior is gone
    assert echoes.expected("store_a", "SKU-6") == Echo("f2", 4, now)


def test_a_record_store_is_listed_in_keyset_pages_once_each(world: dict[str, Any]) -> None:
    a = world["stores"]["store_a"]
    for n in range(5):
        a.edit(f"K-{n}", {"n": n})
    pages = list(a.iter_copies(page_size=2))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [(key, copy.values) for page in pages for key, copy in page] == [(f"K-{n}", {"n": n}) for n in range(5)]
    assert list(world["stores"]["store_b"].iter_copies(page_size=2)) == []
