"""The sides and repairs ``syncline.ops.reconcile`` compares and runs, per kind of pair.

- One-way ERP inventory (Sage 300 -> the PostgreSQL storefront, a Shopify store, a Fracttal warehouse, a ``rest``
  system with a declared ``list`` endpoint): the ERP's rows mapped exactly as the sync worker maps them, against
  the target's own records. The repair fetches the *current* ERP rows of the keys to fix and writes them through
  ``syncline.sync.write_levels`` (the worker's path: the target's version guard or compare-and-swap, then the state
  cache). A row deleted in the ERP is deleted from the storefront (re-checked against the ERP, guarded by the
  version the compare saw); a Shopify product, a Fracttal spare part or a rest record is never deleted: it is left
  and the report says why.
- One-way ERP prices (Sage 300 ICPRICP -> the storefront's prices table, a Shopify store's variants): each SKU's
  price as the price worker maps it (``to_price``), against the target's. The repair fetches the current prices
  and writes them through ``syncline.prices.write_prices``; a price the ERP lacks is left (the worker never
  unpublishes one).
- One-way orders (a Shopify store -> the OMS): each store order's status, payment, total and lines against the
  OMS's. The repair hands the keys that differ to the order worker's ``RecordSync``, as if their notices had just
  arrived (fetched fresh, the OMS's guarded upsert); an order the store no longer has is left.
- One-way shipments (the OMS -> a Shopify store's fulfilments): every shipped or delivered OMS shipment against the
  store's fulfilment state of its order (``plan_fulfillment``: fulfilled, or its tracking number recorded). The
  store keeps fulfilments per order, so the store's side is read through the OMS's shipments: a fulfilment with
  no OMS shipment is not found. The repair re-runs the shipment worker for the ones missing.
- Two-way pairs (PostgreSQL records, Shopify inventory, HubSpot and Salesforce contacts, OMS customers, polled
  ``rest`` records): every record either side holds, its values as the pair's sync reads them. The repair runs the pair's ``TwoWaySync`` for each
  key that differs, so the configured conflict policy decides (never one side written blindly), echoes are
  expected before each write, and what no rule settles goes to the conflict list.

``coverage`` says which pairs are covered; ``reconciliation`` builds one from the collaborators the CLI and
the scheduled reconciler both have. No AWS import here: the callers pass in what touches AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from syncline.config import FracttalSystem, Pair, PostgresSystem, RestSystem, ShopifySystem, SynclineConfig
from syncline.erp.sage300 import INVENTORY_FIELDS, MappingError, inventory_row, to_inventory_level, to_price
from syncline.models import InventoryLevel, inventory_key
from syncline.ops.reconcile import (
    ApplyReport,
    Discrepancy,
    Entry,
    Kind,
    Reconciliation,
    Side,
    Unmappable,
)
from syncline.ports import InventoryTarget, KnownState, PriceTarget
from syncline.prices import ENTITY as PRICE
from syncline.prices import PricePair, write_prices
from syncline.sync import ENTITY, PairContext, pair_context, write_levels
from syncline.topology import ONE_WAY_KINDS, TWO_WAY_ENTITIES, TWO_WAY_KINDS
from syncline.twoway import FieldSubset, Outcome, RecordChanged, fingerprint, shared_fields

if TYPE_CHECKING:
    from syncline.review import ConflictReview
    from syncline.systems import SystemFactory
    from syncline.twoway import Copy, TwoWaySync

COMPARED_FIELDS = INVENTORY_FIELDS[2:9]  # on_hand ... active: what the sync writes to the storefront
_VERSION = INVENTORY_FIELDS.index("source_version")
# One-way pairs reconcile has a reader per side and a repair for: entity -> (source kind, target kind). Only those
# a worker serves (topology.ONE_WAY_KINDS) count; any other served pair is named in NOT_READ with the reason.
READ_ONE_WAY: dict[str, frozenset[tuple[str, str]]] = {
    "inventory_level": frozenset(
        {("sage300", "postgres"), ("sage300", "shopify"), ("sage300", "fracttal"), ("sage300", "rest")}
    ),
    "order": frozenset({("shopify", "oms")}),
    "shipment": frozenset({("oms", "shopify")}),
    "price": frozenset({("sage300", "postgres"), ("sage300", "shopify")}),
}
NOT_READ: dict[tuple[str, str, str], str] = {}  # (entity, source kind, target kind) -> why: none today
COVERED = "; ".join(
    [
        *(
            f"one-way {entity} from {source} into {' or '.join(sorted(t for s, t in combos if s == source))}"
            for entity, combos in ((e, READ_ONE_WAY.get(e, frozenset()) & c) for e, c in ONE_WAY_KINDS.items())
            for source in sorted({s for s, _ in combos})
        ),
        f"two-way pairs between {', '.join(sorted(TWO_WAY_KINDS))}",
    ]
)
NOT_DELETED = (
    "left: {system} is a SaaS target and reconcile never deletes its products; the ERP no longer has this row, "
    "so archive or delete it in {system} by hand if it is really gone"
)
NOT_STOCKED = (
    "{system} does not stock this item at this location (or the SKU has no inventory item mapped, see `syncline map`); "
    "Syncline never stocks items: stock it there to sync it"
)
TWO_WAY_UNSTOCKED = (
    "{system} can only take this level if it stocks the item at this location; if apply reports it rejected, "
    "stock it there (or map the SKU, see `syncline map`)"
)
ORDER_NOT_IN_STORE = (
    "left: {system} has no such order (deleted there, or the order came from another store); reconcile never "
    "deletes an order from the OMS"
)
ORDER_AHEAD = "left: the OMS holds a newer version of this order; its guarded upsert would refuse the older one"
SHIPMENT_NOT_FULFILLED = (
    "the store has no fulfilment for this shipment; apply fulfils it through the shipment worker (if the order is "
    "not in the store at all, apply reports it rejected: nothing can be fulfilled there)"
)
NOT_CREATED = "{system} does not stock this code and Syncline never creates spare parts: add it there to sync it"


class ReconcileSource(Protocol):
    def iter_all(self, page_size: int = ...) -> Iterator[list[dict[str, Any]]]: ...
    def fetch_items(self, items: Iterable[str]) -> list[dict[str, Any]]: ...


class ReconcileState(Protocol):
    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]: ...
    def forget_many(self, pair: str, entity: str, keys: Sequence[str]) -> None: ...


class StorefrontRows(InventoryTarget, Protocol):
    def iter_rows(self, page_size: int = ...) -> Iterator[list[tuple[Any, ...]]]:
        """Every row, ``INVENTORY_FIELDS`` order, in pages."""

    def delete_inventory(self, rows: Sequence[tuple[str, str, int]]) -> set[str]:
        """Delete (sku, location) rows whose version is still at most the given one; return the keys deleted."""


# -- which pairs ---------------------------------------------------------------------------------------------
def coverage(config: SynclineConfig, pair: Pair) -> str | None:
    """None when reconcile covers ``pair`` (a reader for each side and a repair); else why not, naming what is
    covered. Never claims a pair it cannot read: a pair a worker serves but reconcile does not says so."""
    source, target = config.systems[pair.source], config.systems[pair.target]
    kinds = (source.kind, target.kind)
    if pair.direction == "two_way" and all(
        kind in TWO_WAY_KINDS and pair.entity in TWO_WAY_ENTITIES.get(kind, frozenset({pair.entity})) for kind in kinds
    ):
        return None
    served = pair.direction == "one_way" and kinds in ONE_WAY_KINDS.get(pair.entity, frozenset())
    if served and kinds in READ_ONE_WAY.get(pair.entity, frozenset()):
        if isinstance(target, FracttalSystem) and len(_target_locations(pair)) != 1:
            return (
                f"{pair.name} maps {len(_target_locations(pair))} locations into {pair.target}, which holds one "
                "quantity per spare part: give the pair one location ([pairs.filters] locations) to reconcile it"
            )
        if isinstance(target, RestSystem) and (unread := _rest_levels_unread(target, pair.target)) is not None:
            return (
                f"reconcile covers {COVERED}; {pair.name} is {pair.direction} {pair.entity}, "
                f"{source.kind} -> {target.kind}, but {unread}: declare it to reconcile the pair"
            )
        return None
    why = NOT_READ.get((pair.entity, *kinds), "not covered yet") if served else "not covered yet"
    return (
        f"reconcile covers {COVERED}; {pair.name} is {pair.direction} {pair.entity}, "
        f"{source.kind} -> {target.kind} ({why}: compare it with the systems' own reports)"
    )


def _rest_levels_unread(system: RestSystem, name: str) -> str | None:
    """Why a rest system's levels cannot be listed for a compare (None: they can): a ``list`` endpoint, and either
    ``sku`` and ``location`` mapped or the canonical ``key`` (``SKU|LOCATION``) as the key field."""
    from syncline.connectors.rest import INVENTORY_ENTITY, RestEntityConfig  # noqa: PLC0415 - httpx only where used

    entity = RestEntityConfig.model_validate(system.entities[INVENTORY_ENTITY])
    if entity.list is None:
        return f"{name}.entities.{INVENTORY_ENTITY} declares no list endpoint (reconcile reads every level through it)"
    if not {"sku", "location"} <= set(entity.fields) and entity.key_field != "key":
        return (
            f"{name}.entities.{INVENTORY_ENTITY} maps neither sku and location nor the canonical key as its "
            "key_field, so a listed level cannot be matched to an ERP row"
        )
    return None


def _target_locations(pair: Pair) -> set[str]:
    """The target locations the pair writes (those of the source locations its filters let through)."""
    allowed = pair.filters.locations
    return {target for source, target in pair.locations.items() if not allowed or source in allowed}


@dataclass
class Collaborators:
    """What building a reconciliation needs; the CLI and the scheduled reconciler each pass theirs.

    ``erp(system)``: a read-only ERP reader; ``state()``: the state cache; ``twoway(pair)``: the pair's engine as
    its worker builds it; ``review()``: the conflict list; ``publish``: puts a canonical event on the bus, as the
    order and shipment workers do for the orders and fulfilments a repair writes (None: no events). Only the
    repair uses the last four."""

    systems: SystemFactory
    erp: Callable[[str], ReconcileSource]
    state: Callable[[], ReconcileState]
    twoway: Callable[[str], TwoWaySync]
    review: Callable[[], ConflictReview]
    publish: Callable[[Any], object] | None = None


def reconciliation(config: SynclineConfig, pair: Pair, using: Collaborators) -> Reconciliation:
    """The pair's sides and repair (``coverage(config, pair)`` must be None)."""
    reason = coverage(config, pair)
    if reason is not None:
        raise LookupError(reason)
    source, target = config.systems[pair.source], config.systems[pair.target]
    labels = (f"{pair.source} ({source.kind})", f"{pair.target} ({target.kind})")
    if pair.direction == "two_way":
        # A Shopify copy can only be written where the store stocks the item: say so where it would be missing.
        missing: dict[Kind, str] = {"missing_in_target": pair.target, "missing_in_source": pair.source}
        two_way_notes: dict[Kind, str] = {
            kind: TWO_WAY_UNSTOCKED.format(system=name)
            for kind, name in missing.items()
            if isinstance(config.systems[name], ShopifySystem)
        }
        fields = _shared_fields(using.systems, pair)
        return Reconciliation(
            pair.name,
            pair.entity,
            RecordSide(_copies(using.systems, pair.source), fields),
            RecordSide(_copies(using.systems, pair.target), fields),
            TwoWayRepair(pair.name, pair.entity, using.twoway, using.review),
            labels,
            two_way_notes,
        )
    if pair.entity == "order":
        return _order_reconciliation(pair, labels, using)
    if pair.entity == "shipment":
        return _shipment_reconciliation(pair, labels, using)
    if pair.entity == PRICE:
        return _price_reconciliation(config, pair, labels, using)
    if pair.entity != ENTITY:
        raise LookupError(f"reconcile has no reader for one-way {pair.entity} pairs ({pair.name})")
    context = pair_context(config, pair)
    erp = using.erp(pair.source)
    writer = using.systems.inventory_target(pair.target)
    notes: dict[Kind, str] = {}
    target_side: Side
    if isinstance(target, PostgresSystem):
        project: Callable[[tuple[Any, ...]], dict[str, Any]] = _storefront_values
        target_side = StorefrontSide(writer, _in_scope(pair))  # type: ignore[arg-type]
    elif isinstance(target, ShopifySystem):
        name = target.quantity
        project = _shopify_values(name)
        target_side = ShopifySide(lambda size: using.systems.shopify_levels(pair.target, size), name, _in_scope(pair))
        notes["missing_in_source"] = NOT_DELETED.format(system=pair.target)
        notes["missing_in_target"] = NOT_STOCKED.format(system=pair.target)
    elif isinstance(target, FracttalSystem):
        (location,) = _target_locations(pair)
        project = _fracttal_values
        target_side = FracttalSide(using.systems.fracttal(pair.target), target.warehouse_code, location, pair)
        notes["missing_in_source"] = NOT_DELETED.format(system=pair.target)
        notes["missing_in_target"] = NOT_CREATED.format(system=pair.target)
    elif isinstance(target, RestSystem):
        compared = _rest_compared_fields(target)
        project = _rest_values(compared)
        target_side = RestLevelSide(using.systems.rest(pair.target), compared, _in_scope(pair))
        notes["missing_in_source"] = REST_NOT_DELETED.format(system=pair.target)
    else:  # a target kind a worker serves but no reader here yet: say so rather than compare wrongly
        raise LookupError(f"reconcile has no reader for {target.kind} inventory targets yet ({pair.name})")
    return Reconciliation(
        pair.name,
        pair.entity,
        ErpInventorySide(erp, context, project),
        target_side,
        InventoryRepair(context, erp, writer, using.state, deletes=isinstance(target, PostgresSystem)),
        labels,
        notes,
    )


