"""A PostgreSQL table of records as a two-way sync system (an OMS or a store database).

Each row carries a version bumped by every write and the time of the change; Syncline's writes are
compare-and-swap on the version it read, so an edit made after its read is never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from psycopg import sql

from syncline.twoway import Copy, StaleWrite


class PostgresRecords:
    def __init__(self, name: str, connection: Callable[[], Any], table: str = "synced_records") -> None:
        self.name, self._connection, self._table = name, connection, sql.Identifier(table)

    def ensure_schema(self) -> None:
        self._connection().execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, doc jsonb NOT NULL, "
                "version bigint NOT NULL, changed_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ).format(self._table)
        )

    def read(self, key: str) -> Copy | None:
        row = (
            self._connection()
            .execute(sql.SQL("SELECT doc, changed_at, version FROM {} WHERE key = %s").format(self._table), [key])
            .fetchone()
        )
        return Copy(row[0], row[1], row[2]) if row else None

    def iter_copies(self, page_size: int = 500) -> Iterator[list[tuple[str, Copy]]]:
        """Every record in key order, in keyset pages (reconcile's full compare)."""
        after: str | None = None
        while True:
            where = sql.SQL("") if after is None else sql.SQL("WHERE key > %s ")
            statement = sql.SQL("SELECT key, doc, changed_at, version FROM {} {}ORDER BY key LIMIT %s").format(
                self._table, where
            )
            rows = self._connection().execute(statement, [*([] if after is None else [after]), page_size]).fetchall()
            if rows:
                yield [(row[0], Copy(row[1], row[2], row[3])) for row in rows]
            if len(rows) < page_size:
                return
            after = rows[-1][0]

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        doc = json.dumps(dict(values), sort_keys=True, default=str)
        if expected_version is None:
            statement = sql.SQL(
                "INSERT INTO {} (key, doc, version) VALUES (%s, %s, 1) ON CONFLICT (key) DO NOTHING RETURNING doc, changed_at, version"
            ).format(self._table)
            row = self._connection().execute(statement, [key, doc]).fetchone()
        else:
            statement = sql.SQL(
                "UPDATE {} SET doc = %s, version = version + 1, changed_at = clock_timestamp() "
                "WHERE key = %s AND version = %s RETURNING doc, changed_at, version"
            ).format(self._table)
            row = self._connection().execute(statement, [doc, key, expected_version]).fetchone()
        if row is None:
            raise StaleWrite(f"{self.name}: {key} changed since it was read")
        return Copy(row[0], row[1], row[2])

    def edit(self, key: str, values: Mapping[str, Any]) -> Copy:
        """A user's change in this system (tests and the demo): no version check, as an app would do."""
        row = (
            self._connection()
            .execute(
                sql.SQL(
                    "INSERT INTO {0} (key, doc, version) VALUES (%s, %s, 1) ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc, "
                    "version = {0}.version + 1, changed_at = clock_timestamp() RETURNING doc, changed_at, version"
                ).format(self._table),
                [key, json.dumps(dict(values), sort_keys=True, default=str)],
            )
            .fetchone()
        )
        return Copy(row[0], row[1], row[2])
