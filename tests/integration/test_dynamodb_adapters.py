"""Checkpoint and state adapters against the moto server over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from syncline.adapters import aws
from syncline.adapters.dynamodb import DynamoCheckpointStore, DynamoStateStore
from syncline.ports import Checkpoint, CheckpointMoved, KnownState


def test_checkpoint_round_trips_with_its_lookback_memory(stack: Any) -> None:
    store = DynamoCheckpointStore(aws.dynamodb(), stack.resources.table)
    assert store.load("sage300", "ICILOC") == Checkpoint()
    saved = Checkpoint(
        position=(20261123, 10000000, "A", "1"),
        caught_up=False,
        recent=frozenset({(202611231000, -7), (202611231000, 2**62), (202611231001, 5)}),
        revision=1,
    )
    store.save("sage300", "ICILOC", saved, expected_revision=0)
    assert store.load("sage300", "ICILOC") == saved


def test_two_pollers_cannot_both_advance_the_checkpoint(stack: Any) -> None:
    store = DynamoCheckpointStore(aws.dynamodb(), stack.resources.table)
    store.save("sage300", "ICILOC", Checkpoint(position=(1, 0, "A", "1"), revision=1), expected_revision=0)
    first_view, second_view = store.load("sage300", "ICILOC"), store.load("sage300", "ICILOC")
    store.save(
        "sage300", "ICILOC", Checkpoint(position=(2, 0, "A", "1"), revision=2), expected_revision=first_view.revision
    )
    with pytest.raises(CheckpointMoved):
        store.save(
            "sage300",
            "ICILOC",
            Checkpoint(position=(3, 0, "A", "1"), revision=2),
            expected_revision=second_view.revision,
        )
    assert store.load("sage300", "ICILOC").position == (2, 0, "A", "1")


@pytest.mark.parametrize("commit", ["transaction", "per_key"])
def test_state_commit_keeps_newer_versions_per_key(stack: Any, commit: Any) -> None:
    store = DynamoStateStore(aws.dynamodb(), stack.resources.table, commit=commit)
    keys = [f"SKU{i}|main" for i in range(230)]  # more than one BatchGetItem page of 100
    assert store.commit_many("p", "inventory_level", {k: KnownState("h1", 10) for k in keys}) == set(keys)
    # Half the keys move ahead elsewhere; an older commit must leave them alone and still write the rest.
    store.commit_many("p", "inventory_level", {k: KnownState("h9", 90) for k in keys[:115]})
    written = store.commit_many("p", "inventory_level", {k: KnownState("h2", 20) for k in keys})
    assert written == set(keys[115:])
    known = store.get_many("p", "inventory_level", [*keys, "absent|x"])
    assert len(known) == 230 and "absent|x" not in known
    assert known[keys[0]] == KnownState("h9", 90) and known[keys[-1]] == KnownState("h2", 20)
