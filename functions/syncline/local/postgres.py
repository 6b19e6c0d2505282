"""PostgreSQL for the local stack: an embedded server (pgserver) or an existing one via ``DATABASE_URL``.

It hosts the storefront database and the emulated Sage 300 database; the ERP database is read by a
role that can only SELECT, as Syncline's login on a real Sage server should.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ERP_READER = "syncline_erp_reader"


@dataclass
class PostgresServer:
    """Admin access to one server; ``connect(database)`` for the local stack's own use."""

    admin_conninfo: str
    handle: Any = None  # pgserver.PostgresServer when embedded
    reader_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @classmethod
    def start(cls, database_url: str | None = None, data_dir: Path | None = None) -> PostgresServer:
        if database_url:
            return cls(database_url)
        from pgserver import get_server  # type: ignore[attr-defined]  # noqa: PLC0415 - only the embedded path needs it

        directory = data_dir or Path(tempfile.mkdtemp(prefix="syncline-pg-"))
        server = get_server(directory, cleanup_mode="stop")
        return cls(server.get_uri(), server)

    @property
    def embedded(self) -> bool:
        return self.handle is not None

    def conninfo(self, database: str, *, user: str | None = None, password: str | None = None) -> str:
        params = conninfo_to_dict(self.admin_conninfo)
        params["dbname"] = database
        if user:
            params["user"] = user
            params["password"] = password or ""
        return make_conninfo("", **params)

    def connect(self, database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(database), autocommit=True)

    def secret_for(self, database: str, *, user: str | None = None, password: str = "") -> dict[str, Any]:
        """The connection secret (``syncline.db.DbSettings`` shape) for a database on this server."""
        params = conninfo_to_dict(self.conninfo(database, user=user, password=password))
        return {
            "engine": "postgres",
            "host": params.get("host") or "127.0.0.1",
            "port": int(params.get("port") or 5432),
            "database": database,
            "user": params.get("user") or "postgres",
            "password": params.get("password") or "",
        }

    def recreate_database(self, database: str) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    def create_reader(self, database: str) -> str:
        """A login that may only read ``database``'s public tables; returns its (random, local) password."""
        password = self.reader_password
        with psycopg.connect(self.conninfo(database), autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ERP_READER]).fetchone()
            verb = "ALTER" if exists else "CREATE"
            admin.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ERP_READER), sql.Literal(password))
            )
            for statement in (
                "GRANT CONNECT ON DATABASE {db} TO {role}",
                "GRANT USAGE ON SCHEMA public TO {role}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
                "ALTER ROLE {role} SET default_transaction_read_only = on",
            ):
                admin.execute(sql.SQL(statement).format(db=sql.Identifier(database), role=sql.Identifier(ERP_READER)))
        return password

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cleanup()
            self.handle = None
