"""Inventory adjustments on the real storefront database: exactly once, logged, never negative."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.adapters.adjustments_pg import PostgresAdjustmentLedger, ensure_ledger_schema
from syncline.adapters.storefront_pg import ensure_schema
from syncline.adjustments import NegativeStock
from syncline.canonical import InventoryAdjustment

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(services: Any) -> Iterator[Any]:
    _, postgres = services
    postgres.recreate_database("adjustments")
    connection = postgres.connect("adjustments")
    ensure_schema(connection)
    ensure_ledger_schema(connection)
    connection.execute(
        "INSERT INTO inventory_levels (sku, location, on_hand, reserved, available, on_order, source_version, source_updated_at) "
        "VALUES ('A', 'main', 10, 2, 8, 0, 1, now())"
    )
    yield postgres, connection
    connection.close()


def _adjust(key: str, kind: str, quantity: int, sku: str = "A") -> InventoryAdjustment:
    return InventoryAdjustment(
        idempotency_key=key,
        sku=sku,
        location="main",
        kind=kind,
        quantity=Decimal(quantity),  # type: ignore[arg-type]
        reason="test",
        reference=f"DOC-{key}",
        source_system="wms",
        occurred_at=NOW,
    )


def _level(connection: Any, sku: str = "A") -> tuple[Decimal, Decimal]:
    row = connection.execute("SELECT on_hand, available FROM inventory_levels WHERE sku = %s", [sku]).fetchone()
    return row[0], row[1]


def test_each_kind_moves_stock_and_is_logged(store: Any) -> None:
    _, connection = store
    ledger = PostgresAdjustmentLedger(lambda: connection)
    ledger.apply(_adjust("r1", "receipt", 5))
    ledger.apply(_adjust("s1", "shipment", 3))
    ledger.apply(_adjust("c1", "cycle_count", 20))
    assert _level(connection) == (Decimal(20), Decimal(18))
    log = connection.execute(
        "SELECT idempotency_key, before, change, after FROM inventory_transactions ORDER BY applied_at, idempotency_key"
    ).fetchall()
    assert [(k, int(b), int(c), int(a)) for k, b, c, a in log] == [
        ("r1", 10, 5, 15),
        ("s1", 15, -3, 12),
        ("c1", 12, 8, 20),
    ]


def test_a_repeated_key_is_applied_once_and_answers_with_the_first_outcome(store: Any) -> None:
    _, connection = store
    ledger = PostgresAdjustmentLedger(lambda: connection)
    first = ledger.apply(_adjust("r1", "receipt", 5))
    again = ledger.apply(_adjust("r1", "receipt", 5))
    assert first.status == "applied" and again.status == "already_applied"
    assert (again.before, again.change, again.after) == (first.before, first.change, first.after)
    assert _level(connection)[0] == 15


def test_concurrent_deliveries_of_one_key_apply_it_once(store: Any) -> None:
    postgres, connection = store

    def apply_in_own_connection(_: int) -> str:
        with postgres.connect("adjustments") as own:
            return PostgresAdjustmentLedger(lambda: own).apply(_adjust("dup", "receipt", 1)).status

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(apply_in_own_connection, range(6)))
    assert sorted(statuses).count("applied") == 1
    assert _level(connection)[0] == 11


def test_an_adjustment_that_would_go_negative_is_rejected_with_a_reason_and_changes_nothing(store: Any) -> None:
    _, connection = store
    ledger = PostgresAdjustmentLedger(lambda: connection)
    with pytest.raises(NegativeStock, match=r"shipment of 11 for A at main would leave -1 on hand \(have 10"):
        ledger.apply(_adjust("s9", "shipment", 11))
    assert _level(connection)[0] == 10
    assert connection.execute("SELECT count(*) FROM inventory_transactions").fetchone()[0] == 0


def test_a_receipt_for_a_new_location_creates_the_level(store: Any) -> None:
    _, connection = store
    PostgresAdjustmentLedger(lambda: connection).apply(_adjust("n1", "receipt", 4, sku="NEW"))
    assert _level(connection, "NEW") == (Decimal(4), Decimal(4))
