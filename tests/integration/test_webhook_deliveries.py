"""The delivery dedupe store against DynamoDB (moto server over HTTP): claims, leases, TTL, release."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from syncline.adapters.deliveries import DELIVERY_TTL_SECONDS, LEASE_SECONDS, DynamoDeliveryStore, delivery_pk
from syncline.local.stack import LocalStack
from syncline.ports import DeliveryClaim

NOW = 1_795_443_326.0


@pytest.fixture
def store(stack: LocalStack) -> DynamoDeliveryStore:
    return DynamoDeliveryStore(boto3.client("dynamodb"), stack.resources.table)


def item(stack: LocalStack, source: str, delivery_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        boto3.client("dynamodb")
        .get_item(
            TableName=stack.resources.table, Key={"pk": {"S": delivery_pk(source, delivery_id)}}, ConsistentRead=True
        )
        .get("Item")
    )
    return found


def test_first_claim_wins_a_copy_waits_and_a_completed_delivery_is_a_duplicate(
    stack: LocalStack, store: DynamoDeliveryStore
) -> None:
    assert store.claim("shop", "evt-1", "a", now=NOW) is DeliveryClaim.CLAIMED
    assert store.claim("shop", "evt-1", "b", now=NOW + 1) is DeliveryClaim.IN_PROGRESS
    store.complete("shop", "evt-1", "a", now=NOW + 1)
    assert store.claim("shop", "evt-1", "c", now=NOW + 2) is DeliveryClaim.DUPLICATE
    # Sources are separate namespaces.
    assert store.claim("other", "evt-1", "d", now=NOW + 2) is DeliveryClaim.CLAIMED

    stored = item(stack, "shop", "evt-1")
    assert stored is not None
    assert stored["pk"]["S"] == "DLV#shop#evt-1"
    assert stored["state"]["S"] == "published"
    assert int(stored["expires_at"]["N"]) == int(NOW) + DELIVERY_TTL_SECONDS == int(NOW) + 48 * 3600
    assert "lease_until" not in stored


def test_an_abandoned_claim_is_taken_over_after_its_lease(store: DynamoDeliveryStore) -> None:
    assert store.claim("shop", "evt-2", "crashed", now=NOW) is DeliveryClaim.CLAIMED
    later = NOW + LEASE_SECONDS + 1
    assert store.claim("shop", "evt-2", "retry", now=later) is DeliveryClaim.CLAIMED
    # The crashed attempt's late completion does not touch the record it no longer holds.
    store.complete("shop", "evt-2", "crashed", now=later)
    assert store.claim("shop", "evt-2", "third", now=later + 1) is DeliveryClaim.IN_PROGRESS
    store.complete("shop", "evt-2", "retry", now=later + 1)
    assert store.claim("shop", "evt-2", "fourth", now=later + 2) is DeliveryClaim.DUPLICATE


def test_an_expired_record_counts_as_absent_although_ttl_has_not_deleted_it(
    stack: LocalStack, store: DynamoDeliveryStore
) -> None:
    store.claim("shop", "evt-3", "a", now=NOW)
    store.complete("shop", "evt-3", "a", now=NOW)
    just_before = NOW + DELIVERY_TTL_SECONDS - 1
    assert store.claim("shop", "evt-3", "b", now=just_before) is DeliveryClaim.DUPLICATE
    assert item(stack, "shop", "evt-3") is not None  # moto, like AWS for up to 48 h, still holds it
    assert store.claim("shop", "evt-3", "c", now=NOW + DELIVERY_TTL_SECONDS) is DeliveryClaim.CLAIMED


def test_release_frees_only_the_holders_claim(stack: LocalStack, store: DynamoDeliveryStore) -> None:
    store.claim("shop", "evt-4", "holder", now=NOW)
    store.release("shop", "evt-4", "somebody-else")
    assert item(stack, "shop", "evt-4") is not None
    store.release("shop", "evt-4", "holder")
    assert item(stack, "shop", "evt-4") is None
    assert store.claim("shop", "evt-4", "retry", now=NOW + 1) is DeliveryClaim.CLAIMED


def test_long_sender_ids_are_stored_by_hash(stack: LocalStack, store: DynamoDeliveryStore) -> None:
    long_id = "x" * 5000
    assert store.claim("shop", long_id, "a", now=NOW) is DeliveryClaim.CLAIMED
    assert store.claim("shop", long_id, "b", now=NOW) is DeliveryClaim.IN_PROGRESS
    assert delivery_pk("shop", long_id).startswith("DLV#shop#sha256:")
    assert len(delivery_pk("shop", long_id)) < 100
