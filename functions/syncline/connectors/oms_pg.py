"""The PostgreSQL order-management system (OMS): a sync target for orders, shipments and customers, and a
change source through a trigger-filled outbox.

As a target every upsert is guarded: a record carrying an older source version (or, without versions,
an older ``updated_at``) never replaces a newer row, an exact redelivery changes nothing, and an order's
status never moves backwards (``ORDER_STATUS_RANK``: the newer record's other fields are written, the
status is held). Each call says what it wrote and what it skipped, and why.

As a source, triggers on the OMS tables write one ``outbox`` row per record and transaction (a change
to order or shipment lines notifies the order or shipment). Readers claim rows with ``FOR UPDATE SKIP
LOCKED`` and a lease, publish, then acknowledge (delete); a reader that dies leaves its claim to expire,
so a row is published at least once and never claimed by two live readers. ``NOTIFY syncline_outbox``
is only a wake-up signal: the outbox table is the truth. Syncline's own writes run with
``syncline.origin = 'syncline'``, which the trigger copies into ``outbox.origin``, so they are known
echoes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from syncline.canonical.entities import ORDER_STATUS_RANK, Contact, Order, OrderStatus, Shipment
from syncline.contacts import ADDRESS_PARTS, SYNCED_FIELDS, contact_key, contact_values
from syncline.models import ChangeNotice
from syncline.twoway import Copy, StaleWrite

SYNCLINE_ORIGIN = "syncline"
NOTIFY_CHANNEL = "syncline_outbox"
Connection = psycopg.Connection[Any]
Entity = Literal["order", "shipment", "customer"]
SkipReason = Literal["stale", "unchanged"]

_RANK_CASES = " ".join(f"WHEN '{status.value}' THEN {rank}" for status, rank in ORDER_STATUS_RANK.items())

SCHEMA_SQL = f"""
CREATE OR REPLACE FUNCTION syncline_order_status_rank(status text) RETURNS int
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE status {_RANK_CASES} END $$;

CREATE TABLE IF NOT EXISTS customers (
    customer_id       text PRIMARY KEY,
    email             text,
    first_name        text,
    last_name         text,
    phone             text,
    account_id        text,
    lifecycle_stage   text,
    address           jsonb,
    marketing_opt_in  boolean,
    source_version    bigint,
    updated_at        timestamptz NOT NULL,
    content_hash      text,
    version           bigint      NOT NULL DEFAULT 1,
    changed_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS orders (
    order_id          text PRIMARY KEY,
    number            text,
    status            text           NOT NULL CHECK (syncline_order_status_rank(status) IS NOT NULL),
    financial_status  text           NOT NULL,
    currency          char(3)        NOT NULL,
    customer_id       text,
    email             text,
    shipping_address  jsonb,
    total             numeric(19, 4) NOT NULL,
    placed_at         timestamptz    NOT NULL,
    source_version    bigint,
    updated_at        timestamptz    NOT NULL,
    content_hash      text,
    version           bigint         NOT NULL DEFAULT 1,
    changed_at        timestamptz    NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id    text           NOT NULL REFERENCES orders ON DELETE CASCADE,
    line_id     text           NOT NULL,
    sku         text           NOT NULL,
    quantity    numeric(19, 4) NOT NULL CHECK (quantity > 0),
    unit_price  numeric(19, 4) NOT NULL,
    discount    numeric(19, 4) NOT NULL DEFAULT 0,
    tax         numeric(19, 4) NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_id)
);
CREATE TABLE IF NOT EXISTS shipments (
    shipment_id      text PRIMARY KEY,
    order_id         text        NOT NULL,
    status           text        NOT NULL,
    carrier          text,
    tracking_number  text,
    location         text,
    shipped_at       timestamptz,
    source_version   bigint,
    updated_at       timestamptz NOT NULL,
    content_hash     text,
    version          bigint      NOT NULL DEFAULT 1,
    changed_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS shipment_lines (
    shipment_id  text           NOT NULL REFERENCES shipments ON DELETE CASCADE,
    line_no      int            NOT NULL,
    sku          text           NOT NULL,
    quantity     numeric(19, 4) NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, line_no)
);
CREATE INDEX IF NOT EXISTS shipments_by_order ON shipments (order_id);
CREATE INDEX IF NOT EXISTS customers_by_email ON customers (lower(btrim(email)));

