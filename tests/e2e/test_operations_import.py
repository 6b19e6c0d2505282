"""`syncline import` on the local stack: CSV and XLSX exports through the normal write path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import openpyxl

from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack
from syncline.stamps import stamp_of, version_of
from tests.e2e.helpers import count_storefront_writes, expected_levels, storefront_levels
from tests.e2e.helpers import run_cli as run

PAIR = "erp-storefront-inventory"
ERP_AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
EXPORT_AT = "2026-11-23T09:00Z"
EXPORT_VERSION = version_of(*stamp_of(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)))
BARCODE = "4006381333931"


def _synced_stack(stack: LocalStack, items: int = 6) -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i:04d}", f"Item {i}") for i in range(items)], at=ERP_AT)
    erp.set_stock(
        [Stock(f"SKU{i:04d}", loc, Decimal(i + 1), committed=Decimal(1)) for i in range(items) for loc in "123"],
        at=ERP_AT,
    )
    stack.poll_erp()
    stack.drain()
    assert storefront_levels(stack) == expected_levels(stack)


def _level(stack: LocalStack, sku: str, location: str) -> tuple[Decimal, Decimal]:
    return storefront_levels(stack)[(sku, location)]


def test_csv_import_with_barcodes_writes_like_the_worker_and_a_later_erp_change_wins(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Given a synced pair and a barcode in the identity map
    _synced_stack(stack)
    assert run(stack, "map", "set", "variant", "SKU0003", "barcode", BARCODE)[0] == 0
    mapping = tmp_path / "counts.toml"
    mapping.write_text(
        'pair = "erp-storefront-inventory"\ndelimiter = ";"\ndecimal_separator = ","\n'
        '[columns]\nsku = "Article"\nbarcode = "EAN"\nlocation = "Warehouse"\nquantity = "Qty"\n'
        '[locations]\n"Main" = "1"\n"East" = "2"\n'
    )
    counts = tmp_path / "counts.csv"
    counts.write_text(f"Article;EAN;Warehouse;Qty\nSKU0001;;Main;12,5\n;{BARCODE};East;0\nSKU0002;;Main;3\n")
    before = storefront_levels(stack)

    # When it is dry-run, nothing is written
    code, dry = run(
        stack, "import", str(counts), "--mapping", str(mapping), "--dry-run", "--json", "--as-of", EXPORT_AT
    )
    assert code == 0
    assert (dry["plan"]["to_write"], dry["plan"]["unchanged"], dry["plan"]["invalid"]) == (2, 1, [])
    assert "applied" not in dry
    assert storefront_levels(stack) == before

    # When it is applied
    code, done = run(stack, "import", str(counts), "--mapping", str(mapping), "--json", "--as-of", EXPORT_AT)
    assert code == 0
    assert done["applied"] == {"written": 2, "zeroed": 0, "refused": []}
    assert _level(stack, "SKU0001", "main") == (Decimal("12.5"), Decimal("11.5"))  # 1 committed in the ERP
    assert _level(stack, "SKU0003", "east") == (Decimal(0), Decimal(0))
    after = storefront_levels(stack)
    assert {k: v for k, v in after.items() if k not in {("SKU0001", "main"), ("SKU0003", "east")}} == {
        k: v for k, v in before.items() if k not in {("SKU0001", "main"), ("SKU0003", "east")}
    }
    # ...the state cache holds the import's version, as after a worker's write
    item = boto3.client("dynamodb").get_item(
        TableName=stack.resources.table, Key={"pk": {"S": f"ST#{PAIR}#inventory_level#SKU0001|main"}}
    )["Item"]
    assert int(item["version"]["N"]) == EXPORT_VERSION

    # Then running the same file again writes nothing
    writes = count_storefront_writes(stack)
    code, again = run(stack, "import", str(counts), "--mapping", str(mapping), "--json", "--as-of", EXPORT_AT)
    assert (code, again["plan"]["unchanged"], again["applied"]["written"], writes()) == (0, 3, 0, 0)

    # And a later ERP change to the same row syncs over the import (newest version wins)
    stack.erp().set_stock(
        [Stock("SKU0001", "1", Decimal(40), committed=Decimal(1))], at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    )
    stack.poll_erp()
    stack.drain()
    assert _level(stack, "SKU0001", "main") == (Decimal(40), Decimal(39))
    assert _level(stack, "SKU0003", "east") == (Decimal(0), Decimal(0))  # the ERP did not touch it since


def _xlsx(path: Path, rows: list[list[Any]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Counts"
    sheet.append(["SKU", "Location", "On hand"])
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_invalid_rows_apply_nothing_full_mode_zeroes_and_a_newer_target_is_never_overwritten(
    stack: LocalStack, tmp_path: Path
) -> None:
    _synced_stack(stack)
    mapping = tmp_path / "counts.json"
    mapping.write_text(json.dumps({"columns": {"sku": "SKU", "location": "Location", "quantity": "On hand"}}))
    before = storefront_levels(stack)

    # Given an export with an unknown SKU, a negative count and an unmapped location: exit 4, nothing written
    bad = _xlsx(tmp_path / "bad.xlsx", [["SKU0000", 1, 5], ["NOPE", 1, 1], ["SKU0001", 1, -3], ["SKU0002", "QC", 1]])
    code, report = run(stack, "import", str(bad), "--mapping", str(mapping), "--json", "--as-of", EXPORT_AT)
    assert code == 4
    assert [(r["line"], r["reason"].split(":")[0]) for r in report["plan"]["invalid"]] == [
        (3, "unknown SKU 'NOPE'"),
        (4, "negative quantity"),
        (5, f"location 'QC' is not mapped for pair {PAIR}"),
    ]
    assert "applied" not in report
    code, text = run(stack, "import", str(bad), "--mapping", str(mapping), "--as-of", EXPORT_AT)
    assert code == 4
    assert "line 3: unknown SKU 'NOPE'" in text
    assert "Nothing was written" in text
    assert storefront_levels(stack) == before

    # When a full count of location 1 lists only SKU0000
    full = _xlsx(tmp_path / "full.xlsx", [["SKU0000", 1, 5]])
    code, report = run(
        stack, "import", str(full), "--mapping", str(mapping), "--mode", "full", "--json", "--as-of", EXPORT_AT
    )
    # Then every other SKU at main is set to zero; east and west are untouched
    assert code == 0, report
    assert report["applied"] == {"written": 1, "zeroed": 5, "refused": []}
    after = storefront_levels(stack)
    assert after[("SKU0000", "main")] == (Decimal(5), Decimal(4))
    assert {k: v for k, v in after.items() if k[1] == "main" and k[0] != "SKU0000"} == {
        (f"SKU{i:04d}", "main"): (Decimal(0), Decimal(0)) for i in range(1, 6)
    }
    assert {k: v for k, v in after.items() if k[1] != "main"} == {k: v for k, v in before.items() if k[1] != "main"}

    # And an export older than what the storefront holds is reported, never written
    old = _xlsx(tmp_path / "old.xlsx", [["SKU0001", 2, 99]])
    code, report = run(stack, "import", str(old), "--mapping", str(mapping), "--json", "--as-of", "2026-11-23T07:00Z")
    assert code == 4
    assert report["plan"]["target_ahead"] == ["SKU0001|east"]
    assert storefront_levels(stack) == after

    # A file that does not exist is exit 3
    assert run(stack, "import", str(tmp_path / "missing.csv"), "--mapping", str(mapping))[0] == 3
