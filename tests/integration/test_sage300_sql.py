"""The ERP SQL, as text, on a real PostgreSQL with the Sage-300-shaped schema, read by the read-only role."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from syncline.db import ConnectionFailed, DbSettings, connect
from syncline.erp.sage300 import (
    FETCH_FIELDS,
    ICILOC_STREAM,
    ICITEM_STREAM,
    Sage300Reader,
    bulk_page_params,
    bulk_page_sql,
)
from syncline.local.postgres import ERP_READER
from syncline.local.sage300 import Stock
from syncline.local.stack import ERP_DATABASE


def test_keyset_pages_walk_every_row_once_in_stamp_then_key_order(stack: Any, reader: Sage300Reader) -> None:
    erp = stack.erp()
    erp.add_items([(f"K{i:02d}", "x") for i in range(12)])
    # Three stamps, four rows each: ties broken by ITEMNO, then LOCATION.
    for n, stamp in enumerate([(20261123, 10000000), (20261123, 10000001), (20261124, 0)]):
        erp.set_stock([Stock(f"K{n * 4 + i:02d}", "1", Decimal(i)) for i in range(4)], stamp=stamp)
    erp.set_stock([Stock("K00", "2", Decimal(1))], stamp=(20261123, 10000000))
    seen, after = [], None
    while True:
        page = reader.scan_changes(ICILOC_STREAM, from_stamp=(0, 0), after=after, page_size=5)
        seen.extend(page)
        if len(page) < 5:
            break
        after = page[-1].position
    positions = [row.position for row in seen]
    assert positions == sorted(positions)
    assert len(positions) == len(set(positions)) == 13
    assert seen[0].key == ("K00", "1") and seen[1].key == ("K00", "2")  # CHAR padding stripped


def test_scan_from_a_stamp_is_inclusive(stack: Any, reader: Sage300Reader) -> None:
    erp = stack.erp()
    erp.add_items([("S1", "x"), ("S2", "x")], at=None)
    erp.set_stock([Stock("S1", "1", Decimal(1))], stamp=(20261123, 10000000))
    erp.set_stock([Stock("S2", "1", Decimal(1))], stamp=(20261123, 10000001))
    rows = reader.scan_changes(ICILOC_STREAM, from_stamp=(20261123, 10000001), after=None, page_size=10)
    assert [r.key for r in rows] == [("S2", "1")]
    assert len(reader.scan_changes(ICITEM_STREAM, from_stamp=(0, 0), after=None, page_size=10)) == 2


def test_fetch_joins_item_master_and_chunks_large_in_lists(
    stack: Any, reader: Sage300Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncline.erp import sage300

    monkeypatch.setattr(sage300, "MAX_IN_LIST", 3)
    erp = stack.erp()
    erp.add_items([(f"F{i}", f"Desc {i}") for i in range(7)])
    erp.set_stock([Stock(f"F{i}", "1", Decimal(i), committed=Decimal(1)) for i in range(7)])
    rows = reader.fetch_items([f"F{i}" for i in range(7)] + ["MISSING"])
    assert sorted(r["ITEMNO"] for r in rows) == [f"F{i}" for i in range(7)]
    assert {r["DESC"] for r in rows if r["ITEMNO"] == "F3"} == {"Desc 3"}
    assert next(r for r in rows if r["ITEMNO"] == "F3")["QTYONHAND"] == Decimal("3.0000")


def test_bulk_iteration_pages_by_item_and_location(stack: Any, reader: Sage300Reader) -> None:
    erp = stack.erp()
    erp.seed_bulk(10, locations=("1", "2", "3"))
    pages = list(reader.iter_all(page_size=4))
    assert [len(p) for p in pages] == [4, 4, 2]
    keys = [(r["ITEMNO"], r["LOCATION"]) for page in pages for r in page]
    assert keys == sorted(keys) and len(set(keys)) == 10


def test_bulk_rows_are_the_records_values_in_fetch_order(stack: Any, reader: Sage300Reader) -> None:
    stack.erp().seed_bulk(10, locations=("1", "2", "3"))
    records = [record for page in reader.iter_all(page_size=4) for record in page]
    rows = [row for page in reader.iter_rows(page_size=4) for row in page]
    assert [tuple(record[field] for field in FETCH_FIELDS) for record in records] == [tuple(row) for row in rows]
    resumed = [row for page in reader.iter_rows(page_size=4, after=(rows[4][0], rows[4][1])) for row in page]
    assert [tuple(row) for row in resumed] == [tuple(row) for row in rows[5:]]


def test_a_bulk_page_reads_the_item_master_from_where_the_page_starts(stack: Any) -> None:
    """Without the repeated bound on ICITEM, the merge join read the item master from its first item for every
    page: quadratic in the table's size (most of a 500,000-row backfill's time)."""
    stack.erp().seed_bulk(3000, locations=("1", "2", "3"))
    with stack.postgres.connect(ERP_DATABASE) as admin:
        admin.execute("ANALYZE")
        sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + bulk_page_sql(first=False)
        (plan,) = admin.execute(sql, bulk_page_params(("SKU0000900", "2"), 100)).fetchone()

    def scans(node: dict[str, Any]) -> list[dict[str, Any]]:
        found = [node] if node.get("Relation Name") == "icitem" else []
        return found + [scan for child in node.get("Plans", []) for scan in scans(child)]

    item_reads = sum(scan["Actual Rows"] * scan.get("Actual Loops", 1) for scan in scans(plan[0]["Plan"]))
    assert 0 < item_reads <= 100  # a page of 100 rows spans ~34 items; from the start it would be ~930


def test_syncline_login_cannot_write_to_the_erp(stack: Any, reader: Sage300Reader) -> None:
    stack.erp().add_items([("RO", "x")])
    settings = DbSettings.model_validate(
        stack.postgres.secret_for(ERP_DATABASE, user=ERP_READER, password=stack.postgres.reader_password)
    )
    with connect(settings, read_only=True) as connection, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connection.execute("UPDATE ICITEM SET INACTIVE = 1")
    with psycopg.connect(
        stack.postgres.conninfo(ERP_DATABASE, user=ERP_READER, password=stack.postgres.reader_password), autocommit=True
    ) as plain:
        plain.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            plain.execute("DELETE FROM ICITEM")


def test_unreachable_sql_server_is_a_clear_error_naming_the_host() -> None:
    from syncline.local.moto_server import free_port

    port = free_port()  # nothing listens there
    settings = DbSettings(
        engine="mssql", host="127.0.0.1", port=port, database="SAMLTD", user="syncline", login_timeout_seconds=2
    )
    with pytest.raises(ConnectionFailed) as raised:
        connect(settings)
    message = str(raised.value)
    assert f"cannot reach SQL Server at 127.0.0.1:{port}/SAMLTD as syncline" in message
    assert "Traceback" not in message and "DB-Lib" not in message
