"""Inventory adjustments: applied exactly once per idempotency key, logged, never below zero.

The rule is pure (:func:`plan`); the ledger adapter applies it inside one database transaction
with the level row locked, records before / change / after in the transaction log, and answers a
repeated key with the recorded outcome instead of applying it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from syncline.canonical.entities import InventoryAdjustment


class NegativeStock(ValueError):
    """The adjustment would take on-hand below zero; nothing was applied."""


@dataclass(frozen=True)
class AdjustmentOutcome:
    idempotency_key: str
    before: Decimal
    change: Decimal
    after: Decimal
    status: Literal["applied", "already_applied"]


def plan(adjustment: InventoryAdjustment, on_hand: Decimal) -> tuple[Decimal, Decimal]:
    """(change, after) for ``adjustment`` on ``on_hand``, or ``NegativeStock`` saying by how much."""
    change = adjustment.change_from(on_hand)
    after = on_hand + change
    if after < 0:
        raise NegativeStock(
            f"{adjustment.kind} of {_plain(adjustment.quantity)} for {adjustment.sku} at {adjustment.location} would leave "
            f"{_plain(after)} on hand (have {_plain(on_hand)}); rejected, nothing applied (key {adjustment.idempotency_key})"
        )
    return change, after


def _plain(number: Decimal) -> str:
    return f"{number.normalize():f}"


class AdjustmentLedger(Protocol):
    def apply(self, adjustment: InventoryAdjustment) -> AdjustmentOutcome:
        """Apply once; a repeated idempotency key returns the first outcome. Raises ``NegativeStock``."""
