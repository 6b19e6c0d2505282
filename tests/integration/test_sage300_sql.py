"""The ERP SQL, as text, on a real PostgreSQL with the Sage-300-shaped schema, read by the read-only role."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from syncline.db import ConnectionFailed, DbSettings, connect
from syncline.erp.sage300 import ICILOC_STREAM, ICITEM_STREAM, Sage300Reader
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