# -- one-way inventory: the ERP side -------------------------------------------------------------------------
@dataclass
class ErpInventorySide:
    """The ERP's rows inside the pair's filters, mapped as the worker maps them, projected to what the target holds."""

    reader: ReconcileSource
    pair: PairContext
    project: Callable[[tuple[Any, ...]], dict[str, Any]]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for records in self.reader.iter_all(page_size):
            page: list[Entry | Unmappable] = []
            for record in records:
                item, erp_location = str(record["ITEMNO"]), str(record["LOCATION"])
                if not self.pair.accepts(item, erp_location):
                    continue
                mapped = self.pair.locations.get(erp_location)
                try:
                    row = inventory_row(record, self.pair.locations, self.pair.tz)
                    values = self.project(row)
                except (MappingError, ValueError) as exc:
                    key = inventory_key(item, mapped) if mapped is not None else None
                    page.append(Unmappable(f"{item}|{erp_location}", str(exc), key))
                    continue
                page.append(Entry(inventory_key(row[0], row[1]), values, int(row[_VERSION]), (item, erp_location)))
            yield page


def _storefront_values(row: tuple[Any, ...]) -> dict[str, Any]:
    return {name: row[i] for i, name in enumerate(INVENTORY_FIELDS) if name in COMPARED_FIELDS}


