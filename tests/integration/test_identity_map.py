"""The identity map in DynamoDB (moto server): set, reverse lookup, conflicts refused, unset, list."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from syncline.adapters.identity_dynamodb import DynamoIdentityStore
from syncline.identity import AlreadyMapped, ExternalRecord, apply_matches, match


def test_map_set_lookup_conflict_unset_and_list(stack: Any) -> None:
    store = DynamoIdentityStore(boto3.client("dynamodb"), stack.resources.table)
    store.set("variant", "A-100", "shopify-store-a", "gid://shopify/ProductVariant/9007199254740993")
    store.set("variant", "A-100", "erp", "A-100")
    assert store.get("variant", "A-100").ids == {
        "shopify-store-a": "gid://shopify/ProductVariant/9007199254740993",
        "erp": "A-100",
    }
    assert store.key_of("variant", "shopify-store-a", "gid://shopify/ProductVariant/9007199254740993") == "A-100"

    with pytest.raises(AlreadyMapped, match="mapped to A-100; unset it there first"):
        store.set("variant", "B-300", "shopify-store-a", "gid://shopify/ProductVariant/9007199254740993")

    store.set("variant", "A-100", "shopify-store-a", "gid://shopify/ProductVariant/7")  # re-pointing frees the old id
    assert store.key_of("variant", "shopify-store-a", "gid://shopify/ProductVariant/9007199254740993") is None
    store.unset("variant", "A-100", "erp")
    assert store.get("variant", "A-100").ids == {"shopify-store-a": "gid://shopify/ProductVariant/7"}
    assert [i.key for i in store.list("variant")] == ["A-100"]


def test_automatic_matching_applies_and_reports_conflicts(stack: Any) -> None:
    store = DynamoIdentityStore(boto3.client("dynamodb"), stack.resources.table)
    store.set("variant", "OLD", "shop", "v1")
    report = match([ExternalRecord("shop", "v1", sku="A"), ExternalRecord("shop", "v2", sku="B")], ["A", "B"], {})
    conflicts = apply_matches(store, "variant", report)
    assert [c.record.id for c in conflicts] == ["v1"]  # already attached to OLD: reported, not moved
    assert store.key_of("variant", "shop", "v2") == "B"