CREATE TABLE IF NOT EXISTS outbox (
    id             bigserial PRIMARY KEY,
    operation      text        NOT NULL CHECK (operation IN ('upsert', 'delete')),
    entity         text        NOT NULL,
    key            text        NOT NULL,
    version        bigint,
    origin         text,
    txid           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_by     text,
    claimed_until  timestamptz
);
-- One row per record and transaction: a header and its lines written together notify once.
CREATE UNIQUE INDEX IF NOT EXISTS outbox_one_per_transaction ON outbox (txid, entity, key);

-- Every write, Syncline's or an application's, bumps the row version: compare-and-swap relies on it.
CREATE OR REPLACE FUNCTION syncline_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.changed_at := clock_timestamp();
    RETURN NEW;
END $$;

-- TG_ARGV: entity, key column[, parent table]. A child row (a line) notifies its parent at its version.
CREATE OR REPLACE FUNCTION syncline_outbox_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb;
    record_key text;
    record_version bigint;
    op text;
BEGIN
    IF TG_OP = 'DELETE' THEN doc := to_jsonb(OLD); ELSE doc := to_jsonb(NEW); END IF;
    record_key := doc ->> TG_ARGV[1];
    IF TG_NARGS > 2 THEN
        EXECUTE format('SELECT version FROM %I WHERE %I = $1', TG_ARGV[2], TG_ARGV[1])
            INTO record_version USING record_key;
        op := CASE WHEN record_version IS NULL THEN 'delete' ELSE 'upsert' END;
    ELSE
        record_version := (doc ->> 'version')::bigint;
        op := CASE WHEN TG_OP = 'DELETE' THEN 'delete' ELSE 'upsert' END;
    END IF;
    INSERT INTO outbox (operation, entity, key, version, origin)
    VALUES (op, TG_ARGV[0], record_key, record_version, NULLIF(current_setting('syncline.origin', true), ''))
    ON CONFLICT (txid, entity, key) DO UPDATE
        SET operation = EXCLUDED.operation, version = COALESCE(EXCLUDED.version, outbox.version);
    PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_ARGV[0]);
    RETURN NULL;
