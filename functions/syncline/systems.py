"""Systems as two-way sync reads and writes them, built from their configuration (one place for the
functions and the CLI). ``syncline.topology.TWO_WAY_KINDS`` lists the kinds that can take part."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncline.config import SynclineConfig
from syncline.twoway import RecordSystem


def record_system(config: SynclineConfig, name: str, connection: Callable[[], Any]) -> RecordSystem:
    """``name`` as a ``RecordSystem``; ``connection`` opens (or returns the cached) database connection."""
    system = config.systems[name]
    if system.kind == "postgres":
        from syncline.adapters.pg_records import PostgresRecords  # noqa: PLC0415 - psycopg only where used

        return PostgresRecords(name, connection, system.table)
    raise LookupError(f"system {name!r} ({system.kind}) cannot take part in two-way sync")
