"""Database connections from a connection secret: SQL Server (pymssql) or PostgreSQL (psycopg).

The secret (Secrets Manager JSON) names the engine and where to connect; nothing else in Syncline
knows which driver is underneath. A server that cannot be reached is reported by host and port.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ConnectionFailed(ConnectionError):
    """The database could not be reached or refused the login; the message says where and what to check."""


class DbSettings(BaseModel):
    """A connection secret's content. ``host`` may be a socket directory for a local PostgreSQL."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    engine: Literal["mssql", "postgres"]
    host: str
    port: int = Field(0, ge=0, le=65535)
    database: str
    user: str
    password: SecretStr = SecretStr("")
    login_timeout_seconds: int = 10
    query_timeout_seconds: int = 60

    @property
    def where(self) -> str:
        port = self.port or (1433 if self.engine == "mssql" else 5432)
        return f"{self.host}:{port}/{self.database} as {self.user}"


def connect(settings: DbSettings, *, read_only: bool = False) -> Any:
    """Open a DB-API connection in autocommit mode; raise ``ConnectionFailed`` with a clear message."""
    if settings.engine == "mssql":
        return _connect_mssql(settings, read_only=read_only)
    return _connect_postgres(settings, read_only=read_only)


def _connect_mssql(settings: DbSettings, *, read_only: bool) -> Any:
    import pymssql  # noqa: PLC0415 - only functions that reach SQL Server load the driver

    try:
        connection = pymssql.connect(
            server=settings.host,
            port=str(settings.port or 1433),
            user=settings.user,
            password=settings.password.get_secret_value(),
            database=settings.database,
            login_timeout=settings.login_timeout_seconds,
            timeout=settings.query_timeout_seconds,
            appname="syncline",
            autocommit=True,
        )
    except pymssql.Error as exc:
        raise ConnectionFailed(
            f"cannot reach SQL Server at {settings.where}: {_first_line(exc)}. "
            "Check the host and port, that the function's VPC can route to it, and the login in the secret."
        ) from None
    if read_only:
        # Sage is never written by Syncline; SNAPSHOT-free dirty reads are not wanted either.
        cursor = connection.cursor()
        cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.close()
    return connection


def _connect_postgres(settings: DbSettings, *, read_only: bool) -> Any:
    import psycopg  # noqa: PLC0415 - only functions that reach PostgreSQL load the driver

    options = "-c default_transaction_read_only=on" if read_only else None
    try:
        return psycopg.connect(
            host=settings.host,
            port=settings.port or None,
            dbname=settings.database,
            user=settings.user,
            password=settings.password.get_secret_value() or None,
            connect_timeout=settings.login_timeout_seconds,
            options=options,
            autocommit=True,
            application_name="syncline",
        )
    except psycopg.Error as exc:
        raise ConnectionFailed(
            f"cannot reach PostgreSQL at {settings.where}: {_first_line(exc)}. "
            "Check the host and port, network access, and the login in the secret."
        ) from None


def _first_line(exc: BaseException) -> str:
    args = exc.args[0] if exc.args else exc
    text = args[1].decode(errors="replace") if isinstance(args, tuple) and len(args) > 1 else str(args)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 and "DB-Lib" in lines[0] else (lines[0] if lines else type(exc).__name__)
