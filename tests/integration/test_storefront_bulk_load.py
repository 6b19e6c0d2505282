"""PostgresStorefront.bulk_load on a real PostgreSQL: COPY straight in when the page is new, and never an older
version over a newer one, whichever way a page takes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.adapters.storefront_pg import PostgresStorefront

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _row(sku: str, location: str, on_hand: int, version: int) -> tuple[Any, ...]:
    quantity = Decimal(on_hand)
    return (sku, location, quantity, Decimal(0), quantity, Decimal(0), f"Item {sku}", "EA", True, version, AT)


@pytest.fixture
def storefront(stack: Any) -> tuple[PostgresStorefront, Any]:
    connection = stack.storefront()
    return PostgresStorefront(lambda: connection), connection


def _stored(connection: Any) -> dict[tuple[str, str], tuple[Decimal, int]]:
    rows = connection.execute("SELECT sku, location, on_hand, source_version FROM inventory_levels").fetchall()
    return {(sku, location): (on_hand, version) for sku, location, on_hand, version in rows}


def _statements(connection: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every COPY the loader starts, by target table."""
    started: list[str] = []
    cursor_type = type(connection.cursor())
    original = cursor_type.copy

    def copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        started.append(str(statement).split()[1])
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(cursor_type, "copy", copy)
    return started


def test_a_page_of_new_rows_is_copied_straight_into_the_table(
    storefront: tuple[PostgresStorefront, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, connection = storefront
    copies = _statements(connection, monkeypatch)
    assert target.bulk_load([_row("A1", "main", 5, 10), _row("A1", "east", 6, 10), _row("A2", "main", 7, 10)]) == 3
    assert target.bulk_load([_row("A3", "main", 1, 10)]) == 1
    assert copies == ["inventory_levels", "inventory_levels"]
    assert _stored(connection)[("A1", "east")] == (Decimal(6), 10)
    assert target.bulk_load([]) == 0


def test_a_page_whose_middle_row_was_written_first_is_merged_and_keeps_the_newer_version(
    storefront: tuple[PostgresStorefront, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, connection = storefront
    target.bulk_load([_row("B2", "main", 99, 30)])  # an incremental write got there first, newer
    copies = _statements(connection, monkeypatch)
    page = [_row("B1", "main", 1, 20), _row("B2", "main", 2, 20), _row("B3", "main", 3, 20)]
    assert target.bulk_load(page) == 3
    # The direct COPY hit the primary key and rolled back to its savepoint; the page was merged instead.
    assert copies == ["inventory_levels", "staged_inventory"]
    assert _stored(connection) == {
        ("B1", "main"): (Decimal(1), 20),
        ("B2", "main"): (Decimal(99), 30),
        ("B3", "main"): (Decimal(3), 20),
    }


def test_a_catch_up_page_is_merged_with_the_version_guard(
    storefront: tuple[PostgresStorefront, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, connection = storefront
    target.bulk_load([_row("C1", "main", 1, 10), _row("C2", "main", 2, 50)])
    copies = _statements(connection, monkeypatch)
    assert target.bulk_load([_row("C1", "main", 11, 20), _row("C2", "main", 12, 40)]) == 2
    assert target.bulk_load([_row("C1", "main", 21, 30)]) == 1  # the staging table is reused, emptied at commit
    assert copies == ["staged_inventory", "staged_inventory"]
    assert _stored(connection) == {("C1", "main"): (Decimal(21), 30), ("C2", "main"): (Decimal(2), 50)}