END $$;
"""

_HEADERS: dict[str, tuple[str, str, str | None]] = {  # table -> (entity, key column, parent table)
    "orders": ("order", "order_id", None),
    "order_lines": ("order", "order_id", "orders"),
    "shipments": ("shipment", "shipment_id", None),
    "shipment_lines": ("shipment", "shipment_id", "shipments"),
    "customers": ("customer", "customer_id", None),
}


def _trigger_sql() -> str:
    statements = []
    for table, (entity, key, parent) in _HEADERS.items():
        arguments = ", ".join(f"'{value}'" for value in (entity, key, parent) if value)
        if parent is None:
            statements.append(
                f"CREATE OR REPLACE TRIGGER {table}_version BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION syncline_bump_version()"
            )
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_outbox AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION syncline_outbox_record({arguments})"
        )
    return ";\n".join(statements)


TRIGGERS_SQL = _trigger_sql()
_SCHEMA_LOCK = 0x5359_4E43_4F4D_53  # advisory lock id: concurrent ensure_schema() calls take turns

# Newer wins: versions compare first when both sides have one, then the source's time; the same version
# and time with different content (a correction) is written, an exact redelivery is not.
_NEWER = (
    "(CASE WHEN {t}.source_version IS NOT NULL AND EXCLUDED.source_version IS NOT NULL "
    "THEN (EXCLUDED.source_version, EXCLUDED.updated_at) >= ({t}.source_version, {t}.updated_at) "
    "ELSE EXCLUDED.updated_at >= {t}.updated_at END) "
    "AND ({t}.source_version, {t}.updated_at, {t}.content_hash) "
    "IS DISTINCT FROM (EXCLUDED.source_version, EXCLUDED.updated_at, EXCLUDED.content_hash)"
)

ORDER_COLUMNS = (
    "order_id",
    "number",
    "status",
    "financial_status",
    "currency",
    "customer_id",
    "email",
    "shipping_address",
    "total",
    "placed_at",
    "source_version",
    "updated_at",
    "content_hash",
)
SHIPMENT_COLUMNS = (
    "shipment_id",
    "order_id",
    "status",
    "carrier",
    "tracking_number",
    "location",
    "shipped_at",
    "source_version",
    "updated_at",
    "content_hash",
)
CUSTOMER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "account_id",
    "lifecycle_stage",
    "address",
    "marketing_opt_in",
)
CUSTOMER_COLUMNS = ("customer_id", *CUSTOMER_FIELDS, "source_version", "updated_at", "content_hash")
_JSON_COLUMNS = frozenset({"shipping_address", "address"})


def _upsert_sql(table: str, columns: Sequence[str], *, status_ranked: bool = False) -> str:
    updates = [f"{c} = EXCLUDED.{c}" for c in columns[1:] if not (status_ranked and c == "status")]
    if status_ranked:  # the business state never moves backwards, whatever the versions say
        updates.append(
            f"status = CASE WHEN syncline_order_status_rank(EXCLUDED.status) > syncline_order_status_rank({table}.status) "
            f"THEN EXCLUDED.status ELSE {table}.status END"
        )
    returning = "status" if status_ranked else "NULL"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {', '.join(updates)} WHERE {_NEWER.format(t=table)} "
        f"RETURNING {returning}"
    )


def _order_upsert_sql() -> str:
    """The guarded order upsert, also saying what it did in the same statement: the stored status, whether the
    row was inserted (``xmax = 0``) and the status before. The CTE locks the existing row (``FOR UPDATE``: a
    concurrent writer's change is waited for and read, not a stale snapshot) and is joined into the inserted
    row so it is read before the write. Parameters: the order id, then the row."""
    updates = [f"{c} = EXCLUDED.{c}" for c in ORDER_COLUMNS[1:] if c != "status"]
    # The business state never moves backwards, whatever the versions say.
    updates.append(
        "status = CASE WHEN syncline_order_status_rank(EXCLUDED.status) > syncline_order_status_rank(orders.status) "
        "THEN EXCLUDED.status ELSE orders.status END"
    )
    columns = ", ".join(ORDER_COLUMNS)
    return (
        "WITH previous AS MATERIALIZED (SELECT status FROM orders WHERE order_id = %s FOR UPDATE) "
        f"INSERT INTO orders ({columns}) SELECT {', '.join(['%s'] * len(ORDER_COLUMNS))} "
        "FROM (SELECT) AS one LEFT JOIN previous ON true "
        f"ON CONFLICT (order_id) DO UPDATE SET {', '.join(updates)} WHERE {_NEWER.format(t='orders')} "
        "RETURNING status, xmax = 0, (SELECT status FROM previous)"
    )


UPSERT_ORDER_SQL = _order_upsert_sql()
UPSERT_SHIPMENT_SQL = _upsert_sql("shipments", SHIPMENT_COLUMNS)
UPSERT_CUSTOMER_SQL = _upsert_sql("customers", CUSTOMER_COLUMNS)


def ensure_schema(connection: Connection) -> None:
    """Create the OMS tables, the outbox and its triggers; safe to run again and concurrently."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
        connection.execute(SCHEMA_SQL)
        connection.execute(TRIGGERS_SQL)


def content_hash(record: BaseModel) -> str:
    """Hash of what a record says, not of its version or time: an exact redelivery is recognised."""
    content = record.model_dump(mode="json", exclude={"source_version", "updated_at"})
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


@dataclass
class UpsertResult:
    """What an upsert did per key: ``written`` keys, ``skipped`` keys with the reason, and orders whose
    incoming status was refused because it would move backwards (``held_status``: the status kept). Of the
    written orders: those that were new (``inserted``), and for the others the status before the write
    (``previous_status``), read in the same guarded statement."""

    written: list[str] = field(default_factory=list)
    skipped: dict[str, SkipReason] = field(default_factory=dict)
    held_status: dict[str, OrderStatus] = field(default_factory=dict)
    inserted: list[str] = field(default_factory=list)
    previous_status: dict[str, OrderStatus] = field(default_factory=dict)


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One keyset page; ``next_after`` is the key to pass for the next page, None after the last."""

    items: list[T]
    next_after: str | None


_RACE_ATTEMPTS = 3


class _InsertRace(Exception):  # control flow: another writer inserted the order while we upserted it
    pass


def _origin(connection: Connection, origin: str | None) -> None:
    """Mark the current transaction's writes (read by the outbox trigger): ``SET LOCAL syncline.origin``."""
    if origin:
        connection.execute("SELECT set_config('syncline.origin', %s, true)", [origin])


def _why_skipped(connection: Connection, table: str, key_column: str, key: str, record: BaseModel) -> SkipReason:
    """``unchanged`` for an exact redelivery of what is stored, ``stale`` when the stored row is newer."""
    stored = connection.execute(
        f"SELECT content_hash, source_version, updated_at FROM {table} WHERE {key_column} = %s", [key]
    ).fetchone()
    incoming = (content_hash(record), getattr(record, "source_version", None), getattr(record, "updated_at", None))
    return "unchanged" if stored is not None and tuple(stored) == incoming else "stale"


def _json(value: BaseModel | None) -> Jsonb | None:
    return Jsonb(value.model_dump(mode="json", exclude_none=True)) if value is not None else None


class OmsDatabase:
    """Typed, guarded reads and writes of the OMS tables over a psycopg connection in autocommit mode.

    ``origin`` marks every write made through this object (default: Syncline's own), so its outbox
    rows are recognisable echoes; pass ``origin=None`` to write as an ordinary application would.
    """

    def __init__(self, connection: Callable[[], Connection], *, origin: str | None = SYNCLINE_ORIGIN) -> None:
        self._connection = connection
        self.origin = origin

    def ensure_schema(self) -> None:
        ensure_schema(self._connection())

    # --- writes -------------------------------------------------------------------------------------

    def upsert_orders(
        self, orders: Sequence[Order], *, before_commit: Callable[[UpsertResult], None] | None = None
    ) -> UpsertResult:
        """Write orders with their lines in one transaction; a skipped order keeps its lines untouched.

        ``before_commit`` is called with the result inside the transaction, after every write: if it raises,
        nothing is written (the worker publishes the orders' events there, so a change is never committed without
        its events). An order another writer inserted between our read and our write is tried again, so
        ``previous_status`` is always the status the write replaced."""
        for attempt in range(1, _RACE_ATTEMPTS + 1):
            try:
                return self._upsert_orders(orders, before_commit)
            except _InsertRace:
                if attempt == _RACE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _upsert_orders(
        self, orders: Sequence[Order], before_commit: Callable[[UpsertResult], None] | None
    ) -> UpsertResult:
        result = UpsertResult()
        connection = self._connection()
        with connection.transaction():
            _origin(connection, self.origin)
            for order in orders:
                row = connection.execute(UPSERT_ORDER_SQL, [order.order_id, *self._order_row(order)]).fetchone()
                if row is None:
                    result.skipped[order.order_id] = _why_skipped(
                        connection, "orders", "order_id", order.order_id, order
                    )
                    continue
                status, inserted, previous = row
                if not inserted and previous is None:
                    # Absent when our statement started, inserted by another writer before our insert: its status
                    # is unknown here. Roll back and do it again, now that the row is there to lock and read.
                    raise _InsertRace(order.order_id)
                result.written.append(order.order_id)
                if inserted:
                    result.inserted.append(order.order_id)
                else:
                    result.previous_status[order.order_id] = OrderStatus(previous)
                if status != order.status.value:
                    result.held_status[order.order_id] = OrderStatus(status)
                connection.execute("DELETE FROM order_lines WHERE order_id = %s", [order.order_id])
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO order_lines (order_id, line_id, sku, quantity, unit_price, discount, tax) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [
                            (order.order_id, li.line_id, li.sku, li.quantity, li.unit_price, li.discount, li.tax)
                            for li in order.lines
                        ],
                    )
            if before_commit is not None:
                before_commit(result)
        return result

    def upsert_shipments(self, shipments: Sequence[Shipment]) -> UpsertResult:
        result = UpsertResult()
        connection = self._connection()
        with connection.transaction():
            _origin(connection, self.origin)
            for shipment in shipments:
                row = connection.execute(UPSERT_SHIPMENT_SQL, self._shipment_row(shipment)).fetchone()
                if row is None:
                    result.skipped[shipment.shipment_id] = _why_skipped(
                        connection, "shipments", "shipment_id", shipment.shipment_id, shipment
                    )
                    continue
                result.written.append(shipment.shipment_id)
                connection.execute("DELETE FROM shipment_lines WHERE shipment_id = %s", [shipment.shipment_id])
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO shipment_lines (shipment_id, line_no, sku, quantity) VALUES (%s, %s, %s, %s)",
                        [
                            (shipment.shipment_id, number, line.sku, line.quantity)
                            for number, line in enumerate(shipment.lines, start=1)
                        ],
                    )
        return result

    def upsert_customers(self, contacts: Sequence[Contact]) -> UpsertResult:
        result = UpsertResult()
        connection = self._connection()
        with connection.transaction():
            _origin(connection, self.origin)
            for contact in contacts:
                row = connection.execute(UPSERT_CUSTOMER_SQL, self._customer_row(contact)).fetchone()
                if row is None:
                    result.skipped[contact.contact_id] = _why_skipped(
                        connection, "customers", "customer_id", contact.contact_id, contact
                    )
                else:
                    result.written.append(contact.contact_id)
        return result

    @staticmethod
    def _order_row(order: Order) -> list[Any]:
        return [
            order.order_id,
            order.number,
            order.status.value,
            order.financial_status,
            order.currency,
            order.customer_id,
            order.email,
            _json(order.shipping_address),
            order.total,
            order.placed_at,
            order.source_version,
            order.updated_at,
            content_hash(order),
        ]

    @staticmethod
    def _shipment_row(shipment: Shipment) -> list[Any]:
        return [
            shipment.shipment_id,
            shipment.order_id,
            shipment.status,
            shipment.carrier,
            shipment.tracking_number,
            shipment.location,
            shipment.shipped_at,
            shipment.source_version,
            shipment.updated_at,
            content_hash(shipment),
        ]

    @staticmethod
    def _customer_row(contact: Contact) -> list[Any]:
        fields = [getattr(contact, name) for name in CUSTOMER_FIELDS]
        fields[CUSTOMER_FIELDS.index("address")] = _json(contact.address)
        return [contact.contact_id, *fields, contact.source_version, contact.updated_at, content_hash(contact)]

    # --- reads --------------------------------------------------------------------------------------

    def get_order(self, order_id: str) -> Order | None:
        page = self._orders("WHERE o.order_id = %s", [order_id])
        return page[0] if page else None

    def get_shipment(self, shipment_id: str) -> Shipment | None:
        page = self._shipments("WHERE s.shipment_id = %s", [shipment_id])
        return page[0] if page else None

    def get_customer(self, customer_id: str) -> Contact | None:
        page = self._customers("WHERE customer_id = %s", [customer_id])
        return page[0] if page else None

    def page_orders(self, after: str | None = None, limit: int = 100) -> Page[Order]:
        """Orders by ``order_id`` after ``after`` (keyset: each page is one index range scan)."""
        items = self._orders(*_keyset("o.order_id", after, limit))
        return Page(items, items[-1].order_id if len(items) == limit else None)

    def page_shipments(self, after: str | None = None, limit: int = 100) -> Page[Shipment]:
        items = self._shipments(*_keyset("s.shipment_id", after, limit))
        return Page(items, items[-1].shipment_id if len(items) == limit else None)

    def page_customers(self, after: str | None = None, limit: int = 100) -> Page[Contact]:
        items = self._customers(*_keyset("customer_id", after, limit))
        return Page(items, items[-1].contact_id if len(items) == limit else None)

    def _orders(self, where: str, params: list[Any]) -> list[Order]:
        rows = (
            self._connection()
            .execute(
                "SELECT o.order_id, o.number, o.status, o.financial_status, o.currency, o.customer_id, o.email, "
                "o.shipping_address, o.total, o.placed_at, o.source_version, o.updated_at, "
                "(SELECT coalesce(jsonb_agg(jsonb_build_object('line_id', l.line_id, 'sku', l.sku, "
                "'quantity', l.quantity, 'unit_price', l.unit_price, 'discount', l.discount, 'tax', l.tax) "
                "ORDER BY l.line_id), '[]') FROM order_lines l WHERE l.order_id = o.order_id) "
                f"FROM orders o {where}",
                params,
            )
            .fetchall()
        )
        return [
            Order.model_validate(
                {
                    **dict(zip(ORDER_COLUMNS[:12], row[:12], strict=True)),
                    "currency": row[4].strip(),
                    "lines": [{k: str(v) if k in _DECIMALS else v for k, v in line.items()} for line in row[12]],
                }
            )
            for row in rows
        ]

    def _shipments(self, where: str, params: list[Any]) -> list[Shipment]:
        rows = (
            self._connection()
            .execute(
                f"SELECT {', '.join('s.' + c for c in SHIPMENT_COLUMNS[:9])}, "
                "(SELECT coalesce(jsonb_agg(jsonb_build_object('sku', l.sku, 'quantity', l.quantity) "
                "ORDER BY l.line_no), '[]') FROM shipment_lines l WHERE l.shipment_id = s.shipment_id) "
                f"FROM shipments s {where}",
                params,
            )
            .fetchall()
        )
        return [
            Shipment.model_validate(
                {
                    **dict(zip(SHIPMENT_COLUMNS[:9], row[:9], strict=True)),
                    "lines": [{"sku": line["sku"], "quantity": str(line["quantity"])} for line in row[9]],
                }
            )
            for row in rows
        ]

    def _customers(self, where: str, params: list[Any]) -> list[Contact]:
        columns = CUSTOMER_COLUMNS[:-1]
        rows = self._connection().execute(f"SELECT {', '.join(columns)} FROM customers {where}", params).fetchall()
        return [
            Contact.model_validate({"contact_id": row[0], **dict(zip(columns[1:], row[1:], strict=True))})
            for row in rows
        ]