def _shopify_values(name: str) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    index = INVENTORY_FIELDS.index(name)

    def project(row: tuple[Any, ...]) -> dict[str, Any]:
        quantity = Decimal(row[index])
        if quantity != quantity.to_integral_value():
            raise MappingError(f"{name} {quantity} is not a whole number; Shopify quantities are integers")
        return {name: int(quantity)}

    return project


def _fracttal_values(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"stock": Decimal(row[INVENTORY_FIELDS.index("on_hand")])}


def _in_scope(pair: Pair) -> Callable[[str, str], bool]:
    """Whether a target row (SKU, target location) is the pair's business: some source location mapped to it passes
    the pair's filters. Rows outside are not compared (another pair, or nobody, feeds them)."""
    sources: dict[str, list[str]] = {}
    for source, target in pair.locations.items():
        sources.setdefault(target, []).append(source)
    return lambda sku, location: any(pair.filters.accepts(sku, source) for source in sources.get(location, ()))


# -- one-way inventory: the target sides ----------------------------------------------------------------------
@dataclass
class StorefrontSide:
    storefront: StorefrontRows
    in_scope: Callable[[str, str], bool]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for rows in self.storefront.iter_rows(page_size):
            yield [
                Entry(inventory_key(row[0], row[1]), _storefront_values(row), int(row[_VERSION]))
                for row in rows
                if self.in_scope(row[0], row[1])
            ]


