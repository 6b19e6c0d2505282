"""The PostgreSQL OMS connector against a real PostgreSQL: guarded upserts, reads, the trigger-filled outbox
with concurrent readers, echo marking, LISTEN/NOTIFY wake-ups and customers as a two-way record system."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from syncline.canonical.entities import Address, Contact, Order, OrderLine, OrderStatus, Shipment, ShipmentLine
from syncline.connectors.oms_pg import (
    OmsCustomers,
    OmsCustomersByEmail,
    OmsDatabase,
    OmsOutbox,
    OutboxListener,
    UpsertResult,
    ensure_schema,
    iter_pages,
)
from syncline.twoway import StaleWrite

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DATABASE = "oms_test"


@pytest.fixture
def connect(services: tuple[Any, Any]) -> Iterator[Callable[[], psycopg.Connection[Any]]]:
    """Opens connections to a fresh OMS database (each thread of a test takes its own). Only the session's
    PostgreSQL is needed, not a whole local stack."""
    postgres = services[1]
    postgres.recreate_database(DATABASE)
    opened: list[psycopg.Connection[Any]] = []

    def open_connection() -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] = postgres.connect(DATABASE)
        opened.append(connection)
        return connection

    ensure_schema(open_connection())
    yield open_connection
    for connection in opened:
        connection.close()


@pytest.fixture
def oms(connect: Callable[[], psycopg.Connection[Any]]) -> OmsDatabase:
    connection = connect()
    return OmsDatabase(lambda: connection)


@pytest.fixture
def app(connect: Callable[[], psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
    """A connection writing as the OMS application itself would (no Syncline origin)."""
    return connect()


@pytest.fixture
def outbox(connect: Callable[[], psycopg.Connection[Any]]) -> OmsOutbox:
    connection = connect()
    return OmsOutbox(lambda: connection)


def order(
    order_id: str = "O-1",
    *,
    version: int | None = 1,
    minutes: int = 0,
    status: OrderStatus = OrderStatus.PENDING,
    quantities: tuple[int, ...] = (2,),
) -> Order:
    return Order(
        order_id=order_id,
        number=f"#{order_id}",
        status=status,
        currency="EUR",
        email="ada@example.com",
        shipping_address=Address(city="Lyon", country="FR"),
        lines=[
            OrderLine(line_id=f"L{i}", sku=f"SKU-{i}", quantity=Decimal(q), unit_price=Decimal("9.90"))
            for i, q in enumerate(quantities, start=1)
        ],
        total=Decimal("9.90") * sum(quantities),
        placed_at=T0,
        source_version=version,
        updated_at=T0 + timedelta(minutes=minutes),
    )


def contact(
    contact_id: str = "C-1", *, email: str = "ada@example.com", version: int | None = 1, minutes: int = 0
) -> Contact:
    return Contact(
        contact_id=contact_id,
        email=email,
        first_name="Ada",
        address=Address(city="Lyon"),
        source_version=version,
        updated_at=T0 + timedelta(minutes=minutes),
    )


def shipment(shipment_id: str = "S-1", *, tracking: str | None = None, version: int = 1) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        order_id="O-1",
        carrier="UPS",
        tracking_number=tracking,
        lines=[ShipmentLine(sku="SKU-1", quantity=Decimal(2)), ShipmentLine(sku="SKU-2", quantity=Decimal(1))],
        source_version=version,
        updated_at=T0 + timedelta(minutes=version),
    )


def test_schema_is_idempotent_and_safe_to_run_concurrently(connect: Callable[[], psycopg.Connection[Any]]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ensure_schema(connect())
        except BaseException as exc:  # collected: the test asserts none happened
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    tables = {row[0] for row in connect().execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"orders", "order_lines", "shipments", "shipment_lines", "customers", "outbox"} <= tables


def test_an_order_round_trips_with_its_lines(oms: OmsDatabase) -> None:
    written = order(quantities=(2, 3))
    assert oms.upsert_orders([written]).written == ["O-1"]
    assert oms.get_order("O-1") == written
    assert oms.get_order("missing") is None


def test_an_older_version_never_replaces_a_newer_order(oms: OmsDatabase) -> None:
    oms.upsert_orders([order(version=5, quantities=(7,))])
    result = oms.upsert_orders([order(version=4, minutes=30, quantities=(1,))])  # older version, later clock
    assert (result.written, result.skipped) == ([], {"O-1": "stale"})
    stored = oms.get_order("O-1")
    assert stored is not None
    assert (stored.source_version, stored.lines[0].quantity) == (5, Decimal(7))


def test_without_versions_the_later_update_wins_and_a_redelivery_is_unchanged(oms: OmsDatabase) -> None:
    newer, older = order(version=None, minutes=10, quantities=(4,)), order(version=None, minutes=5, quantities=(9,))
    assert oms.upsert_orders([newer, older]).skipped == {"O-1": "stale"}
    again = oms.upsert_orders([newer])
    assert (again.written, again.skipped) == ([], {"O-1": "unchanged"})
    assert oms.get_order("O-1") == newer


def test_order_status_never_moves_backwards_but_newer_fields_are_written(oms: OmsDatabase) -> None:
    oms.upsert_orders([order(version=1, status=OrderStatus.FULFILLED)])
    late = order(version=2, minutes=1, status=OrderStatus.CONFIRMED, quantities=(5,))
    result = oms.upsert_orders([late])
    assert result.written == ["O-1"]
    assert result.held_status == {"O-1": OrderStatus.FULFILLED}
    stored = oms.get_order("O-1")
    assert stored is not None
    assert (stored.status, stored.source_version, stored.lines[0].quantity) == (OrderStatus.FULFILLED, 2, Decimal(5))


def test_terminal_statuses_hold_and_forward_moves_apply(oms: OmsDatabase) -> None:
    oms.upsert_orders([order(version=1, status=OrderStatus.CONFIRMED)])
    assert oms.upsert_orders([order(version=2, status=OrderStatus.PARTIALLY_FULFILLED)]).held_status == {}
    oms.upsert_orders([order(version=3, status=OrderStatus.CANCELLED)])
    held = oms.upsert_orders([order(version=4, status=OrderStatus.FULFILLED)])  # same rank: cancelled is terminal
    assert held.held_status == {"O-1": OrderStatus.CANCELLED}


def test_an_upsert_says_which_orders_are_new_and_the_status_each_update_replaced(oms: OmsDatabase) -> None:
    first = oms.upsert_orders([order(version=1, status=OrderStatus.CONFIRMED)])
    assert (first.inserted, first.previous_status) == (["O-1"], {})

    moved = oms.upsert_orders([order(version=2, minutes=1, status=OrderStatus.FULFILLED), order("O-2")])
    assert moved.inserted == ["O-2"]
    assert moved.previous_status == {"O-1": OrderStatus.CONFIRMED}

    # A redelivery writes nothing and reports nothing; a late, older status is held and says so.
    again = oms.upsert_orders([order(version=2, minutes=1, status=OrderStatus.FULFILLED)])
    assert (again.written, again.inserted, again.previous_status) == ([], [], {})
    late = oms.upsert_orders([order(version=3, minutes=2, status=OrderStatus.CONFIRMED)])
    assert late.previous_status == {"O-1": OrderStatus.FULFILLED}
    assert late.held_status == {"O-1": OrderStatus.FULFILLED}


def test_what_before_commit_raises_rolls_the_writes_back(oms: OmsDatabase) -> None:
    seen = []

    def refuse(result: UpsertResult) -> None:
        seen.append(list(result.inserted))
        raise RuntimeError("the bus is down")

    with pytest.raises(RuntimeError, match="bus is down"):
        oms.upsert_orders([order()], before_commit=refuse)
    assert seen == [["O-1"]]
    assert oms.get_order("O-1") is None
    assert oms.upsert_orders([order()]).inserted == ["O-1"]  # the retry still sees a new order


def _upsert_in_thread(oms: OmsDatabase, incoming: Order) -> tuple[threading.Thread, list[UpsertResult]]:
    results: list[UpsertResult] = []
    thread = threading.Thread(target=lambda: results.append(oms.upsert_orders([incoming])))
    thread.start()
    return thread, results


def _wait_until_blocked(app: psycopg.Connection[Any], thread: threading.Thread) -> None:
    """Until another backend waits on a lock (our upsert, behind the open transaction), or the thread ended."""
    for _ in range(500):
        waiting = app.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
        if (waiting and waiting[0]) or not thread.is_alive():
            return
        threading.Event().wait(0.01)


def test_the_previous_status_is_the_one_a_concurrent_writer_committed_not_a_stale_snapshot(
    oms: OmsDatabase, connect: Callable[[], psycopg.Connection[Any]]
) -> None:
    oms.upsert_orders([order(version=1, status=OrderStatus.CONFIRMED)])
    other_connection, watcher = connect(), connect()
    other = OmsDatabase(lambda: other_connection)
    # Another writer holds the row, moving it to partially fulfilled, while our upsert to fulfilled starts.
    with other_connection.transaction():
        other_connection.execute(
            "UPDATE orders SET status = 'partially_fulfilled', source_version = 2, updated_at = updated_at "
            "+ interval '1 minute' WHERE order_id = 'O-1'"
        )
        thread, results = _upsert_in_thread(oms, order(version=3, minutes=2, status=OrderStatus.FULFILLED))
        _wait_until_blocked(watcher, thread)
    thread.join(10)
    assert results[0].previous_status == {"O-1": OrderStatus.PARTIALLY_FULFILLED}
    assert other.get_order("O-1").status == OrderStatus.FULFILLED  # type: ignore[union-attr]


def test_an_order_inserted_by_another_writer_meanwhile_is_an_update_from_its_status(
    oms: OmsDatabase, connect: Callable[[], psycopg.Connection[Any]]
) -> None:
    other_connection, watcher = connect(), connect()
    other = OmsDatabase(lambda: other_connection)
    with other_connection.transaction():  # the other writer's insert is not committed when ours starts
        other_connection.execute(
            "INSERT INTO orders (order_id, status, financial_status, currency, total, placed_at, source_version, "
            "updated_at) VALUES ('O-1', 'confirmed', 'paid', 'EUR', 0, %s, 1, %s)",
            [T0, T0],
        )
        thread, results = _upsert_in_thread(oms, order(version=2, minutes=1, status=OrderStatus.FULFILLED))
        _wait_until_blocked(watcher, thread)
    thread.join(10)
    assert (results[0].inserted, results[0].previous_status) == ([], {"O-1": OrderStatus.CONFIRMED})
    assert other.get_order("O-1").status == OrderStatus.FULFILLED  # type: ignore[union-attr]


def test_shipments_and_customers_are_guarded_and_read_back(oms: OmsDatabase) -> None:
    tracked = shipment(tracking="1Z999", version=2)
    assert oms.upsert_shipments([tracked]).written == ["S-1"]
    assert oms.upsert_shipments([shipment(version=1)]).skipped == {"S-1": "stale"}
    assert oms.get_shipment("S-1") == tracked

    newer = contact(email="new@example.com", version=3)
    oms.upsert_customers([newer])
    assert oms.upsert_customers([contact(email="old@example.com", version=2, minutes=9)]).skipped == {"C-1": "stale"}
    assert oms.get_customer("C-1") == newer


def test_keyset_pages_visit_every_order_once(oms: OmsDatabase) -> None:
    ids = [f"O-{n:03d}" for n in range(23)]
    oms.upsert_orders([order(order_id) for order_id in ids])
    pages = list(iter_pages(lambda after: oms.page_orders(after, limit=5)))
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [o.order_id for page in pages for o in page] == ids
    assert [c.contact_id for c in oms.page_customers().items] == []


def _orders_in_outbox(app: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in app.execute("SELECT operation, entity, key, version, origin FROM outbox ORDER BY id")]


def test_triggers_fill_the_outbox_once_per_record_and_transaction(
    oms: OmsDatabase, app: psycopg.Connection[Any], outbox: OmsOutbox
) -> None:
    oms.upsert_orders([order(quantities=(1, 2, 3))])  # one header and three lines, one transaction
    assert _orders_in_outbox(app) == [("upsert", "order", "O-1", 1, "syncline")]
    outbox.drain(lambda notices: None)

    app.execute("UPDATE order_lines SET quantity = 5 WHERE order_id = 'O-1' AND line_id = 'L1'")  # lines only
    app.execute("UPDATE customers SET email = 'x@example.com'")  # touches nothing: no row
    app.execute("INSERT INTO customers (customer_id, email, updated_at) VALUES ('C-9', 'c@example.com', now())")
    app.execute("DELETE FROM orders WHERE order_id = 'O-1'")  # its lines go with it
    assert _orders_in_outbox(app) == [
        ("upsert", "order", "O-1", 1, None),
        ("upsert", "customer", "C-9", 1, None),
        ("delete", "order", "O-1", 1, None),
    ]


def test_outbox_notices_carry_what_the_worker_needs_and_echoes_are_dropped(
    oms: OmsDatabase, app: psycopg.Connection[Any], outbox: OmsOutbox
) -> None:
    oms.upsert_customers([contact("C-1")])  # Syncline's own write: an echo
    app.execute("UPDATE customers SET phone = '+33 1' WHERE customer_id = 'C-1'")  # a user's edit
    claim = outbox.claim(10)
    assert [(e.is_echo, e.notice.key, e.notice.source_version) for e in claim.entries] == [
        (True, "C-1", 1),
        (False, "C-1", 2),
    ]
    notice = claim.notices[0]
    assert (notice.source_system, notice.entity, notice.operation) == ("oms", "customer", "upsert")
    assert notice.delivery_id == f"oms:outbox:{claim.entries[1].id}"

    outbox.release(claim)
    published: list[Any] = []
    result = outbox.drain(published.extend)
    assert (result.published, result.echoes, outbox.pending()) == (1, 1, 0)
    assert [n.source_version for n in published] == [2]


def test_a_failed_publish_leaves_the_rows_for_the_next_reader(oms: OmsDatabase, outbox: OmsOutbox) -> None:
    OmsDatabase(oms._connection, origin=None).upsert_customers([contact("C-1"), contact("C-2")])

    def broken(notices: list[Any]) -> None:
        raise ConnectionError("bus down")

    with pytest.raises(ConnectionError):
        outbox.drain(broken)
    published: list[Any] = []
    assert outbox.drain(published.extend).published == 2
    assert sorted(n.key for n in published) == ["C-1", "C-2"]


def test_an_expired_claim_is_taken_over_and_the_old_reader_cannot_acknowledge_it(
    connect: Callable[[], psycopg.Connection[Any]], app: psycopg.Connection[Any]
) -> None:
    app.execute("INSERT INTO customers (customer_id, updated_at) VALUES ('C-1', now())")
    first = connect()
    second = connect()
    dead, alive = OmsOutbox(lambda: first), OmsOutbox(lambda: second)
    stale_claim = dead.claim(10, lease_seconds=0)  # the reader died; its lease is already over
    assert len(stale_claim.entries) == 1
    fresh = alive.claim(10)
    assert [e.id for e in fresh.entries] == [e.id for e in stale_claim.entries]
    assert dead.acknowledge(stale_claim) == 0
    assert alive.acknowledge(fresh) == 1


def test_concurrent_readers_never_claim_the_same_row(
    connect: Callable[[], psycopg.Connection[Any]], app: psycopg.Connection[Any]
) -> None:
    for n in range(300):  # one transaction each: 300 outbox rows
        app.execute("INSERT INTO customers (customer_id, updated_at) VALUES (%s, now())", [f"C-{n:03d}"])
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def reader(name: str) -> None:
        connection = connect()
        reader_outbox = OmsOutbox(lambda: connection)
        start.wait()
        while True:
            claim = reader_outbox.claim(7)
            if not claim.entries:
                return
            claimed[name].extend(e.id for e in claim.entries)
            connection.execute("SELECT pg_sleep(0.001)")  # publishing takes a moment: claims interleave
            reader_outbox.acknowledge(claim)

    threads = [threading.Thread(target=reader, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = claimed["a"], claimed["b"]
    assert set(a).isdisjoint(b)
    assert len(a) + len(b) == 300
    assert len(set(a) | set(b)) == 300
    assert a and b  # both readers did work: the test exercised concurrency
    assert app.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_listen_notify_wakes_a_reader_and_the_outbox_holds_the_change(
    connect: Callable[[], psycopg.Connection[Any]], app: psycopg.Connection[Any], outbox: OmsOutbox
) -> None:
    listener = OutboxListener(connect())
    assert listener.wait(timeout=0.05) is False  # nothing happened yet
    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(listener.wait(timeout=30)))
    waiting.start()
    app.execute("INSERT INTO customers (customer_id, updated_at) VALUES ('C-1', now())")
    waiting.join()
    assert woke == [True]
    assert [n.key for n in outbox.claim(10).notices] == ["C-1"]


def test_customers_as_a_record_system_with_compare_and_swap(oms: OmsDatabase, app: psycopg.Connection[Any]) -> None:
    customers = OmsCustomers("oms", oms._connection)
    assert customers.read("C-1") is None
    created = customers.write("C-1", {"email": "ada@example.com", "address": {"city": "Lyon"}}, expected_version=None)
    assert created.version == 1
    assert created.values["email"] == "ada@example.com"
    assert created.values["address"] == {"city": "Lyon"}
    with pytest.raises(StaleWrite):
        customers.write("C-1", {"email": "again@example.com"}, expected_version=None)  # exists already

    app.execute("UPDATE customers SET first_name = 'Ada' WHERE customer_id = 'C-1'")  # a user's edit: version 2
    with pytest.raises(StaleWrite):
        customers.write("C-1", {"email": "lost@example.com"}, expected_version=1)
    current = customers.read("C-1")
    assert current is not None
    assert (current.version, current.values["first_name"], current.values["email"]) == (2, "Ada", "ada@example.com")
    updated = customers.write("C-1", {**current.values, "phone": "+33 1"}, expected_version=2)
    assert (updated.version, updated.values["phone"], updated.values["first_name"]) == (3, "+33 1", "Ada")
    assert customers.read("C-1") == updated
    with pytest.raises(ValueError, match="not customer fields: shoe_size"):
        customers.write("C-1", {"shoe_size": 42}, expected_version=3)
    origins = [row[0] for row in app.execute("SELECT origin FROM outbox ORDER BY id")]
    assert origins == ["syncline", None, "syncline"]


def test_customers_by_email_are_listed_in_keyset_pages_once_each(
    app: psycopg.Connection[Any], connect: Callable[[], psycopg.Connection[Any]]
) -> None:
    # Given seven customers, one without an e-mail (no key to compare on) and one with spaces and capitals
    for n in range(6):
        app.execute(
            "INSERT INTO customers (customer_id, email, first_name, updated_at) VALUES (%s, %s, %s, now())",
            [f"C-{n}", f"c{n}@example.com" if n != 3 else " C3@Example.com ", f"N{n}"],
        )
    app.execute("INSERT INTO customers (customer_id, first_name, updated_at) VALUES ('C-9', 'No mail', now())")
    connection = connect()
    view = OmsCustomersByEmail("oms", lambda: connection)

    # When listed two at a time (reconcile's full compare)
    pages = list(view.iter_copies(page_size=2))

    # Then every customer with an e-mail once, keyed as reads key it, with the copy a read gives
    keys = [key for page in pages for key, _ in page]
    assert keys == [f"c{n}@example.com" for n in range(6)]
    listed = dict(copy for page in pages for copy in page)
    assert listed["c3@example.com"] == view.read("c3@example.com")
