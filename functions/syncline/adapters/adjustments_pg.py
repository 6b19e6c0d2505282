"""The storefront's adjustment ledger: ``inventory_transactions`` beside ``inventory_levels``."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from syncline.adjustments import AdjustmentOutcome, plan
from syncline.canonical.entities import InventoryAdjustment

LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS inventory_transactions (
    idempotency_key text           PRIMARY KEY,
    sku             text           NOT NULL,
    location        text           NOT NULL,
    kind            text           NOT NULL,
    quantity        numeric(19, 4) NOT NULL,
    before          numeric(19, 4) NOT NULL,
    change          numeric(19, 4) NOT NULL,
    after           numeric(19, 4) NOT NULL,
    reason          text,
    reference       text,
    source_system   text           NOT NULL,
    occurred_at     timestamptz    NOT NULL,
    applied_at      timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS inventory_transactions_item ON inventory_transactions (sku, location, applied_at);
"""


def ensure_ledger_schema(connection: Any) -> None:
    connection.execute(LEDGER_SQL)


class PostgresAdjustmentLedger:
    """Each adjustment in one transaction: key claimed, level row locked, rule applied, both rows written."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection

    def apply(self, adjustment: InventoryAdjustment) -> AdjustmentOutcome:
        for _ in range(3):
            try:
                return self._apply_once(adjustment)
            except _ConcurrentFirst:
                continue  # the other call's outcome is committed now: the next attempt reports it
        raise RuntimeError(f"adjustment {adjustment.idempotency_key} kept racing with itself")

    def _apply_once(self, adjustment: InventoryAdjustment) -> AdjustmentOutcome:
        connection = self._connection()
        with connection.transaction():
            recorded = connection.execute(
                "SELECT before, change, after FROM inventory_transactions WHERE idempotency_key = %s",
                [adjustment.idempotency_key],
            ).fetchone()
            if recorded is not None:
                before, change, after = recorded
                return AdjustmentOutcome(adjustment.idempotency_key, before, change, after, status="already_applied")
            # Lock the level row (or the key's absence: a concurrent first receipt waits on the ledger insert below).
            level = connection.execute(
                "SELECT on_hand, reserved FROM inventory_levels WHERE sku = %s AND location = %s FOR UPDATE",
                [adjustment.sku, adjustment.location],
            ).fetchone()
            on_hand, reserved = (level[0], level[1]) if level else (Decimal(0), Decimal(0))
            change, after = plan(adjustment, on_hand)
            inserted = connection.execute(
                "INSERT INTO inventory_transactions (idempotency_key, sku, location, kind, quantity, before, change, after, "
                "reason, reference, source_system, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1",
                [
                    adjustment.idempotency_key,
                    adjustment.sku,
                    adjustment.location,
                    adjustment.kind,
                    adjustment.quantity,
                    on_hand,
                    change,
                    after,
                    adjustment.reason,
                    adjustment.reference,
                    adjustment.source_system,
                    adjustment.occurred_at,
                ],
            ).fetchone()
            if inserted is None:
                # A concurrent call with the same key committed first: roll back, then report its outcome.
                raise _ConcurrentFirst
            available = max(after - reserved, Decimal(0))
            if level:
                connection.execute(
                    "UPDATE inventory_levels SET on_hand = %s, available = %s, synced_at = now() WHERE sku = %s AND location = %s",
                    [after, available, adjustment.sku, adjustment.location],
                )
            else:
                connection.execute(
                    "INSERT INTO inventory_levels (sku, location, on_hand, reserved, available, on_order, source_version, "
                    "source_updated_at) VALUES (%s, %s, %s, 0, %s, 0, 0, %s)",
                    [adjustment.sku, adjustment.location, after, available, adjustment.occurred_at],
                )
        return AdjustmentOutcome(adjustment.idempotency_key, on_hand, change, after, status="applied")


class _ConcurrentFirst(Exception):
    pass