@dataclass
class ShopifySide:
    """A store's levels at the pair's locations, keyed by the identity map's SKU (levels of items nobody mapped
    are not Syncline's and are not compared); the one quantity the store syncs (``available`` or ``on_hand``)."""

    levels: Callable[[int], Iterator[list[tuple[str, str, Any]]]]
    name: str
    in_scope: Callable[[str, str], bool]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for page in self.levels(min(page_size, 250)):
            yield [
                Entry(inventory_key(sku, location), {self.name: level.quantity(self.name)})
                for sku, location, level in page
                if self.in_scope(sku, location)
            ]


@dataclass
class FracttalSide:
    """A Fracttal warehouse: one stock per spare-part code, keyed at the pair's one target location."""

    client: Any
    warehouse: str
    location: str
    pair: Pair

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        page: list[Entry | Unmappable] = []
        for item in self.client.list_items(self.warehouse):
            if not any(self.pair.filters.accepts(item.match_code, source) for source in self.pair.locations):
                continue
            page.append(Entry(inventory_key(item.match_code, self.location), {"stock": item.stock}))
            if len(page) >= page_size:
                yield page
                page = []
        yield page


REST_NOT_DELETED = (
    "left: reconcile never deletes from {system} (a generic API declares no delete); the ERP no longer has this "
    "row, so remove it there by hand if it is really gone"
)
_QUANTITIES = frozenset({"on_hand", "reserved", "available", "on_order"})


def _rest_compared_fields(system: RestSystem) -> tuple[str, ...]:
    """The synced fields the rest system's mapping holds (what it was sent is all it can show back)."""
    from syncline.connectors.rest import INVENTORY_ENTITY  # noqa: PLC0415

    mapped = system.entities[INVENTORY_ENTITY].get("fields") or {}
    return tuple(name for name in COMPARED_FIELDS if name in mapped)


def _comparable(name: str, value: Any) -> Any:
    """One value as both sides can agree on it: quantities as plain decimal text (JSON numbers, strings and the
    ERP's decimals of any scale), the rest as they are."""
    if value is None or name not in _QUANTITIES:
        return value
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except ArithmeticError:
        return str(value)


def _rest_values(compared: tuple[str, ...]) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    def project(row: tuple[Any, ...]) -> dict[str, Any]:
        return {name: _comparable(name, row[INVENTORY_FIELDS.index(name)]) for name in compared}

    return project


@dataclass
class RestLevelSide:
    """A rest system's levels through its declared ``list`` endpoint and pagination, keyed ``SKU|LOCATION`` (from
    the mapped sku and location, else the canonical key), within the pair's filters and locations."""

    connector: Any  # RestConnector
    compared: tuple[str, ...]
    in_scope: Callable[[str, str], bool]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        from syncline.connectors.rest import INVENTORY_ENTITY  # noqa: PLC0415

        page: list[Entry | Unmappable] = []
        for record in self.connector.records(INVENTORY_ENTITY):
            sku, location = record.get("sku"), record.get("location")
            if (sku is None or location is None) and "|" in str(record.get("key") or ""):
                sku, _, location = str(record["key"]).rpartition("|")
            if sku is None or location is None or not self.in_scope(str(sku), str(location)):
                continue
            version = record.get("source_version")
            values = {name: _comparable(name, record.get(name)) for name in self.compared}
            page.append(
                Entry(inventory_key(str(sku), str(location)), values, int(version) if version is not None else None)
            )
            if len(page) >= page_size:
                yield page
                page = []
        yield page


