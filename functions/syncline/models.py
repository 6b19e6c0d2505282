"""Canonical models: the shapes that cross every boundary inside Syncline."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

KEY_SEPARATOR = "|"
ALL_LOCATIONS = "*"
# How notices travel on the bus: EventBridge source "syncline.{system}", detail-type "ChangeNotices".
NOTICE_SOURCE_PREFIX = "syncline."
NOTICE_DETAIL_TYPE = "ChangeNotices"


class ChangeNotice(BaseModel):
    """A hint that a record changed somewhere. Never trusted as data: the worker fetches fresh state."""

    model_config = ConfigDict(frozen=True)

    source_system: str
    entity: str
    key: str = Field(min_length=1, max_length=512)
    operation: Literal["upsert", "delete"] = "upsert"
    observed_at: datetime
    source_version: int | None = None
    delivery_id: str | None = None
    trace_id: str | None = None
    triggered_at: datetime | None = Field(
        None, description="when the source says the change happened (e.g. X-Shopify-Triggered-At); spots stale retries"
    )


class NoticeBatch(BaseModel):
    """The EventBridge ``detail`` of a ``ChangeNotices`` event: notices of one entity, batched."""

    source_system: str
    entity: str
    notices: list[ChangeNotice] = Field(min_length=1)


FailureStage = Literal["parse", "fetch", "map", "write"]


class DeadLetter(BaseModel):
    """What the DLQ holds for a record that cannot be synced: the notice plus everything needed to fix it.

    The worker accepts a dead letter as input again, so a redrive replays ``notice`` unchanged.
    """

    kind: Literal["syncline.dead-letter"] = "syncline.dead-letter"
    notice: ChangeNotice
    reason: str
    stage: FailureStage
    pair: str
    fetched: dict[str, Any] | None = None
    failed_at: datetime


class UnparsableMessage(BaseModel):
    """A queue message that is not a notice at all, kept verbatim so nothing is lost."""

    kind: Literal["syncline.unparsable"] = "syncline.unparsable"
    body: str
    reason: str
    pair: str
    failed_at: datetime


def inventory_key(item: str, location: str) -> str:
    """The notice key of one ERP item at one location (``ALL_LOCATIONS`` for an item-level change)."""
    return f"{item}{KEY_SEPARATOR}{location}"


def split_inventory_key(key: str) -> tuple[str, str]:
    item, sep, location = key.rpartition(KEY_SEPARATOR)
    if not sep or not item or not location:
        raise ValueError(f"inventory key {key!r} is not ITEM{KEY_SEPARATOR}LOCATION")
    return item, location


class InventoryLevel(BaseModel):
    """Stock of one SKU at one location, in the target's location codes."""

    model_config = ConfigDict(frozen=True)

    sku: str = Field(min_length=1, max_length=64)
    location: str = Field(min_length=1, max_length=64)
    on_hand: Decimal = Field(ge=0)
    reserved: Decimal = Field(ge=0)
    available: Decimal = Field(ge=0)
    on_order: Decimal = Field(ge=0)
    description: str | None = None
    unit: str | None = None
    active: bool = True
    source_version: int
    source_updated_at: datetime

    @property
    def key(self) -> str:
        return inventory_key(self.sku, self.location)

    def content_hash(self) -> str:
        """Hash of the synced content, not of its version: a re-stamped but unchanged row is skipped."""
        content = self.model_dump(mode="json", exclude={"source_version", "source_updated_at"})
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.blake2b(encoded, digest_size=16).hexdigest()
