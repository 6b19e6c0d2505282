"""Sage 300 -> storefront inventory, end to end on the local stack (moto server, PostgreSQL, handlers)."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.adapters.dynamodb import DynamoCheckpointStore, DynamoStateStore
from syncline.erp.sage300 import Sage300Reader
from syncline.local.emf import MetricLog
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from tests.e2e.helpers import config_with, count_storefront_writes, expected_levels, storefront_levels

QUEUE = "sync_storefront"


def _seed(stack: LocalStack, items: int, locations: str = "123") -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i:04d}", f"Item {i}") for i in range(items)])
    erp.set_stock(
        [
            Stock(f"SKU{i:04d}", loc, Decimal(i % 50), committed=Decimal(i % 3))
            for i in range(items)
            for loc in locations
        ]
    )


def _change(stack: LocalStack, count: int, seed: int) -> None:
    rng = random.Random(seed)
    erp = stack.erp()
    for item, location in rng.sample(sorted(erp.stock()), count):
        erp.set_stock([Stock(item, location, Decimal(rng.randint(0, 900)), committed=Decimal(rng.randint(0, 5)))])


def test_erp_changes_converge_in_the_storefront_and_unchanged_rows_are_skipped(stack: LocalStack) -> None:
    writes = count_storefront_writes(stack)
    published = MetricLog(stack.functions[QUEUE].log_file)
    _seed(stack, 100)
    stack.poll_erp()
    stack.drain()
    assert storefront_levels(stack) == expected_levels(stack)
    assert writes() == 300
    metrics = published.read()  # what a CloudWatch dashboard of the worker would show
    assert sum(metrics["Synced"]) == 300
    assert 0 < len(metrics["SyncLatency"]) <= 300  # every record's, or 100 quantiles of a bigger batch's
    assert all(latency >= 0 for latency in metrics["SyncLatency"])

    _change(stack, 40, seed=1)
    stack.erp().rename_item("SKU0007", "Renamed item")  # item master change: all three locations
    stack.poll_erp()
    stack.drain()
    assert storefront_levels(stack) == expected_levels(stack)
    assert writes() == 300 + 40 + 3
    descriptions = (
        stack.storefront().execute("SELECT DISTINCT description FROM inventory_levels WHERE sku = 'SKU0007'").fetchall()
    )
    assert descriptions == [("Renamed item",)]

    stack.poll_erp()  # nothing changed since: no notices, no writes
    stack.drain()
    assert writes() == 343


def test_duplicated_and_reordered_deliveries_apply_each_change_once(stack: LocalStack) -> None:
    writes = count_storefront_writes(stack)
    _seed(stack, 60)
    stack.poll_erp()
    sqs = boto3.client("sqs")
    url = stack.resources.queues[QUEUE].url
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert bodies
    # Every delivery three times, in a shuffled order.
    deliveries = bodies * 3
    random.Random(3).shuffle(deliveries)
    for start in range(0, len(deliveries), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(deliveries[start : start + 10])],
        )
    stack.drain()
    assert storefront_levels(stack) == expected_levels(stack)
    assert writes() == 180  # each of the 180 rows written exactly once


def test_worker_killed_mid_batch_loses_nothing(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(stack, 50)
    stack.poll_erp()
    real_commit = DynamoStateStore.commit_many
    calls = {"n": 0}

    def dies_once(self: DynamoStateStore, *args: Any, **kwargs: Any) -> set[str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("worker killed after writing the target, before committing state")
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(DynamoStateStore, "commit_many", dies_once)
    outcomes = stack.drain(idle_rounds=3)
    assert any(o.invocation_error and "worker killed" in o.invocation_error for o in outcomes)
    assert storefront_levels(stack) == expected_levels(stack)
    assert stack.dead_letters(QUEUE) == []
    state = DynamoStateStore(boto3.client("dynamodb"), stack.resources.table)
    keys = [f"SKU{i:04d}|{loc}" for i in range(50) for loc in ("main", "east", "west")]
    assert len(state.get_many("erp-storefront-inventory", "inventory_level", keys)) == 150


def test_poller_restarted_between_publish_and_checkpoint_loses_nothing(
    services: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto, postgres = services
    moto.reset()
    stack = LocalStack.up(
        moto=moto,
        postgres=postgres,
        work_dir=tmp_path,
        config_path=config_with(tmp_path, page_size=25, max_rows_per_run=100),
    )
    try:
        writes = count_storefront_writes(stack)
        _seed(stack, 100)  # 300 rows: three runs of 100
        real_save = DynamoCheckpointStore.save
        calls = {"n": 0}

        def dies_on_second(self: DynamoCheckpointStore, *args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise SystemExit("poller killed after publishing, before saving its checkpoint")
            real_save(self, *args, **kwargs)

        monkeypatch.setattr(DynamoCheckpointStore, "save", dies_on_second)
        with pytest.raises(SystemExit):
            stack.poll_erp()
        for _ in range(5):
            stack.poll_erp()
        stack.drain()
        assert storefront_levels(stack) == expected_levels(stack)
        assert writes() == 300  # re-published notices were skipped by the state cache
    finally:
        stack.down()


def test_rows_that_cannot_sync_land_in_the_dlq_with_their_reason(stack: LocalStack) -> None:
    _seed(stack, 10)
    erp = stack.erp()
    erp.add_items([("NEG", "negative"), ("NOWHERE", "unmapped"), ("BADSTAMP", "bad")])
    erp.set_stock(
        [Stock("NEG", "1", Decimal(-4)), Stock("NOWHERE", "7", Decimal(1)), Stock("BADSTAMP", "1", Decimal(1))]
    )
    erp.set_raw_stamp("BADSTAMP", "1", 20261123, 99999999)
    stack.poll_erp()
    stack.drain()
    assert storefront_levels(stack) == {k: v for k, v in expected_levels(stack).items() if k[0] != "BADSTAMP"}
    letters = {m["attributes"]["syncline-key"]: m for m in stack.dead_letters(QUEUE)}
    assert set(letters) == {"NEG|1", "NOWHERE|7", "BADSTAMP|1"}
    assert "negative quantity" in letters["NEG|1"]["attributes"]["syncline-reason"]
    assert "not mapped" in letters["NOWHERE|7"]["body"]["reason"]
    assert "AUDTTIME 99999999" in letters["BADSTAMP|1"]["body"]["reason"]
    assert letters["NEG|1"]["body"]["fetched"]["QTYONHAND"] == "-4.0000"
    assert letters["NEG|1"]["body"]["notice"]["source_version"] is not None


def test_transient_failure_retries_then_moves_to_the_dlq_after_max_receive_count(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(stack, 3, locations="1")
    stack.poll_erp()

    def erp_down(self: Sage300Reader, items: Any) -> Any:
        raise ConnectionError("cannot reach SQL Server at erp.example:1433")

    monkeypatch.setattr(Sage300Reader, "fetch_items", erp_down)
    outcomes = stack.drain(idle_rounds=3, max_seconds=60)
    max_receive = stack.topology.queue(QUEUE).max_receive_count
    assert sum(o.failed for o in outcomes) == 2 * max_receive  # two messages (ICILOC + ICITEM), each tried 5 times
    dead = stack.dead_letters(QUEUE)
    assert len(dead) == 2
    assert all(
        json.loads(json.dumps(d["body"]))["detail-type"] == "ChangeNotices" for d in dead
    )  # the original event, unchanged
    assert storefront_levels(stack) == {}