# -- one-way inventory: the repair ---------------------------------------------------------------------------
@dataclass
class InventoryRepair:
    """Writes the current ERP rows of the keys that differ through the worker's write path; deletes rows the ERP
    lost from the storefront only (``deletes``); leaves target-ahead rows and SaaS records the ERP lacks."""

    pair: PairContext
    source: ReconcileSource
    target: InventoryTarget
    state: Callable[[], ReconcileState]
    deletes: bool

    def __call__(self, batch: Sequence[Discrepancy], result: ApplyReport) -> None:
        to_write = [d for d in batch if d.kind in ("missing_in_target", "mismatch")]
        to_delete = [d for d in batch if d.kind == "missing_in_source"]
        result.left += sum(1 for d in batch if d.kind == "target_ahead")
        state = self.state()
        if to_write:
            current = self._current_levels({d.item for d in to_write}, result)
            levels = [current[d.key] for d in to_write if d.key in current]
            accepted = write_levels(levels, target=self.target, state=state, pair=self.pair.name)
            result.upserted += len(accepted)
            result.unchanged += len(levels) - len(accepted)
        if not to_delete:
            return
        if not self.deletes:
            result.left += len(to_delete)
            return
        # Re-check: a row that is back in the ERP (or was only unmappable a moment ago) is not deleted.
        present = self._present_keys({d.item for d in to_delete})
        gone = [d for d in to_delete if d.key not in present]
        result.kept += len(to_delete) - len(gone)
        storefront: StorefrontRows = self.target  # type: ignore[assignment]
        deleted = storefront.delete_inventory([(d.item, d.key.rpartition("|")[2], d.target_version or 0) for d in gone])
        if deleted:
            state.forget_many(self.pair.name, ENTITY, sorted(deleted))
        result.deleted += len(deleted)
        result.unchanged += len(gone) - len(deleted)

    def _current_levels(self, items: Iterable[str], result: ApplyReport) -> dict[str, InventoryLevel]:
        """Fresh ERP rows of ``items`` as canonical levels, by target key (fetch-on-notify, never the snapshot)."""
        levels = {}
        for record in self.source.fetch_items(items):
            if not self.pair.accepts(str(record["ITEMNO"]), str(record["LOCATION"])):
                continue
            try:
                level = to_inventory_level(record, self.pair.locations, self.pair.tz)
            except (MappingError, ValueError) as exc:
                result.rejected.append((f"{record['ITEMNO']}|{record['LOCATION']}", str(exc)))
                continue
            levels[level.key] = level
        return levels

    def _present_keys(self, items: Iterable[str]) -> set[str]:
        keys = set()
        for record in self.source.fetch_items(items):
            location = self.pair.locations.get(str(record["LOCATION"]))
            if location is not None:
                keys.add(inventory_key(str(record["ITEMNO"]), location))
        return keys


# -- two-way pairs -------------------------------------------------------------------------------------------
def _copies(systems: SystemFactory, name: str) -> Callable[[int], Iterator[list[tuple[str, Copy]]]]:
    return lambda page_size: systems.record_copies(name, page_size)


def _shared_fields(systems: SystemFactory, pair: Pair) -> tuple[str, ...] | None:
    """The fields the pair's sync compares when one side stores fewer (``twoway.shared_fields``: a Salesforce
    contact has no lifecycle stage); None when both sides are read whole."""
    views = shared_fields([systems.record_system(pair.source), systems.record_system(pair.target)])
    return next((view.fields for view in views if isinstance(view, FieldSubset)), None)


@dataclass
class RecordSide:
    """Every record a two-way system holds, its values as the pair's sync reads them: narrowed to ``fields`` where
    the pair's sync narrows them (versions are each system's own, so they are not compared)."""

    copies: Callable[[int], Iterator[list[tuple[str, Copy]]]]
    fields: tuple[str, ...] | None = None

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for page in self.copies(page_size):
            yield [Entry(key, self._values(copy)) for key, copy in page]

    def _values(self, copy: Copy) -> dict[str, Any]:
        if self.fields is None:
            return dict(copy.values)
        return {name: copy.values.get(name) for name in self.fields}


@dataclass
class TwoWayRepair:
    """Runs the pair's two-way sync for each key that differs: the pair's policy decides, what no rule settles goes
    to the conflict list. A copy deleted in one system while the other kept its agreed copy is no change to two-way
    sync (it never propagates a deletion), so it would stay missing: that copy is restored from the one left,
    through ``TwoWaySync.apply`` (guarded by the versions just read, echo expected, base committed)."""

    pair: str
    entity: str
    twoway: Callable[[str], TwoWaySync]
    review: Callable[[], ConflictReview]

    def __call__(self, batch: Sequence[Discrepancy], result: ApplyReport) -> None:
        sync, review = self.twoway(self.pair), self.review()
        for discrepancy in batch:
            try:
                outcome = sync.sync(discrepancy.key)
                if outcome.status in ("settled", "echo") and not outcome.writes:
                    outcome = self._restore(sync, discrepancy.key) or outcome
            except Exception as exc:
                result.rejected.append((discrepancy.key, f"{type(exc).__name__}: {exc}"[:300]))
                continue
            if outcome.status == "settled" and outcome.writes:
                result.resynced += 1
            elif outcome.status == "review":
                result.review.append(review.record(self.pair, self.entity, outcome).id)
            elif outcome.status == "busy":
                result.busy += 1
            else:
                result.unchanged += 1

    @staticmethod
    def _restore(sync: TwoWaySync, key: str) -> Outcome | None:
        copies = {system.name: system.read(key) for system in sync.systems}
        present = [copy for copy in copies.values() if copy is not None]
        if len(present) == len(copies) or len({fingerprint(copy.values) for copy in present}) != 1:
            return None  # nothing missing, or the copies left disagree: that is the policy's, done above
        expected = {name: copy.version if copy is not None else None for name, copy in copies.items()}
        try:
            return sync.apply(key, present[0].values, expected=expected)
        except RecordChanged:
            return Outcome(key, "busy")  # it moved meanwhile: its own notice settles it; the next compare tells