_DECIMALS = frozenset({"quantity", "unit_price", "discount", "tax"})


def _keyset(column: str, after: str | None, limit: int) -> tuple[str, list[Any]]:
    if after is None:
        return f"ORDER BY {column} LIMIT %s", [limit]
    return f"WHERE {column} > %s ORDER BY {column} LIMIT %s", [after, limit]


def iter_pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[list[T]]:
    """Every page of a keyset read, e.g. ``iter_pages(lambda after: oms.page_orders(after, 500))``."""
    after: str | None = None
    while True:
        page = fetch(after)
        if page.items:
            yield page.items
        if page.next_after is None:
            return
        after = page.next_after


# --- the outbox: the OMS as a change source --------------------------------------------------------------


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    notice: ChangeNotice
    origin: str | None

    @property
    def is_echo(self) -> bool:
        """Written by Syncline itself: publishing it would send our own write back round the loop."""
        return self.origin == SYNCLINE_ORIGIN


@dataclass(frozen=True)
class RejectedRow:
    """An outbox row no notice can carry (an empty key, a key over 512 characters): set aside, not published."""

    id: int
    entity: str
    key: str
    reason: str


@dataclass(frozen=True)
class Claim:
    """Outbox rows claimed by one reader (``token``) until its lease ends."""

    token: str
    entries: list[OutboxEntry]
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def notices(self) -> list[ChangeNotice]:
        return [entry.notice for entry in self.entries if not entry.is_echo]


