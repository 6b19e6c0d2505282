"""Backfill benchmark: N SKU x location rows, Sage 300 -> PostgreSQL storefront through the bulk path.

Measured in one run on one embedded PostgreSQL (or DATABASE_URL):
- copy_seconds: the baseline, a raw PostgreSQL COPY of the same rows (already in storefront shape)
  into an empty storefront table;
- seconds: what `syncline backfill PAIR` runs (``syncline.ops.jobs.run_backfill``) into an empty
  storefront: read the ERP in keyset pages as the read-only role, map with the incremental path's
  rules, COPY each page, and keep the job record in DynamoDB (a moto server, as the CLI's table);
- catch_up_seconds: the same again when every row exists and 10 % changed in the ERP (each page
  COPYed into staging, then one guarded merge).
Peak RSS is this process's high-water mark (the benchmark process runs the bulk path; PostgreSQL
and moto run in their own processes). Writes bench/results/backfill.json.

    python bench/backfill.py --rows 500000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

import boto3

from syncline.adapters.jobs import DynamoJobStore
from syncline.adapters.storefront_pg import COLUMNS, SCHEMA_SQL, PostgresStorefront
from syncline.db import DbSettings, connect
from syncline.erp.sage300 import Sage300Reader
from syncline.local.moto_server import LOCAL_CREDENTIALS, LOCAL_REGION, MotoServer
from syncline.local.postgres import ERP_READER, PostgresServer
from syncline.local.sage300 import Sage300Emulator
from syncline.ops.jobs import JobStore, new_job, run_backfill
from syncline.stamps import stamp_of
from syncline.sync import PairContext

RESULTS = Path(__file__).resolve().parent / "results"
PAIR = PairContext("erp-storefront-inventory", "sage300", {"1": "main", "2": "east", "3": "west"})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000, help="ICILOC rows to load (default 500,000)")
    parser.add_argument("--page-size", type=int, default=5000, help="ERP keyset page size (default 5,000)")
    parser.add_argument("--database-url", help="an existing PostgreSQL server instead of the embedded one")
    parser.add_argument("--output", type=Path, default=RESULTS / "backfill.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="syncline-bench-"))
    server = PostgresServer.start(args.database_url, work / "pgdata")
    moto = MotoServer.start(log_file=work / "moto.log")
    try:
        jobs = _job_store(moto)
        server.recreate_database("bench_erp")
        server.recreate_database("bench_store")
        with server.connect("bench_erp") as admin:
            erp = Sage300Emulator(admin)
            erp.create_schema()
            started = time.perf_counter()
            erp.seed_bulk(args.rows)
            seed_seconds = time.perf_counter() - started
        password = server.create_reader("bench_erp")
        reader_settings = DbSettings.model_validate(server.secret_for("bench_erp", user=ERP_READER, password=password))
        store = server.connect("bench_store")
        store.execute(SCHEMA_SQL)

        initial = _run_bulk(reader_settings, store, jobs, args.rows, args.page_size, "initial load")
        # Catch-up: 10 % of rows change in the ERP, then the whole table is loaded again.
        with server.connect("bench_erp") as admin:
            date, time_of_day = stamp_of(datetime.now(UTC))
            admin.execute(
                "UPDATE ICILOC SET QTYONHAND = QTYONHAND + 1, AUDTDATE = %s, AUDTTIME = %s WHERE ('x' || substr(md5(ITEMNO || LOCATION), 1, 8))::bit(32)::int %% 10 = 0",
                [date, time_of_day],
            )
        catch_up = _run_bulk(reader_settings, store, jobs, args.rows, args.page_size, "catch-up load")
        bulk_peak_rss = peak_rss_mb()  # measured before the baseline, which holds every row in memory

        # Baseline: raw COPY of the same rows, pre-shaped, into an empty table of the same shape.
        rows = _storefront_shaped_rows(reader_settings, args.page_size)
        store.execute("CREATE TABLE copy_baseline (LIKE inventory_levels INCLUDING ALL)")
        started = time.perf_counter()
        with store.cursor().copy(f"COPY copy_baseline ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        copy_seconds = time.perf_counter() - started
        del rows
        store.execute("DROP TABLE copy_baseline")

        total = store.execute("SELECT count(*) FROM inventory_levels").fetchone()
    finally:
        server.stop()
        moto.stop()

    figures = {
        "rows": args.rows,
        "seconds": round(initial["seconds"], 3),
        "rows_per_s": round(args.rows / initial["seconds"]),
        "copy_seconds": round(copy_seconds, 3),
        "ratio_to_copy": round(initial["seconds"] / copy_seconds, 2),
        "peak_rss_mb": round(bulk_peak_rss, 1),
        "loaded": initial["loaded"],
        "rejected": initial["rejected"],
        "catch_up": {
            "changed_fraction": 0.10,
            "seconds": round(catch_up["seconds"], 3),
            "rows_per_s": round(args.rows / catch_up["seconds"]),
            "ratio_to_copy": round(catch_up["seconds"] / copy_seconds, 2),
            "rows_in_storefront": total[0] if total else 0,
        },
        "seed_seconds": round(seed_seconds, 3),
        "page_size": args.page_size,
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "postgres": "embedded pgserver 16" if not args.database_url else "DATABASE_URL",
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


def _storefront_shaped_rows(settings: DbSettings, page_size: int) -> list[tuple[object, ...]]:
    """The rows the bulk path will produce, computed up front so the baseline times COPY alone."""
    from syncline.erp.sage300 import MappingError, inventory_row  # noqa: PLC0415

    connection = connect(settings, read_only=True)
    rows = []
    for page in Sage300Reader(lambda: connection).iter_all(page_size):
        for record in page:
            try:
                rows.append(inventory_row(record, PAIR.locations, PAIR.tz))
            except MappingError:
                continue
    connection.close()
    return rows


def _job_store(moto: MotoServer) -> JobStore:
    """The CLI's job records: a DynamoDB table (moto over HTTP) keyed like Syncline's own."""
    client = boto3.client("dynamodb", region_name=LOCAL_REGION, endpoint_url=moto.endpoint, **LOCAL_CREDENTIALS)  # type: ignore[call-overload]
    client.create_table(
        TableName="syncline-bench",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoJobStore(client, "syncline-bench")


def _run_bulk(
    settings: DbSettings, store: object, jobs: JobStore, rows: int, page_size: int, label: str
) -> dict[str, float]:
    erp_connection = connect(settings, read_only=True)
    with Progress(
        TextColumn(f"{label:>14}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False
    ) as progress:
        task = progress.add_task(label, total=rows)
        seen = {"read": 0}

        def advance(job: Any) -> None:
            progress.advance(task, job.read - seen["read"])
            seen["read"] = job.read

        started = time.perf_counter()
        job = run_backfill(
            new_job(PAIR.name, since=None, page_size=page_size),
            source=Sage300Reader(lambda: erp_connection),
            target=PostgresStorefront(lambda: store),
            jobs=jobs,
            pair=PAIR,
            on_progress=advance,
        )
        seconds = time.perf_counter() - started
    erp_connection.close()
    return {"seconds": seconds, "loaded": job.loaded, "rejected": job.rejected}


def _cpus() -> int:
    import os  # noqa: PLC0415

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