# -- one-way orders: a Shopify store -> the OMS ---------------------------------------------------------------
ORDER_ID_PREFIX = "gid://shopify/Order/"  # OMS orders from elsewhere (its own, other channels) are not compared


def _order_reconciliation(pair: Pair, labels: tuple[str, str], using: Collaborators) -> Reconciliation:
    from syncline.connectors.oms_pg import iter_pages  # noqa: PLC0415 - psycopg only where used
    from syncline.orders import order_sync  # noqa: PLC0415

    admin, oms = using.systems.shopify(pair.source), using.systems.order_target(pair.target)

    def store_pages(page_size: int) -> Iterator[list[Any]]:
        after: str | None = None
        while True:
            page = admin.orders_page(first=min(page_size, 10), after=after)  # 10 x 25 lines: well under the cost cap
            yield page.items
            if not page.has_next_page:
                return
            after = page.end_cursor

    def oms_pages(page_size: int) -> Iterator[list[Any]]:
        return iter_pages(lambda after: oms.page_orders(after, page_size))

    def worker(sink: Any) -> Any:
        return order_sync(
            pair.name,
            using.systems.order_source(pair.source),
            oms,
            sink,
            source_system=pair.source,
            publish=using.publish,
        )

    return Reconciliation(
        pair.name,
        pair.entity,
        OrderSide(store_pages, canonical=True),
        OrderSide(oms_pages, canonical=False),
        RecordRepair(pair.name, pair.source, pair.entity, worker),
        labels,
        {"missing_in_source": ORDER_NOT_IN_STORE.format(system=pair.source), "target_ahead": ORDER_AHEAD},
    )


def order_values(order: Any) -> dict[str, Any]:
    """What an order pair compares: the status (never backwards in the OMS), payment, total and the lines."""
    return {
        "status": str(getattr(order.status, "value", order.status)),
        "financial_status": order.financial_status,
        "total": order.total,
        "lines": ", ".join(sorted(f"{line.sku} x {format(line.quantity.normalize(), 'f')}" for line in order.lines)),
    }


@dataclass
class OrderSide:
    """Orders as (order id -> compared values, version); ``canonical``: pages of store orders to map first (an
    order that cannot be mapped, e.g. no line with a SKU, is unmappable), else canonical orders (the OMS)."""

    orders: Callable[[int], Iterator[list[Any]]]
    canonical: bool

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for orders in self.orders(page_size):
            page: list[Entry | Unmappable] = []
            for found in orders:
                if self.canonical:
                    try:
                        order = found.to_canonical()
                    except ValueError as exc:  # pydantic's ValidationError is one
                        page.append(Unmappable(str(found.id), str(exc).splitlines()[0][:300], str(found.id)))
                        continue
                else:
                    order = found
                    if not order.order_id.startswith(ORDER_ID_PREFIX):
                        continue
                page.append(Entry(order.order_id, order_values(order), order.source_version))
            yield page


@dataclass
class RecordRepair:
    """Re-runs the keys that differ through the pair's worker (``syncline.records.RecordSync``): each record is
    fetched fresh from its source and handed to the target's guarded write, as if its notice had just arrived.
    Records missing in the source and targets ahead are left (their notes say why)."""

    pair: str
    source: str
    entity: str
    worker: Callable[[Any], Any]  # a dead-letter sink -> the pair's RecordSync

    def __call__(self, batch: Sequence[Discrepancy], result: ApplyReport) -> None:
        from datetime import UTC, datetime  # noqa: PLC0415

        from syncline.models import ChangeNotice, NoticeBatch  # noqa: PLC0415

        keys = [d.key for d in batch if d.kind in ("missing_in_target", "mismatch")]
        result.left += len(batch) - len(keys)
        if not keys:
            return
        sink = _CollectingSink()
        now = datetime.now(UTC)
        notices = [
            ChangeNotice(source_system=self.source, entity=self.entity, key=key, observed_at=now) for key in keys
        ]
        body = NoticeBatch(source_system=self.source, entity=self.entity, notices=notices).model_dump_json()
        outcome = self.worker(sink)([("reconcile", f'{{"detail": {body}}}')])
        result.upserted += len(outcome.written)
        result.unchanged += len(outcome.skipped) + outcome.not_in_source
        result.rejected += [(letter.notice.key, letter.reason) for letter in sink.letters if hasattr(letter, "notice")]
        result.rejected += [("batch", failure) for failure in outcome.failures]