@dataclass(frozen=True)
class DrainResult:
    published: int = 0
    echoes: int = 0
    batches: int = 0
    rejected: int = 0


class OmsOutbox:
    """Reads the outbox in batches. Safe with any number of concurrent readers on their own connections."""

    def __init__(self, connection: Callable[[], Connection], *, source_system: str = "oms") -> None:
        self._connection = connection
        self.source_system = source_system

    def claim(self, limit: int = 100, *, lease_seconds: float = 60.0) -> Claim:
        """Claim up to ``limit`` unclaimed (or lease-expired) rows, oldest first.

        ``SKIP LOCKED`` lets concurrent readers pass each other's rows; the lease makes a claim survive the
        claiming transaction, so publishing happens outside any open transaction.
        """
        token = secrets.token_hex(8)
        rows = (
            self._connection()
            .execute(
                "UPDATE outbox SET claimed_by = %s, claimed_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE id = ANY(ARRAY(SELECT id FROM outbox "
                "WHERE claimed_until IS NULL OR claimed_until < clock_timestamp() "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)) "
                "RETURNING id, operation, entity, key, version, origin, created_at",
                [token, lease_seconds, limit],
            )
            .fetchall()
        )
        entries: list[OutboxEntry] = []
        rejected: list[RejectedRow] = []
        for row in sorted(rows):
            try:
                entries.append(self._entry(*row))
            except ValidationError as exc:
                rejected.append(RejectedRow(row[0], str(row[2]), str(row[3])[:600], exc.errors()[0]["msg"]))
        return Claim(token, entries, rejected)

    def _entry(
        self,
        id_: int,
        operation: Literal["upsert", "delete"],
        entity: str,
        key: str,
        version: int | None,
        origin: str | None,
        created_at: datetime,
    ) -> OutboxEntry:
        notice = ChangeNotice(
            source_system=self.source_system,
            entity=entity,
            key=key,
            operation=operation,
            observed_at=created_at,
            source_version=version,
            delivery_id=f"{self.source_system}:outbox:{id_}",
        )
        return OutboxEntry(id_, notice, origin)

    def acknowledge(self, claim: Claim) -> int:
        """Delete the claimed rows after publishing; a row whose lease passed to another reader stays theirs."""
        if not claim.entries and not claim.rejected:
            return 0
        ids = [e.id for e in claim.entries] + [r.id for r in claim.rejected]
        deleted = self._connection().execute(
            "DELETE FROM outbox WHERE id = ANY(%s) AND claimed_by = %s", [ids, claim.token]
        )
        return deleted.rowcount

    def release(self, claim: Claim) -> None:
        """Give the rows back at once (publishing failed): the next reader claims them."""
        if claim.entries:
            self._connection().execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ANY(%s) AND claimed_by = %s",
                [[e.id for e in claim.entries], claim.token],
            )

    def drain(
        self,
        publish: Callable[[list[ChangeNotice]], None],
        *,
        batch_size: int = 100,
        max_batches: int | None = None,
        lease_seconds: float = 60.0,
        reject: Callable[[list[RejectedRow]], None] | None = None,
    ) -> DrainResult:
        """Claim, publish (echoes dropped), acknowledge, until the outbox is empty or ``max_batches``.

        If ``publish`` raises, the batch is released and the error propagates: nothing is lost.
        """
        published = echoes = batches = rejected = 0
        while max_batches is None or batches < max_batches:
            claim = self.claim(batch_size, lease_seconds=lease_seconds)
            if not claim.entries and not claim.rejected:
                break
            batches += 1
            try:
                if claim.notices:
                    publish(claim.notices)
                if claim.rejected and reject is not None:  # e.g. to the DLQ, so nothing is dropped unseen
                    reject(claim.rejected)
            except BaseException:
                self.release(claim)
                raise
            self.acknowledge(claim)
            published += len(claim.notices)
            echoes += len(claim.entries) - len(claim.notices)
            rejected += len(claim.rejected)
        return DrainResult(published, echoes, batches, rejected)

    def pending(self) -> int:
        row = self._connection().execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0


