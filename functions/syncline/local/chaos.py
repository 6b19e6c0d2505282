"""The fault-injection convergence scenario: thousands of seeded random changes on the local stack while
faults are injected, then a check of every record on every system against what the policies promise.

One run (``run_chaos``):
1. A fresh local stack with the chaos configuration (``bench/chaos.toml`` appended to ``syncline.toml``): the
   ERP, the storefront database, two Shopify sandboxes (ERP -> each store one-way, and the two stores kept in
   agreement two-way, last writer wins), store A's orders -> the OMS, ERP spare parts -> Fracttal, HubSpot
   contacts <-> OMS customers (two-way, matched by e-mail, last writer wins). An initial load is synced without
   faults.
2. Rounds of random changes (``random.Random(seed)``): ERP stock changes, merchants' edits in either store,
   orders created and moved forward in store A, contacts created and edited in HubSpot (a person in its UI)
   and customers in the OMS (its own application; the outbox drainer publishes them). Between rounds, with the
   same seeded generator: webhook deliveries duplicated, queue messages taken off, duplicated, held back for
   later rounds and sent back shuffled, sandbox 5xx / 429 (HubSpot's with its rate-limit headers) / timeouts /
   dropped connections / latency, expired Fracttal OAuth tokens,
   workers killed right after writing a target (``SystemExit``: Lambda reports a failed invocation), a record
   that kills its worker on every delivery until it is dead-lettered, the poller killed after publishing and
   before saving its checkpoint, PostgreSQL backends terminated, the moto process frozen for a moment.
   Partial drains interleave deliveries with the next round's changes.
3. The faults stop; failed webhook deliveries are delivered again (as Shopify retries them), held messages
   are released, the queues settle; every DLQ is redriven once; the queues settle again.
4. The oracle (``check``): storefront == ERP (on hand, available = on hand - committed, floored at 0, at the
   mapped locations); Fracttal stock == ERP on hand of spare parts at location 1; both stores hold the value
   of the latest edit to the record under last-writer-wins (see ``_expected_store_value``); the OMS holds
   every order with its latest status and financial status; HubSpot and the OMS both hold every contact with
   the values of its latest edit (see ``_expected_contact``).

Reproducible: the changes, the fault schedule and the sandboxes' fault draws all come from ``seed``. What
wall-clock time decides (which millisecond a write lands in, a retry's jittered backoff) can differ between
two runs of a seed, so a failing seed is replayed by running it again, usually to the same record.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from syncline.config import DEFAULT_PATH
from syncline.local.moto_server import LOCAL_REGION
from syncline.local.sage300 import Sage300Emulator, Stock

STORES = ("store_a", "store_b")
STORE_LOCATIONS = {"1": "main", "2": "east"}  # ERP location -> store location code (erp-store-* pairs)
STOREFRONT_LOCATIONS = {"1": "main", "2": "east", "3": "west"}  # the base configuration's pair
CMMS = "cmms"
WAREHOUSE = "MAIN-WH"
FULFILMENT_STEPS = ("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED")
FINANCIAL_STEPS = ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")
CANONICAL_STATUS = {"UNFULFILLED": "confirmed", "PARTIALLY_FULFILLED": "partially_fulfilled", "FULFILLED": "fulfilled"}
CRM = "crm"
CONTACTS_PAIR = "crm-customers"
# The contact fields the scenario edits: OMS column -> HubSpot property (the pair's default mapping).
CONTACT_FIELDS = {
    "first_name": "firstname",
    "last_name": "lastname",
    "phone": "phone",
    "lifecycle_stage": "lifecyclestage",
}
CONTACT_VALUES = {
    "first_name": ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Donald", "Frances", "Niklaus"),
    "last_name": ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Knuth", "Allen"),
    "lifecycle_stage": ("subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer", "evangelist"),
}


class WorkerKilled(SystemExit):
    """The process dies here (Lambda reports the invocation as failed; nothing in the handler catches it)."""


@dataclass(frozen=True)
class ChaosSettings:
    """One scenario. ``changes`` random changes in rounds of ``round_size``; ``faults=False`` runs the same
    changes without faults (a baseline)."""

    seed: int = 1
    changes: int = 2000
    faults: bool = True
    finished_goods: int = 24  # FG- items: ERP locations 1-3; in the storefront and both stores
    spare_parts: int = 12  # SP- items: ERP locations 1-2; in the storefront and (location 1) in Fracttal
    round_size: tuple[int, int] = (15, 45)
    # Shares of the changes.
    erp_share: float = 0.45
    merchant_share: float = 0.22
    order_share: float = 0.12
    contact_share: float = 0.13  # the rest: order updates
    contacts: int = 16  # contacts at the start, half created in HubSpot, half in the OMS
    # Fault rates.
    webhook_duplicate: float = 0.15  # a webhook delivered twice
    queue_duplicate: float = 0.10  # a queue message delivered twice
    queue_hold: float = 0.15  # a queue message held back for later rounds (delayed, reordered)
    sandbox_error: float = 0.03  # each sandbox request: 503 (and as often a 500)
    sandbox_429: float = 0.02  # ... a 429 without Retry-After (HubSpot: its own, with its rate-limit headers)
    sandbox_drop: float = 0.015  # ... the connection closed without a response
    sandbox_timeout: float = 0.01  # ... a response that never comes (connection closed after a wait)
    sandbox_latency: float = 0.02
    rate_limit_rounds: int = 2  # rounds with one 429 carrying the service's own Retry-After (1-2 s waits)
    kill: float = 0.03  # each target write / state commit: the worker is killed right after (or before)
    poller_kill: float = 0.15  # each poll: killed after publishing, before saving the checkpoint
    db_terminate: float = 0.12  # each round: every storefront, OMS and ERP backend terminated
    token_expiry: float = 0.15  # each round: every Fracttal token expired
    moto_freeze_seconds: float = 1.5  # once: the moto server process stopped (SIGSTOP) for this long
    poison: bool = True  # one storefront record kills its worker on every delivery until dead-lettered


@dataclass(frozen=True)
class Divergence:
    system: str
    key: str
    expected: Any
    actual: Any
    lost: bool = False  # the change is nowhere: the record is missing where it should be


@dataclass
class PairFigures:
    """One pair's share of a run (the two-way HubSpot <-> OMS customers pair): its changes, records checked on
    both systems, divergences, what its queue's DLQ still holds, its writes to either system, and the faults its
    SaaS sandbox injected (by kind; also counted in the run's ``sandbox_*`` faults)."""

    changes: int
    records_checked: int
    divergent: int
    lost: int
    left_in_dlq: int
    writes: int
    writes_by_system: dict[str, int]
    writes_per_change: float
    faults: dict[str, int] = field(default_factory=dict)


@dataclass
class ChaosReport:
    seed: int
    changes: int
    changes_by_kind: dict[str, int]
    deliveries: int
    deliveries_by_kind: dict[str, int]
    faults: dict[str, int]
    records_checked: int
    divergent: int
    lost: int
    dead_lettered: int  # messages in the DLQs before the redrive
    redriven: int
    left_in_dlq: int
    writes: int
    writes_by_system: dict[str, int]
    writes_per_change: float
    seconds_to_converge: float
    seconds_total: float
    divergent_records: list[Divergence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    by_pair: dict[str, PairFigures] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # type: ignore[no-any-return]


def chaos_config(extra: str) -> str:
    """The scenario's configuration: the base ``syncline.toml`` with ``extra`` (``bench/chaos.toml``) appended."""
    return DEFAULT_PATH.read_text() + "\n" + extra


@dataclass
class _Mutation:
    store: str
    key: str
    value: int
    updated_at: str
    origin: str  # merchant | erp | twoway | unknown


@dataclass
class _ContactEdit:
    """A person's change to a contact (or its creation): the record's synced fields right after it, and the
    time and version the system gave it, which is what last-writer-wins compares."""

    system: str
    key: str
    values: dict[str, str | None]
    changed_at: datetime
    version: int


class _Writer:
    """Who is writing to a Shopify sandbox right now. Only the driver thread causes writes (its own edits, or
    the in-process workers it invokes), so one shared value is enough for the sandbox threads to read."""

    def __init__(self) -> None:
        self.current = "unknown"

    @contextlib.contextmanager
    def as_(self, origin: str) -> Iterator[None]:
        previous, self.current = self.current, origin
        try:
            yield
        finally:
            self.current = previous


class _Killer:
    """Decides, from its own seeded generator, when a worker dies."""

    def __init__(self, seed: int, probability: float, faults: Counter[str]) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible fault draws
        self.probability = probability
        self.faults = faults
        self.enabled = False

    def maybe(self, where: str, kind: str = "worker_killed") -> None:
        if self.enabled and self.rng.random() < self.probability:
            self.faults[kind] += 1
            raise WorkerKilled(f"chaos: killed {where}")


class _ChaosRun:
    def __init__(self, stack: Any, settings: ChaosSettings, config_path: Path) -> None:
        self.stack, self.settings, self.config_path = stack, settings, config_path
        self.rng = random.Random(settings.seed)  # noqa: S311 - reproducible scenario
        self.faults: Counter[str] = Counter()
        self.changes: Counter[str] = Counter()
        self.deliveries: Counter[str] = Counter()
        self.writer = _Writer()
        self.killer = _Killer(settings.seed * 7919 + 1, settings.kill, self.faults)
        self.poller_killer = _Killer(settings.seed * 7919 + 2, settings.poller_kill, self.faults)
        self.mutations: list[_Mutation] = []
        self.mutation_lock = threading.Lock()
        self.retries: list[Callable[[], bool]] = []  # failed webhook deliveries, to send again
        self.notes: list[str] = []
        self.thaw: Callable[[], None] = lambda: None
        self.retry_lock = threading.Lock()
        self.faults_on = False
        self.held: list[tuple[str, str]] = []  # (queue id, body) held back
        self.poison_key: str | None = None
        self.fg = [f"FG-{i:03d}" for i in range(settings.finished_goods)]
        self.sp = [f"SP-{i:03d}" for i in range(settings.spare_parts)]
        self.items: dict[str, dict[str, str]] = {}  # store -> SKU -> InventoryItem GID
        self.by_item: dict[tuple[str, str, str], str] = {}  # (store, item GID, location GID) -> SKU|code
        self.orders: list[str] = []
        self.seeded: dict[str, int] = {}  # SKU|code -> the stores' starting available quantity
        self.contact_edits: list[_ContactEdit] = []
        self.contact_keys: list[str] = []
        self.crm_writes = 0  # contacts Syncline created or changed in HubSpot
        self.sqs = boto3.session.Session(region_name=LOCAL_REGION).client("sqs")
        self.erp_connection = stack._connect("sage300")
        self.oms_app = stack.oms()  # the OMS's own application: its writes are people's edits, not echoes
        self.erp = Sage300Emulator(self.erp_connection)

    # -- setup -------------------------------------------------------------------------------------------
    def setup(self) -> None:
        rng = self.rng
        self.erp.add_items([(sku, f"Finished good {sku}") for sku in self.fg])
        self.erp.add_items([(sku, f"Spare part {sku}") for sku in self.sp])
        self.erp.set_stock(
            [
                Stock(sku, loc, Decimal(rng.randint(0, 300)), committed=Decimal(rng.randint(0, 5)))
                for sku in self.fg
                for loc in "123"
            ]
            + [Stock(sku, loc, Decimal(rng.randint(0, 300))) for sku in self.sp for loc in "12"]
        )
        cmms = self.stack.sandboxes[CMMS]
        for sku in self.sp:
            cmms.add_item(WAREHOUSE, sku, stock=0, unit_cost_stock=4.5)
        # The stores start where a backfill leaves them: at the ERP's available stock, in agreement.
        stock = self.erp.stock()
        for erp_location, code in STORE_LOCATIONS.items():
            for sku in self.fg:
                on_hand, committed, _ = stock[(sku, erp_location)]
                self.seeded[f"{sku}|{code}"] = int(max(on_hand - committed, Decimal(0)))
        for index, store in enumerate(STORES):
            sandbox = self.stack.sandboxes[store]
            self.items[store] = self.stack.seed_shopify(store, self.fg, available=0)
            for sku, item in self.items[store].items():
                for code, location in self.stack.config.systems[store].locations.items():
                    gid = f"gid://shopify/Location/{location}"
                    self.by_item[(store, item, gid)] = f"{sku}|{code}"
                    sandbox.stock(item, gid, available=self.seeded[f"{sku}|{code}"])
            self._instrument_store(store, index)
        self._instrument_crm()
        for index, sandbox in enumerate(self.stack.sandboxes.values()):
            sandbox.faults.rng.seed(self.settings.seed * 1000 + index)
        for database in ("storefront", "oms"):
            _install_write_log(
                self.stack._connect(database), "inventory_levels" if database == "storefront" else "orders"
            )
        _install_write_log(self.stack._connect("oms"), "customers", log="chaos_customer_write_log")
        for _ in range(self.settings.contacts):
            self._new_contact(CRM if len(self.contact_keys) % 2 == 0 else "oms")
        self.poison_key = f"{self.sp[0]}|main" if self.settings.poison else None
        self.stack.poll_erp()
        self._converge()

    def _instrument_store(self, store: str, index: int) -> None:
        """Log every quantity change with who made it; duplicate and redeliver webhooks as Shopify does."""
        sandbox = self.stack.sandboxes[store]
        apply_quantity = sandbox._apply_quantity
        duplicates = random.Random(self.settings.seed * 31 + index)  # noqa: S311 - its own thread's draws

        def logged(item_id: str, location_id: str, level: Any, name: str, value: int) -> tuple[str, Any]:
            before = level.quantities["available"]
            hook = apply_quantity(item_id, location_id, level, name, value)
            if level.quantities["available"] != before:
                key = self.by_item.get((store, item_id, location_id), f"{item_id}|{location_id}")
                with self.mutation_lock:
                    self.mutations.append(
                        _Mutation(
                            store,
                            key,
                            level.quantities["available"],
                            level.updated_at["available"],
                            self.writer.current,
                        )
                    )
            return hook  # type: ignore[no-any-return]

        sandbox._apply_quantity = logged
        self._duplicate_webhooks(sandbox, duplicates)

    def _duplicate_webhooks(self, sandbox: Any, duplicates: random.Random) -> None:
        """Deliver some webhooks twice, and a failed delivery again later (the services retry, same event id)."""
        send = sandbox._send

        def delivered(topic: str, payload: Any, headers: Mapping[str, str] | None) -> None:
            copies = 2 if self.faults_on and duplicates.random() < self.settings.webhook_duplicate else 1
            if copies == 2:
                self.faults["webhook_duplicated"] += 1

            def attempt() -> bool:
                sent = len(sandbox.delivered)
                send(topic, payload, headers)
                return all(200 <= status < 300 for _, status in sandbox.delivered[sent:])

            for _ in range(copies):
                if not attempt():
                    self.faults["webhook_delivery_failed"] += 1
                    with self.retry_lock:
                        self.retries.append(attempt)

        sandbox._send = delivered

    def _instrument_crm(self) -> None:
        """HubSpot: a short rate window (its 429 closes the client for one interval: half a second here, not ten),
        duplicated and retried webhook batches, and Syncline's writes counted (changes made through the API)."""
        sandbox = self.stack.sandboxes[CRM]
        sandbox.window_ms = 500
        create, apply = sandbox._create, sandbox._apply

        def created(object_type: str, properties: dict[str, str], source: tuple[str, str] | None = None) -> Any:
            stored = create(object_type, properties, source)
            if source is not None and source[0] == "INTEGRATION":
                self.crm_writes += 1
            return stored

        def applied(object_type: str, stored: Any, properties: dict[str, str], source: tuple[str, str]) -> None:
            before = stored.updated_ms
            apply(object_type, stored, properties, source)
            if source[0] == "INTEGRATION" and stored.updated_ms != before:
                self.crm_writes += 1

        sandbox._create, sandbox._apply = created, applied
        self._duplicate_webhooks(sandbox, random.Random(self.settings.seed * 31 + len(STORES)))  # noqa: S311

    # -- patches: workers killed mid-batch, the poller killed before its checkpoint, who writes ----------
    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        from syncline.adapters.dynamodb import DynamoCheckpointStore, DynamoStateStore  # noqa: PLC0415
        from syncline.adapters.storefront_pg import PostgresStorefront  # noqa: PLC0415
        from syncline.connectors.fracttal import FracttalInventoryTarget  # noqa: PLC0415
        from syncline.connectors.hubspot import HubSpotContactsByEmail  # noqa: PLC0415
        from syncline.connectors.oms_pg import OmsCustomersByEmail, OmsDatabase  # noqa: PLC0415
        from syncline.connectors.shopify import ShopifyInventoryRecords, ShopifyInventoryTarget  # noqa: PLC0415

        originals: list[tuple[type, str, Any]] = []

        def patch(cls: type, name: str, make: Callable[[Any], Any]) -> None:
            original = cls.__dict__[name]
            originals.append((cls, name, original))
            setattr(cls, name, make(original))

        def killed_after(where: str, origin: str | None = None) -> Callable[[Any], Any]:
            def make(original: Any) -> Any:
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.writer.as_(origin) if origin else contextlib.nullcontext():
                        result = original(*args, **kwargs)
                    self.killer.maybe(f"after writing {where}")
                    return result

                return wrapper

            return make

        def storefront(original: Any) -> Any:
            def wrapper(target: Any, levels: Sequence[Any]) -> Any:
                if self.poison_key and self.killer.enabled and any(level.key == self.poison_key for level in levels):
                    self.faults["poison_kill"] += 1
                    raise WorkerKilled("chaos: a record that kills its worker on every delivery")
                result = original(target, levels)
                self.killer.maybe("after writing the storefront")
                return result

            return wrapper

        def commit(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.killer.maybe("before committing state", "worker_killed_before_state")
                return original(*args, **kwargs)

            return wrapper

        def checkpoint(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.poller_killer.maybe("the poller after publishing, before its checkpoint", "poller_killed")
                return original(*args, **kwargs)

            return wrapper

        patch(ShopifyInventoryRecords, "write", killed_after("a store (two-way)", "twoway"))
        patch(ShopifyInventoryTarget, "upsert_inventory", killed_after("a store (ERP one-way)", "erp"))
        patch(FracttalInventoryTarget, "upsert_inventory", killed_after("Fracttal"))
        patch(OmsDatabase, "upsert_orders", killed_after("the OMS"))
        patch(HubSpotContactsByEmail, "write", killed_after("HubSpot (two-way)"))
        patch(OmsCustomersByEmail, "write", killed_after("an OMS customer (two-way)"))
        patch(PostgresStorefront, "upsert_inventory", storefront)
        patch(DynamoStateStore, "commit_many", commit)
        patch(DynamoCheckpointStore, "save", checkpoint)
        try:
            yield
        finally:
            for cls, name, original in reversed(originals):
                setattr(cls, name, original)

    # -- the scenario -------------------------------------------------------------------------------------
    def chaos(self, progress: Callable[[int, int], None] | None = None) -> None:
        settings, rng = self.settings, self.rng
        self._faults(on=settings.faults)
        made, round_number = 0, 0
        freeze_round = rng.randint(1, 3)
        rate_limit_rounds = {rng.randint(1, 8) for _ in range(settings.rate_limit_rounds)}
        poison_round = rng.randint(2, 4)
        try:
            while made < settings.changes:
                round_number += 1
                size = min(rng.randint(*settings.round_size), settings.changes - made)
                poisoned = settings.faults and round_number == poison_round and self.poison_key is not None
                if poisoned:  # change the poisoned record, so its message is there to be dead-lettered
                    self.erp.set_stock([Stock(self.sp[0], "1", Decimal(rng.randint(0, 300)))])
                    self.changes["erp_stock"] += 1
                for _ in range(size - poisoned):
                    self._change()
                made += size
                if settings.faults:
                    self._round_faults(round_number, freeze_round, rate_limit_rounds)
                if poisoned or rng.random() < 0.85:
                    self._poll()
                self._flush()
                if settings.faults:
                    self._shake_queues()
                if poisoned:
                    self._poison()
                self._partial_drain()
                if progress is not None:
                    progress(made, settings.changes)
        finally:
            self._faults(on=False)

    def _change(self) -> None:
        roll = self.rng.random()
        s = self.settings
        if roll < s.erp_share:
            self._erp_change()
        elif roll < s.erp_share + s.merchant_share:
            self._merchant_edit()
        elif roll < s.erp_share + s.merchant_share + s.contact_share:
            self._contact_change()
        elif roll < s.erp_share + s.merchant_share + s.contact_share + s.order_share or not self.orders:
            self._new_order()
        else:
            self._order_update()

    def _erp_change(self) -> None:
        rng = self.rng
        if rng.random() < 0.7:
            sku, location = rng.choice(self.fg), rng.choice("123")
            row = Stock(sku, location, Decimal(rng.randint(0, 300)), committed=Decimal(rng.randint(0, 5)))
        else:
            sku, location = rng.choice(self.sp), rng.choice("12")
            row = Stock(sku, location, Decimal(rng.randint(0, 300)))
        self.erp.set_stock([row])
        self.changes["erp_stock"] += 1

    def _merchant_edit(self) -> None:
        rng = self.rng
        store, sku, code = rng.choice(STORES), rng.choice(self.fg), rng.choice(sorted(STORE_LOCATIONS.values()))
        location = f"gid://shopify/Location/{self.stack.config.systems[store].locations[code]}"
        sandbox, item = self.stack.sandboxes[store], self.items[store][sku]
        current = sandbox.quantity(item, location)
        value = rng.choice([v for v in range(0, 151) if v != current])
        time.sleep(0.0015)  # a new millisecond: Shopify's updatedAt is the last-writer-wins clock
        with self.writer.as_("merchant"):
            sandbox.set_available(item, location, value)
        self.changes["merchant_edit"] += 1

    def _new_order(self) -> None:
        rng = self.rng
        sandbox = self.stack.sandboxes["store_a"]
        finished = set(self.fg)
        variants = [v for v, data in sandbox.variants.items() if data["sku"] in finished]
        lines = [(variant, rng.randint(1, 4)) for variant in rng.sample(sorted(variants), rng.randint(1, 3))]
        self.orders.append(sandbox.add_order(lines))
        self.changes["order_created"] += 1

    def _order_update(self) -> None:
        rng = self.rng
        sandbox = self.stack.sandboxes["store_a"]
        order_id = rng.choice(self.orders)
        order = sandbox.orders[order_id]
        fulfilment, financial = order["displayFulfillmentStatus"], order["displayFinancialStatus"]
        movable = []
        if fulfilment != FULFILMENT_STEPS[-1]:
            movable.append("fulfilment")
        if financial != FINANCIAL_STEPS[-1]:
            movable.append("financial")
        if not movable:
            self._new_order()
            return
        time.sleep(0.0015)  # the order's updatedAt (its source version) moves on
        if rng.choice(movable) == "fulfilment":
            step = FULFILMENT_STEPS[
                FULFILMENT_STEPS.index(fulfilment)
                + rng.randint(1, len(FULFILMENT_STEPS) - 1 - FULFILMENT_STEPS.index(fulfilment))
            ]
            sandbox.update_order(order_id, fulfillment_status=step)
        else:
            step = FINANCIAL_STEPS[FINANCIAL_STEPS.index(financial) + 1]
            sandbox.update_order(order_id, financial_status=step)
        self.changes["order_updated"] += 1

    def _contact_change(self) -> None:
        """A person edits one field of a contact, in HubSpot or in the OMS (where the record is); now and then a
        new contact is created on either side."""
        rng = self.rng
        if rng.random() < 0.1:
            self._new_contact(rng.choice((CRM, "oms")))
            return
        key = rng.choice(self.contact_keys)
        system = rng.choice((CRM, "oms"))
        if self._contact(system, key) is None:  # not synced there yet: the person edits where it is
            system = "oms" if system == CRM else CRM
        current = self._contact(system, key)
        assert current is not None  # noqa: S101 - every contact was created on one side
        name = rng.choice(sorted(CONTACT_FIELDS))
        value = self._contact_value(name, current.get(name))
        time.sleep(0.0015)  # a new millisecond: HubSpot's updatedAt is the last-writer-wins clock
        if system == CRM:
            sandbox = self.stack.sandboxes[CRM]
            stored = sandbox.find("contacts", "email", key)
            sandbox.user_edit("contacts", stored.id, {CONTACT_FIELDS[name]: value})
            self._record_crm_edit(key)
        else:
            self._oms_execute(
                f"UPDATE customers SET {name} = %s, updated_at = now() WHERE lower(btrim(email)) = %s "
                "RETURNING email, first_name, last_name, phone, lifecycle_stage, changed_at, version",
                [value, key],
            )
        self.changes["contact_edited"] += 1

    def _new_contact(self, system: str) -> None:
        rng = self.rng
        index = len(self.contact_keys)
        key = f"person-{index:03d}@example.com"
        values = {name: self._contact_value(name, None) for name in CONTACT_FIELDS}
        time.sleep(0.0015)
        if system == CRM:
            sandbox = self.stack.sandboxes[CRM]
            contact_id = sandbox.seed("contacts", {"email": key, "firstname": values["first_name"]})
            # Seeding sends no webhook: the person's first save does, with the rest of the fields.
            sandbox.user_edit("contacts", contact_id, {CONTACT_FIELDS[n]: v for n, v in values.items() if v})
            self._record_crm_edit(key)
        else:
            self._oms_execute(
                "INSERT INTO customers (customer_id, email, first_name, last_name, phone, lifecycle_stage, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, now()) "
                "RETURNING email, first_name, last_name, phone, lifecycle_stage, changed_at, version",
                [f"C-{index:04d}-{rng.randint(0, 9999):04d}", key, *(values[n] for n in CONTACT_FIELDS)],
            )
        self.contact_keys.append(key)
        self.changes["contact_created"] += 1

    def _contact_value(self, name: str, current: str | None) -> str:
        rng = self.rng
        while True:
            value = f"+44 20 7946 {rng.randint(0, 9999):04d}" if name == "phone" else rng.choice(CONTACT_VALUES[name])
            if value != current:
                return value

    def _contact(self, system: str, key: str) -> dict[str, str | None] | None:
        """The contact's edited fields as ``system`` holds them now (None: it has no such contact)."""
        if system == CRM:
            stored = self.stack.sandboxes[CRM].find("contacts", "email", key)
            if stored is None:
                return None
            return {name: stored.properties.get(prop) for name, prop in CONTACT_FIELDS.items()}
        rows = self._oms_rows(
            f"SELECT {', '.join(CONTACT_FIELDS)} FROM customers WHERE lower(btrim(email)) = %s",
            [key],
        )
        return dict(zip(CONTACT_FIELDS, rows[0], strict=True)) if rows else None

    def _record_crm_edit(self, key: str) -> None:
        stored = self.stack.sandboxes[CRM].find("contacts", "email", key)
        values = {name: stored.properties.get(prop) for name, prop in CONTACT_FIELDS.items()}
        changed_at = datetime.fromtimestamp(stored.updated_ms / 1000, UTC)
        # The version the connector reads: updatedAt in epoch milliseconds, as it computes it.
        self.contact_edits.append(_ContactEdit(CRM, key, values, changed_at, int(changed_at.timestamp() * 1000)))

    def _oms_execute(self, sql: str, params: Sequence[Any]) -> None:
        """One edit by the OMS's application, recorded with the time and version its row got."""
        (email, *values, changed_at, version) = self._oms_rows(sql, params)[0]
        edited = dict(zip(CONTACT_FIELDS, values, strict=True))
        self.contact_edits.append(_ContactEdit("oms", email.strip().lower(), edited, changed_at, version))

    def _oms_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        import psycopg  # noqa: PLC0415

        try:
            return list(self.oms_app.execute(sql, params).fetchall())
        except psycopg.OperationalError:  # its connection was terminated by a fault: the application reconnects
            self.oms_app = self.stack.oms()
            return list(self.oms_app.execute(sql, params).fetchall())

    def _drain_outbox(self) -> bool:
        """Run the OMS outbox drainer as its schedule would; False when the run failed (it runs again later)."""
        try:
            self.stack.drain_outbox()
        except Exception as exc:  # a terminated OMS connection, say
            self.faults["outbox_drain_failed"] += 1
            if len(self.notes) < 5:
                self.notes.append(f"an outbox drain failed: {type(exc).__name__}: {exc}"[:200])
            return False
        return True

    def _outbox_rows(self) -> int:
        return int(self._oms_rows("SELECT count(*) FROM outbox", [])[0][0])

    def _poll(self) -> None:
        try:
            self.stack.poll_erp()
        except WorkerKilled:
            pass  # the poller died after publishing: the next scheduled run starts from the old checkpoint
        except Exception as exc:  # a terminated ERP connection, say: the next scheduled run tries again
            self.faults["poll_failed"] += 1
            if len(self.notes) < 5:
                self.notes.append(f"a poll failed: {type(exc).__name__}: {exc}"[:200])

    def _faults(self, *, on: bool) -> None:
        self.faults_on = on
        self.killer.enabled = self.poller_killer.enabled = on
        s = self.settings
        for name, sandbox in self.stack.sandboxes.items():
            sandbox.faults.clear()
            if not on:
                continue
            sandbox.faults.add("status", probability=s.sandbox_error, status=503)
            sandbox.faults.add("status", probability=s.sandbox_error, status=500)
            if name == CRM:  # HubSpot's own 429: its body and rate-limit headers, no Retry-After
                sandbox.faults.add("rate_limit", probability=s.sandbox_429)
                # Its traffic is light (a read and a write per contact change): one sure 503 and one sure 429 of
                # its own, so even a short run sees HubSpot fail.
                sandbox.faults.add("status", times=1, status=503, path="/batch/read$")
                sandbox.faults.add("rate_limit", times=1, path="/batch/upsert$")
            else:
                sandbox.faults.add("status", probability=s.sandbox_429, status=429)
            sandbox.faults.add("drop", probability=s.sandbox_drop)
            sandbox.faults.add("timeout", probability=s.sandbox_timeout, seconds=0.05)
            sandbox.faults.add("latency", probability=s.sandbox_latency, seconds=0.02)

    def _round_faults(self, round_number: int, freeze_round: int, rate_limit_rounds: set[int]) -> None:
        rng, s = self.rng, self.settings
        if rng.random() < s.token_expiry:
            self.stack.sandboxes[CMMS].tokens.expire_all()
            self.faults["oauth_tokens_expired"] += 1
        if rng.random() < s.db_terminate:
            self._terminate_backends()
        if round_number in rate_limit_rounds:
            rng_sandbox = rng.choice(sorted(self.stack.sandboxes))
            self.stack.sandboxes[rng_sandbox].faults.add("rate_limit", times=1)
        if round_number == freeze_round and s.moto_freeze_seconds > 0:
            self._freeze_moto(s.moto_freeze_seconds)

    def _terminate_backends(self) -> None:
        """Drop every PostgreSQL connection of the workers (storefront, OMS, ERP reader), as a failover would."""
        rows = self.erp_connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = ANY(%s) AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            [["storefront", "oms", "sage300"]],
        ).fetchall()
        self.faults["pg_connections_terminated"] += sum(1 for (done,) in rows if done)

    def _freeze_moto(self, seconds: float) -> None:
        process = getattr(self.stack.moto, "process", None)
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGSTOP)
        self.faults["moto_frozen"] += 1

        def thaw() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)

        self.thaw = thaw
        threading.Timer(seconds, thaw).start()

    def _poison(self) -> None:
        """Deliver the storefront queue until the poisoned record's messages are in its DLQ."""
        queue = "sync_storefront"
        self._send(self.stack.resources.queues[queue].url, [body for held, body in self.held if held == queue])
        self.held = [(held, body) for held, body in self.held if held != queue]
        outcomes = self.stack.drain(queue)
        self.deliveries["queue"] += sum(o.received for o in outcomes)

    def _queue_bodies(self, url: str) -> list[str]:
        bodies: list[str] = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
            "Messages", []
        ):
            bodies += [message["Body"] for message in messages]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
        return bodies

    def _send(self, url: str, bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
            self.sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]

    def _shake_queues(self) -> None:
        """Take every waiting message off; duplicate some, hold some back, release some held; send back shuffled."""
        rng, s = self.rng, self.settings
        still_held: list[tuple[str, str]] = []
        for queue_id in sorted(self.stack.resources.queues):
            url = self.stack.resources.queues[queue_id].url
            bodies = self._queue_bodies(url)
            out: list[str] = []
            for body in bodies:
                if rng.random() < s.queue_hold:
                    still_held.append((queue_id, body))
                    self.faults["message_delayed"] += 1
                    continue
                out.append(body)
                if rng.random() < s.queue_duplicate:
                    out.append(body)
                    self.faults["message_duplicated"] += 1
            for held_queue, body in self.held:
                if held_queue == queue_id:
                    if rng.random() < 0.5:
                        out.append(body)
                    else:
                        still_held.append((held_queue, body))
            if len(out) > 1:
                self.faults["messages_reordered"] += len(out)
            rng.shuffle(out)
            self._send(url, out)
        self.held = still_held

    def _partial_drain(self) -> None:
        """Deliver most of each queue, leaving a few messages (0-15) to interleave with the next round's changes.
        The backlog stays bounded, as it does with workers that keep up; every queue that holds a message gets at
        least one batch, so a queue with little traffic (the contacts pair's) is delivered while the faults last."""
        rng = self.rng
        sources = sorted(self.stack.event_sources)
        rng.shuffle(sources)
        for queue_id in sources:
            source = self.stack.event_sources[queue_id]
            leave = min(rng.randint(0, 15), source.depth()[0] - 1)
            for _ in range(50):
                if source.depth()[0] <= leave:
                    break
                outcome = source.poll_once()
                self.deliveries["queue"] += outcome.received
                if not outcome.received:
                    break

    def _flush(self) -> None:
        for sandbox in self.stack.sandboxes.values():
            sandbox.flush()
        self._drain_outbox()
        with self.retry_lock:
            retries, self.retries = self.retries, []
        for attempt in retries:  # Shopify's retry of a failed delivery (counted in the sandbox's deliveries)
            if not attempt():
                self.faults["webhook_delivery_failed"] += 1
                with self.retry_lock:
                    self.retries.append(attempt)
        for sandbox in self.stack.sandboxes.values():
            sandbox.flush()

    # -- convergence --------------------------------------------------------------------------------------
    def _converge(self, max_seconds: float = 300.0) -> None:
        """Deliver everything until every queue is empty (in flight included) and no webhook waits for a retry."""
        deadline = time.monotonic() + max_seconds
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no convergence within {max_seconds:.0f} s: a sync loop, or a stuck queue")
            self._flush()
            moved = sum(outcome.received for outcome in self.stack.drain())
            self.deliveries["queue"] += moved
            pending = any(source.depth() != (0, 0) for source in self.stack.event_sources.values())
            with self.retry_lock:
                pending = pending or bool(self.retries)
            pending = pending or self._outbox_rows() > 0
            quiet = quiet + 1 if moved == 0 and not pending else 0
            if pending and moved == 0:
                time.sleep(0.2)

    def converge(self) -> tuple[int, int]:
        """After the faults: release what was held, settle, redrive every DLQ once, settle. (dead-lettered, redriven)"""
        self.thaw()
        for queue_id, body in self.held:
            self._send(self.stack.resources.queues[queue_id].url, [body])
        self.held = []
        self._poll()
        self._converge()
        self._poll()  # a poller killed before its checkpoint, or changes after the last poll
        self._converge()
        dead = self.dlq_depth()
        redriven = self._redrive()
        self._converge()
        self._poll()
        self._converge()
        return dead, redriven

    def dlq_depth(self, queue_id: str | None = None) -> int:
        """Messages in every DLQ, or in ``queue_id``'s (visible and in flight)."""
        total = 0
        for name, queue in self.stack.resources.queues.items():
            if queue_id not in (None, name):
                continue
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=queue.dlq_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
        return total

    def _redrive(self) -> int:
        from syncline.ops.dlq import DlqFilter, redrive  # noqa: PLC0415
        from syncline.ops.wiring import OpsContext, resolve_target  # noqa: PLC0415

        ops = OpsContext(resolve_target(endpoint_url=self.stack.moto.endpoint), self.config_path)
        moved = 0
        for queue in self.stack.topology.queues:
            report = redrive(ops.dead_letter_queue(ops.queue_spec(queue.id)), DlqFilter(), hold_seconds=30)
            moved += report.moved
        return moved

    # -- writes -------------------------------------------------------------------------------------------
    def writes(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for database in ("storefront", "oms"):
            row = self.stack._connect(database).execute("SELECT count(*) FROM chaos_write_log").fetchone()
            counts[database] = int(row[0])
        for mutation in self.mutations:
            if mutation.origin in {"erp", "twoway", "unknown"}:
                counts[mutation.store] += 1
        counts[CMMS] = len(self.stack.sandboxes[CMMS].updates)
        return counts

    def contact_writes(self) -> Counter[str]:
        """Syncline's writes of the contacts pair: to HubSpot, and to the OMS's customers."""
        row = self.stack._connect("oms").execute("SELECT count(*) FROM chaos_customer_write_log").fetchone()
        return Counter({CRM: self.crm_writes, "oms": int(row[0])})

    # -- the oracle ---------------------------------------------------------------------------------------
    def check(self) -> tuple[int, list[Divergence]]:
        found: list[Divergence] = []
        checked = 0
        erp = Sage300Emulator(self.stack._connect("sage300")).stock()
        store_rows = (
            self.stack._connect("storefront")
            .execute("SELECT sku, location, on_hand, available FROM inventory_levels")
            .fetchall()
        )
        storefront = {(sku, loc): (Decimal(on_hand), Decimal(available)) for sku, loc, on_hand, available in store_rows}
        for (sku, location), (on_hand, committed, _) in sorted(erp.items()):
            code = STOREFRONT_LOCATIONS.get(location)
            if code is None:
                continue
            checked += 1
            expected = (on_hand, max(on_hand - committed, Decimal(0)))
            actual = storefront.get((sku, code))
            if actual != expected:
                found.append(Divergence("storefront", f"{sku}|{code}", _text(expected), _text(actual), actual is None))
        cmms = self.stack.sandboxes[CMMS]
        for sku in self.sp:
            checked += 1
            expected_stock = erp[(sku, "1")][0]
            if Decimal(str(cmms.stock(WAREHOUSE, sku))) != expected_stock:
                found.append(Divergence(CMMS, sku, str(expected_stock), str(cmms.stock(WAREHOUSE, sku))))
        for sku in self.fg:
            for code in sorted(STORE_LOCATIONS.values()):
                key = f"{sku}|{code}"
                wanted, why = _expected_store_value([m for m in self.mutations if m.key == key], self.seeded[key])
                values: dict[str, int] = {}
                for store in STORES:
                    location = f"gid://shopify/Location/{self.stack.config.systems[store].locations[code]}"
                    values[store] = self.stack.sandboxes[store].quantity(self.items[store][sku], location)
                checked += len(values)
                lost = wanted not in values.values()  # the winning edit is in neither store
                found += [
                    Divergence(store, key, f"{wanted} ({why})", value, lost)
                    for store, value in values.items()
                    if value != wanted
                ]
        found += self._check_orders()
        checked += len(self.orders)
        contacts = self.check_contacts()
        found += contacts
        checked += 2 * len(self.contact_keys)
        return checked, found

    def check_contacts(self) -> list[Divergence]:
        """Both systems hold every contact with the values of its latest edit (``_expected_contact``)."""
        found = []
        for key in self.contact_keys:
            wanted, why = _expected_contact([edit for edit in self.contact_edits if edit.key == key])
            values = {system: self._contact(system, key) for system in (CRM, "oms")}
            lost = wanted not in values.values()  # the winning edit is in neither system
            found += [
                Divergence(system, key, {**wanted, "why": why}, value, lost)
                for system, value in values.items()
                if value != wanted
            ]
        return found

    def _check_orders(self) -> list[Divergence]:
        from syncline.connectors.oms_pg import OmsDatabase  # noqa: PLC0415

        connection = self.stack._connect("oms")
        oms = OmsDatabase(lambda: connection, origin=None)
        sandbox = self.stack.sandboxes["store_a"]
        found = []
        for order_id in self.orders:
            source = sandbox.orders[order_id]
            expected = {
                "status": CANONICAL_STATUS[source["displayFulfillmentStatus"]],
                "financial_status": source["displayFinancialStatus"].lower(),
                "lines": sorted(
                    (sandbox.variants[line["variant"]]["sku"], line["quantity"]) for line in source["lines"]
                ),
            }
            stored = oms.get_order(order_id)
            if stored is None:
                found.append(Divergence("oms", order_id, expected, None, lost=True))
                continue
            actual = {
                "status": stored.status.value,
                "financial_status": stored.financial_status,
                "lines": sorted((line.sku, int(line.quantity)) for line in stored.lines),
            }
            if actual != expected:
                found.append(Divergence("oms", order_id, expected, actual))
        return found


def _expected_store_value(mutations: Sequence[_Mutation], seeded: int) -> tuple[int, str]:
    """What both stores must hold for one record under last-writer-wins: the value of the latest *edit*.

    Edits are a merchant's change in either store and the ERP pairs' one-way writes into either store (for the
    two-way pair they are changes made in Shopify like any other). The two-way pair's own writes are not
    edits: they carry the time of the edit they copy. "Latest" is Shopify's ``updatedAt`` (milliseconds); at
    the same millisecond in both stores the engine's documented tie-break decides (the higher version, which
    for Shopify inventory is the quantity itself). A record nobody edited keeps its seeded value.
    """
    edits = [m for m in mutations if m.origin != "twoway"]
    if not edits:
        return seeded, "never edited"
    latest = max(_parse(m.updated_at) for m in edits)
    last_per_store: dict[str, _Mutation] = {}
    for mutation in edits:  # in the order they happened: the later one in a store overwrote the earlier
        if _parse(mutation.updated_at) == latest:
            last_per_store[mutation.store] = mutation
    winner = max(last_per_store.values(), key=lambda m: (m.value, m.store == STORES[0]))
    tie = " (tie)" if len({m.value for m in last_per_store.values()}) > 1 else ""
    return winner.value, f"{winner.origin} edit in {winner.store} at {winner.updated_at}{tie}"


def _expected_contact(edits: Sequence[_ContactEdit]) -> tuple[dict[str, str | None], str]:
    """What HubSpot and the OMS must both hold for one contact under the pair's policy, last writer wins: the
    record as the latest edit left it. "Latest" compares the times the systems gave the edits (HubSpot's
    ``updatedAt``, the OMS row's ``changed_at``); at the same time the higher version wins, then the system whose
    name sorts first (``syncline.conflicts.LastWriterWins`` with no priority). The engine's own writes are not
    edits: they carry the time of the edit they copy."""
    winner = max(edits, key=lambda e: (e.changed_at, e.version, [-ord(ch) for ch in e.system]))
    return winner.values, f"{winner.system} edit at {winner.changed_at.isoformat()}"


def _queue_of(stack: Any, pair: str) -> str:
    """The queue a pair's notices wait in."""
    return str(next(queue.id for queue in stack.topology.queues if pair in queue.pairs))


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _text(value: Any) -> Any:
    if isinstance(value, tuple):
        return [str(part) for part in value]
    return value


def _install_write_log(connection: Any, table: str, log: str = "chaos_write_log") -> None:
    """Count every row Syncline writes to ``table`` (a trigger into ``log``). Only Syncline writes the storefront's
    and the OMS's orders; of the OMS's customers, only the writes marked as Syncline's are counted."""
    syncline_only = "WHEN (current_setting('syncline.origin', true) = 'syncline')" if table == "customers" else ""
    connection.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {log} (at timestamptz DEFAULT now());
        CREATE OR REPLACE FUNCTION {log}() RETURNS trigger AS $$
        BEGIN INSERT INTO {log} DEFAULT VALUES; RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER {log} AFTER INSERT OR UPDATE ON {table}
            FOR EACH ROW {syncline_only} EXECUTE FUNCTION {log}();
        """
    )


def run_chaos(
    settings: ChaosSettings,
    *,
    extra_config: str,
    work_dir: Path,
    moto: Any = None,
    postgres: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> ChaosReport:
    """Run one scenario on a fresh local stack (on ``moto``/``postgres`` when given) and check the outcome;
    ``progress(made, total)`` is called after each round of changes."""
    from syncline.local.stack import LocalStack  # noqa: PLC0415

    started = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "syncline.toml"
    config_path.write_text(chaos_config(extra_config))
    # Failed messages come back at once (AWS: after the visibility timeout), so retries reach the DLQ in a run.
    stack = LocalStack.up(
        config_path=config_path, work_dir=work_dir, moto=moto, postgres=postgres, retry_after_seconds=0
    )
    run = _ChaosRun(stack, settings, config_path)
    try:
        with run.patched():
            run.setup()
            baseline, contact_baseline = run.writes(), run.contact_writes()
            delivered_before = sum(len(sandbox.delivered) for sandbox in stack.sandboxes.values())
            run.deliveries.clear()
            run.changes.clear()  # the initial contacts are the starting point, not changes
            run.chaos(progress)
            converging = time.perf_counter()
            dead, redriven = run.converge()
            seconds_to_converge = time.perf_counter() - converging
        checked, divergences = run.check()
        left = run.dlq_depth()
        after = run.contact_writes()
        contact_writes = Counter({system: after[system] - contact_baseline[system] for system in (CRM, "oms")})
        writes = run.writes() - baseline + contact_writes
        contact_divergences = [d for d in divergences if d.key in set(run.contact_keys)]
        contact_changes = run.changes["contact_edited"] + run.changes["contact_created"]
        contact_total = sum(contact_writes.values())
        by_pair = {
            CONTACTS_PAIR: PairFigures(
                changes=contact_changes,
                records_checked=2 * len(run.contact_keys),
                divergent=len(contact_divergences),
                lost=sum(1 for d in contact_divergences if d.lost),
                left_in_dlq=run.dlq_depth(_queue_of(stack, CONTACTS_PAIR)),
                writes=contact_total,
                writes_by_system=dict(sorted(contact_writes.items())),
                writes_per_change=round(contact_total / contact_changes, 3) if contact_changes else 0.0,
                faults=dict(sorted(stack.sandboxes[CRM].faults.injected.items())),
            )
        }
        run.deliveries["webhook"] = (
            sum(len(sandbox.delivered) for sandbox in stack.sandboxes.values()) - delivered_before
        )
        for sandbox in stack.sandboxes.values():
            for kind, count in sandbox.faults.injected.items():
                run.faults[f"sandbox_{kind}"] += count
        unknown = sum(1 for m in run.mutations if m.origin == "unknown")
        if unknown:
            run.notes.append(f"{unknown} store writes of unknown origin (counted as edits by the oracle)")
        total_changes = sum(run.changes.values())
        total_writes = sum(writes.values())
        return ChaosReport(
            seed=settings.seed,
            changes=total_changes,
            changes_by_kind=dict(sorted(run.changes.items())),
            deliveries=sum(run.deliveries.values()),
            deliveries_by_kind=dict(sorted(run.deliveries.items())),
            faults=dict(sorted(run.faults.items())),
            records_checked=checked,
            divergent=len(divergences),
            lost=sum(1 for d in divergences if d.lost),
            dead_lettered=dead,
            redriven=redriven,
            left_in_dlq=left,
            writes=total_writes,
            writes_by_system=dict(sorted(writes.items())),
            writes_per_change=round(total_writes / total_changes, 3) if total_changes else 0.0,
            seconds_to_converge=round(seconds_to_converge, 2),
            seconds_total=round(time.perf_counter() - started, 2),
            divergent_records=divergences,
            notes=run.notes,
            by_pair=by_pair,
        )
    finally:
        run.thaw()
        stack.down()