class _CollectingSink:
    """Dead letters of a repair are reported, not parked: the operator is watching."""

    def __init__(self) -> None:
        self.letters: list[Any] = []

    def send(self, letters: Sequence[Any]) -> None:
        self.letters.extend(letters)


# -- one-way shipments: the OMS -> a Shopify store's fulfilments ------------------------------------------------
def _shipment_reconciliation(pair: Pair, labels: tuple[str, str], using: Collaborators) -> Reconciliation:
    from syncline.connectors.oms_pg import OmsDatabase, iter_pages  # noqa: PLC0415 - psycopg only where used
    from syncline.shipments import shipment_sync  # noqa: PLC0415

    oms = OmsDatabase(using.systems.connection(pair.source))
    fulfilments = using.systems.fulfillment_target(pair.target)

    def shipments(page_size: int) -> Iterator[list[Any]]:
        return iter_pages(lambda after: oms.page_shipments(after, page_size))

    def worker(sink: Any) -> Any:
        return shipment_sync(
            pair.name,
            using.systems.shipment_source(pair.source),
            fulfilments,
            sink,
            source_system=pair.source,
            publish=using.publish,
        )

    return Reconciliation(
        pair.name,
        pair.entity,
        ShipmentSide(shipments),
        StoreFulfilmentSide(shipments, fulfilments.state),
        RecordRepair(pair.name, pair.source, pair.entity, worker),
        labels,
        {"missing_in_target": SHIPMENT_NOT_FULFILLED},
    )


SHIPPED_STATUSES = frozenset({"shipped", "delivered"})  # what the store is to show; pending ones are not its yet


@dataclass
class ShipmentSide:
    """The OMS's shipments the store should show as fulfilled."""

    shipments: Callable[[int], Iterator[list[Any]]]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for page in self.shipments(page_size):
            yield [Entry(s.shipment_id, {"fulfilled": True}) for s in page if s.status in SHIPPED_STATUSES]


@dataclass
class StoreFulfilmentSide:
    """Each of those shipments as the store shows it: there when its order is fulfilled or a fulfilment carries its
    tracking (``plan_fulfillment`` plans nothing); one read of the order's fulfilment state per order."""

    shipments: Callable[[int], Iterator[list[Any]]]
    state: Callable[[str], Mapping[str, Any] | None]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        from syncline.connectors.shopify import plan_fulfillment  # noqa: PLC0415 - httpx only where used

        states: dict[str, Mapping[str, Any] | None] = {}
        for page in self.shipments(page_size):
            found: list[Entry | Unmappable] = []
            for shipment in page:
                if shipment.status not in SHIPPED_STATUSES:
                    continue
                if shipment.order_id not in states:
                    states[shipment.order_id] = self.state(shipment.order_id)
                state = states[shipment.order_id]
                if state is not None and plan_fulfillment(state, shipment).skip is not None:
                    found.append(Entry(shipment.shipment_id, {"fulfilled": True}))
            yield found


# -- one-way prices: Sage 300 -> the storefront's prices table or a Shopify store's variants ---------------------
PRICE_NOT_IN_ERP = (
    "left: the ERP has no {price_list} price in {currency} for this SKU (deleted, or never priced there); the price "
    "worker never unpublishes a price, so remove it from {system} by hand if the item is no longer sold"
)
PRICE_NO_VARIANT = (
    "{system} shows no variant for this SKU's mapped inventory item (deleted there, or mapped wrongly: see "
    "`syncline map`); apply reports it unchanged: Syncline never creates variants"
)
PRICE_AHEAD = "left: {system} holds a newer ERP version of this price; its guarded upsert would refuse the older one"


class PriceReconcileSource(Protocol):
    def iter_prices(
        self, *, currency: str, price_lists: Sequence[str], page_size: int = ...
    ) -> Iterator[list[dict[str, Any]]]: ...

    def fetch_prices(
        self, items: Iterable[str], *, currency: str, price_lists: Sequence[str]
    ) -> list[dict[str, Any]]: ...


def price_values(base: Any, compare_at: Any) -> dict[str, Any]:
    """What a price pair compares: the price and the compare-at price, as plain decimal text (scales differ:
    the ERP's six places, Shopify's two)."""
    return {"price": _money(base), "compare_at": _money(compare_at)}


def _money(value: Any) -> str | None:
    return None if value is None else format(Decimal(str(value)).normalize(), "f")


