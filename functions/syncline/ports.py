"""The small interfaces the engine needs from the outside world.

Adapters in ``syncline.adapters`` implement them against DynamoDB, EventBridge, SQS and PostgreSQL;
tests implement them in memory. Nothing here imports AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from syncline.models import ChangeNotice, DeadLetter, InventoryLevel, UnparsableMessage

if TYPE_CHECKING:  # the webhook function imports the ports, and the canonical models are a cold start of their own
    from syncline.canonical.entities import Price


@dataclass(frozen=True)
class Checkpoint:
    """Where a change stream's poller stands.

    ``position`` is the keyset position of the last row handled (AUDTDATE, AUDTTIME, *key);
    ``caught_up`` says whether the last run reached the end (then the next run rescans the
    lookback window when a rescan is due) or stopped at its row budget; otherwise a run resumes
    exactly after ``position``;
    ``recent`` remembers (minute of the stamp, hash of key and version) of rows emitted inside the lookback window so a
    rescan does not emit them again; ``rescanned_at`` (epoch seconds, poller clock) is when the
    whole lookback window was last read again; ``revision`` guards the conditional write.
    """

    position: tuple[object, ...] | None = None
    caught_up: bool = True
    recent: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    revision: int = 0
    rescanned_at: float | None = None


class CheckpointMoved(RuntimeError):
    """Another poller advanced the checkpoint first; this run's notices are harmless duplicates."""


class CheckpointStore(Protocol):
    def load(self, source: str, stream: str) -> Checkpoint: ...

    def save(self, source: str, stream: str, checkpoint: Checkpoint, *, expected_revision: int) -> None:
        """Write ``checkpoint`` only if the stored revision is still ``expected_revision``."""


class NoticePublisher(Protocol):
    def publish(self, notices: Sequence[ChangeNotice]) -> None:
        """Publish all notices (batched by the adapter) or raise."""


@dataclass(frozen=True)
class KnownState:
    content_hash: str
    version: int


class StateWriter(Protocol):
    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]:
        """Store each state unless a newer version is already stored; return the keys written."""


class StateStore(StateWriter, Protocol):
    def get_many(self, pair: str, entity: str, keys: Sequence[str]) -> Mapping[str, KnownState]: ...


class InventoryTarget(Protocol):
    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        """Write levels, never replacing a newer source version; return the keys actually written."""


class PriceTarget(Protocol):
    def upsert_prices(self, prices: Sequence[Price]) -> set[str]:
        """Write prices (one per SKU), never replacing a newer source version; return the SKUs now in agreement."""


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter | UnparsableMessage]) -> None:
        """Park records that cannot be synced, with their context, or raise."""


class DeliveryClaim(Enum):
    """What recording a webhook delivery found."""

    CLAIMED = "claimed"
    """First sight (or an earlier attempt's record expired or was abandoned): this request publishes it."""
    DUPLICATE = "duplicate"
    """Already published: acknowledge, do not republish."""
    IN_PROGRESS = "in_progress"
    """Another request holds it and has not finished: the sender should retry shortly."""


class DeliveryStore(Protocol):
    """Webhook delivery ids seen per source: claimed before publishing, completed after, released on failure."""

    def claim(self, source: str, delivery_id: str, token: str, *, now: float) -> DeliveryClaim: ...

    def complete(self, source: str, delivery_id: str, token: str, *, now: float) -> None:
        """Mark the delivery published (only if ``token`` still holds it)."""

    def release(self, source: str, delivery_id: str, token: str) -> None:
        """Forget an unpublished claim so the sender's retry is not taken for a duplicate."""