class OutboxListener:
    """``LISTEN syncline_outbox`` on a dedicated connection: a wake-up hint, never a substitute for reading
    the outbox (notifications are lost while nobody listens)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """Block until a change is notified (True) or ``timeout`` seconds pass (False)."""
        return any(True for _ in self._connection.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        self._connection.execute(f"UNLISTEN {NOTIFY_CHANNEL}")


# --- customers as a two-way RecordSystem -----------------------------------------------------------------


class OmsCustomers:
    """OMS customers as a ``syncline.twoway.RecordSystem`` (HubSpot contacts <-> OMS customers).

    A copy's values are ``CUSTOMER_FIELDS``; its version is the row version every write bumps (a trigger,
    so an application's edit bumps it too) and its time the row's last change.
    """

    def __init__(self, name: str, connection: Callable[[], Connection]) -> None:
        self.name, self._connection = name, connection

    def read(self, key: str) -> Copy | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {', '.join(CUSTOMER_FIELDS)}, changed_at, version FROM customers WHERE customer_id = %s", [key]
            )
            .fetchone()
        )
        return _copy(row) if row else None

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        unknown = set(values) - set(CUSTOMER_FIELDS)
        if unknown:
            raise ValueError(f"{self.name}: not customer fields: {', '.join(sorted(unknown))}")
        # Validated as a Contact so the table never holds what the canonical model would refuse, but stored
        # verbatim: a copy read back equals what was agreed, so the two-way engine does not write it again.
        Contact.model_validate({"contact_id": key, "updated_at": "1970-01-01T00:00:00Z", **values})
        names = [name for name in CUSTOMER_FIELDS if name != "address"]
        fields = [values.get(name) for name in names]
        row_values = [Jsonb(values["address"]) if values.get("address") is not None else None]
        returning = f"RETURNING {', '.join(CUSTOMER_FIELDS)}, changed_at, version"
        connection = self._connection()
        with connection.transaction():
            _origin(connection, SYNCLINE_ORIGIN)
            if expected_version is None:
                row = connection.execute(
                    f"INSERT INTO customers (customer_id, {', '.join(names)}, address, updated_at) "
                    f"VALUES (%s, {', '.join(['%s'] * len(names))}, %s, clock_timestamp()) "
                    f"ON CONFLICT (customer_id) DO NOTHING {returning}",
                    [key, *fields, *row_values],
                ).fetchone()
            else:
                assignments = ", ".join(f"{name} = %s" for name in names)
                row = connection.execute(
                    f"UPDATE customers SET {assignments}, address = %s, updated_at = clock_timestamp(), "
                    f"source_version = NULL, content_hash = NULL WHERE customer_id = %s AND version = %s {returning}",
                    [*fields, *row_values, key, expected_version],
                ).fetchone()
        if row is None:
            raise StaleWrite(f"{self.name}: customer {key} changed since it was read")
        return _copy(row)


def _copy(row: Sequence[Any]) -> Copy:
    values = dict(zip(CUSTOMER_FIELDS, row[: len(CUSTOMER_FIELDS)], strict=True))
    return Copy(values, row[-2], row[-1])


class AmbiguousCustomer(LookupError):
    """Two or more OMS customers share an e-mail: the pair cannot tell which one a contact is."""

    retryable = False


_SYNCED_COLUMNS = [name for name in SYNCED_FIELDS if name != "address"]
_EMAIL_MATCH = "lower(btrim(email)) = %s"


class OmsCustomersByEmail:
    """OMS customers as a ``syncline.twoway.RecordSystem`` keyed by e-mail (lower-cased): the view a pair with a
    CRM's contacts uses (``syncline.contacts``).

    Only the synced fields are read and written; the others (``account_id``, ``marketing_opt_in``, an address's
    ``line2`` and ``country``) stay the OMS's own. A write is compare-and-swap on the row version (bumped by a
    trigger on every write, an application's too) and marked as Syncline's (``origin``), so its outbox row is an
    echo. A customer Syncline creates gets a ``customer_id`` derived from its e-mail.
    """

    def __init__(self, name: str, connection: Callable[[], Connection]) -> None:
        self.name, self._connection = name, connection

    def read(self, key: str) -> Copy | None:
        rows = (
            self._connection()
            .execute(
                f"SELECT {', '.join(SYNCED_FIELDS)}, changed_at, version, customer_id FROM customers "
                f"WHERE {_EMAIL_MATCH} ORDER BY customer_id LIMIT 2",
                [key],
            )
            .fetchall()
        )
        if len(rows) > 1:
            raise AmbiguousCustomer(f"{self.name}: customers {rows[0][-1]} and {rows[1][-1]} share the e-mail {key}")
        return self._copy(rows[0]) if rows else None

    def iter_copies(self, page_size: int = 500) -> Iterator[list[tuple[str, Copy]]]:
        """Every customer with an e-mail, keyed by it, in ``customer_id`` keyset pages (reconcile's full compare)."""
        after: str | None = None
        while True:
            rows = (
                self._connection()
                .execute(
                    f"SELECT {', '.join(SYNCED_FIELDS)}, changed_at, version, customer_id FROM customers "
                    f"WHERE btrim(coalesce(email, '')) <> '' {'' if after is None else 'AND customer_id > %s '}"
                    "ORDER BY customer_id LIMIT %s",
                    [*([] if after is None else [after]), page_size],
                )
                .fetchall()
            )
            page = [(key, self._copy(row)) for row in rows if (key := contact_key(row[SYNCED_FIELDS.index("email")]))]
            if page:
                yield page
            if len(rows) < page_size:
                return
            after = rows[-1][-1]

    def key_of(self, customer_id: str) -> str | None:
        """The pair's key (e-mail) of a customer an outbox notice names; None if gone or without one."""
        row = self._connection().execute("SELECT email FROM customers WHERE customer_id = %s", [customer_id]).fetchone()
        return contact_key(row[0]) if row else None

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        wanted = contact_values({**values, "email": key})
        fields = [wanted[name] for name in _SYNCED_COLUMNS]
        address = Jsonb(wanted["address"] or {})
        returning = f"RETURNING {', '.join(SYNCED_FIELDS)}, changed_at, version, customer_id"
        connection = self._connection()
        with connection.transaction():
            _origin(connection, SYNCLINE_ORIGIN)
            if expected_version is None:
                customer_id = "email-" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
                row = connection.execute(
                    f"INSERT INTO customers (customer_id, {', '.join(_SYNCED_COLUMNS)}, address, updated_at) "
                    f"SELECT %s, {', '.join(['%s'] * len(_SYNCED_COLUMNS))}, NULLIF(%s::jsonb, '{{}}'), "
                    f"clock_timestamp() WHERE NOT EXISTS (SELECT 1 FROM customers WHERE {_EMAIL_MATCH}) "
                    f"ON CONFLICT (customer_id) DO NOTHING {returning}",
                    [customer_id, *fields, address, key],
                ).fetchone()
            else:
                assignments = ", ".join(f"{name} = %s" for name in _SYNCED_COLUMNS)
                # The address's parts the pair does not carry are the OMS's own: kept.
                row = connection.execute(
                    f"UPDATE customers SET {assignments}, address = NULLIF((COALESCE(address, '{{}}'::jsonb) "
                    f"- %s::text[]) || %s::jsonb, '{{}}'), updated_at = clock_timestamp(), source_version = NULL, "
                    f"content_hash = NULL WHERE {_EMAIL_MATCH} AND version = %s {returning}",
                    [*fields, list(ADDRESS_PARTS), address, key, expected_version],
                ).fetchone()
        if row is None:
            raise StaleWrite(f"{self.name}: customer {key} changed since it was read")
        return self._copy(row)

    @staticmethod
    def _copy(row: Sequence[Any]) -> Copy:
        values = contact_values(dict(zip(SYNCED_FIELDS, row[: len(SYNCED_FIELDS)], strict=True)))
        return Copy(values, row[-3], row[-2])