def _price_reconciliation(
    config: SynclineConfig, pair: Pair, labels: tuple[str, str], using: Collaborators
) -> Reconciliation:
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    prices = PricePair.of(pair, ZoneInfo(config.systems[pair.source].timezone))
    erp: PriceReconcileSource = using.erp(pair.source)  # type: ignore[assignment]
    target = config.systems[pair.target]
    selection = prices.selection
    notes: dict[Kind, str] = {
        "missing_in_source": PRICE_NOT_IN_ERP.format(
            price_list=selection.price_list, currency=selection.currency, system=pair.target
        )
    }
    target_side: Side
    in_scope: Callable[[str], bool] = prices.accepts
    if isinstance(target, ShopifySystem):
        inventory_item = using.systems.shopify_inventory_item(pair.target)
        # The store only sells what the identity map names for it: other ERP prices are not its business.
        in_scope = lambda sku: prices.accepts(sku) and inventory_item(sku) is not None  # noqa: E731
        target_side = ShopifyPriceSide(lambda size: using.systems.shopify_prices(pair.target, size), prices.accepts)
        notes["missing_in_target"] = PRICE_NO_VARIANT.format(system=pair.target)
    else:
        storefront: Any = using.systems.price_target(pair.target)
        target_side = StorefrontPriceSide(storefront, selection.price_list, selection.currency, prices.accepts)
        notes["target_ahead"] = PRICE_AHEAD.format(system=pair.target)
    return Reconciliation(
        pair.name,
        pair.entity,
        ErpPriceSide(erp, prices, in_scope),
        target_side,
        PriceRepair(prices, erp, lambda: using.systems.price_target(pair.target), using.state),
        labels,
        notes,
    )


def _erp_prices(
    rows: Iterable[Mapping[str, Any]], pair: PricePair
) -> Iterator[tuple[str, Any, MappingError | ValueError | None]]:
    """Each item's canonical price from its ICPRICP rows: (sku, Price or None, the error that prevented it)."""
    by_item: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(str(row["ITEMNO"]), []).append(row)
    for sku, item_rows in by_item.items():
        try:
            yield sku, to_price(item_rows, pair.selection, pair.tz), None
        except (MappingError, ValueError) as exc:
            yield sku, None, exc


@dataclass
class ErpPriceSide:
    """The ERP's base prices on the pair's list and currency, mapped as the price worker maps them (``to_price``),
    for the SKUs the pair's filters (and, for Shopify, the identity map) let through."""

    reader: PriceReconcileSource
    pair: PricePair
    in_scope: Callable[[str], bool]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        selection = self.pair.selection
        for rows in self.reader.iter_prices(
            currency=selection.currency, price_lists=selection.price_lists, page_size=page_size
        ):
            page: list[Entry | Unmappable] = []
            for sku, price, error in _erp_prices(rows, self.pair):
                if not self.in_scope(sku):
                    continue
                if error is not None:
                    page.append(Unmappable(sku, str(error), sku))
                elif price is not None:  # None: priced on the compare-at list only, not on the pair's
                    page.append(Entry(sku, price_values(price.base, price.compare_at), price.source_version))
            yield page


@dataclass
class StorefrontPriceSide:
    """The storefront's prices of the pair's list and currency, with the ERP version each was written at."""

    storefront: Any  # PostgresStorefrontPrices
    price_list: str
    currency: str
    accepts: Callable[[str], bool]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for rows in self.storefront.iter_prices(
            price_list=self.price_list, currency=self.currency, page_size=page_size
        ):
            yield [
                Entry(sku, price_values(price, compare_at), version)
                for sku, price, compare_at, version in rows
                if self.accepts(sku)
            ]


@dataclass
class ShopifyPriceSide:
    """A store's variant prices, keyed by the identity map's SKU (Shopify keeps no ERP version)."""

    variants: Callable[[int], Iterator[list[tuple[str, Any]]]]
    accepts: Callable[[str], bool]

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        seen: set[str] = set()
        for page in self.variants(page_size):
            found: list[Entry | Unmappable] = []
            for sku, variant in page:
                if sku in seen or not self.accepts(sku):
                    continue
                seen.add(sku)
                found.append(Entry(sku, price_values(variant.price, variant.compare_at_price)))
            yield found


@dataclass
class PriceRepair:
    """Writes the *current* ERP prices of the SKUs that differ through the price worker's ``write_prices`` (the
    storefront's version guard, or Shopify's read-compare-write per product; then the state cache). Prices the ERP
    lacks and targets ahead are left: the worker never unpublishes a price, nor deletes in Shopify."""

    pair: PricePair
    source: PriceReconcileSource
    target: Callable[[], PriceTarget]
    state: Callable[[], ReconcileState]

    def __call__(self, batch: Sequence[Discrepancy], result: ApplyReport) -> None:
        skus = [d.key for d in batch if d.kind in ("missing_in_target", "mismatch")]
        result.left += len(batch) - len(skus)
        if not skus:
            return
        selection = self.pair.selection
        rows = self.source.fetch_prices(skus, currency=selection.currency, price_lists=selection.price_lists)
        current, rejected = [], 0
        for sku, price, error in _erp_prices(rows, self.pair):
            if error is not None:
                result.rejected.append((sku, str(error)))
                rejected += 1
            elif price is not None:
                current.append(price)
        accepted = write_prices(current, target=self.target(), state=self.state(), pair=self.pair.name)
        result.upserted += len(accepted)
        result.unchanged += len(skus) - len(accepted) - rejected  # agreeing already, newer there, or not sold there
