"""HubSpot CRM (v3 objects API): contacts, companies and deals, read and written in batches of 100.

- Auth: a private-app access token from a callable (``Authorization: Bearer``), asked for on every attempt, so a
  rotated token is picked up; it never appears in a log, an error or a ``repr``.
- Rate limit: HubSpot counts requests per portal in a rolling window (``X-HubSpot-RateLimit-Max`` per
  ``-Interval-Milliseconds``, 10 s). ``WindowLimiter`` reads ``-Remaining`` from every response and holds the next
  request back when it reaches zero, until the oldest request it sent leaves the window; a 429 (HubSpot's usually
  has no ``Retry-After``) closes the window for a whole interval, and ``HttpApi`` retries it.
- Batches: ``batch_read`` by id or by a unique property (``idProperty``: email, a custom SKU-like property);
  ``batch_upsert`` by a unique property; ``batch_update`` by id. Records the service refused one by one (a 207
  Multi-Status) come back in ``BatchResult.errors`` with their ids, never as an exception for the whole batch.
- Lists: ``list_objects`` and ``search`` follow ``paging.next.after`` to the end.
- Mapping: ``ObjectMapping`` declares, as configuration, which HubSpot property feeds which canonical field of
  ``Contact``, ``Account`` or ``Deal`` and how its text is typed (``DEFAULT_MAPPINGS`` is the stock one).
- Webhooks: ``WebhookTranslator`` turns a v3 delivery (a JSON array of events) into ``ChangeNotice`` hints and drops
  the echoes of Syncline's own writes (``changeSource`` ``INTEGRATION`` with ``sourceId`` our app id), counted.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncline.canonical.entities import Account, Contact, Deal
from syncline.connectors.http import HttpApi, RetryPolicy, retry_after
from syncline.contacts import contact_key, contact_values
from syncline.models import ChangeNotice
from syncline.twoway import Copy, StaleWrite

HUBSPOT_API: Final = "https://api.hubapi.com"
BATCH_LIMIT: Final = 100  # inputs per batch call, HubSpot's limit
PAGE_LIMIT: Final = 100  # records per list/search page

Entity = Literal["contact", "company", "deal"]
CanonicalRecord = Contact | Account | Deal
OBJECT_TYPES: Final[Mapping[str, str]] = {"contact": "contacts", "company": "companies", "deal": "deals"}
# Generic ("object.*") webhook subscriptions name the type by id instead.
OBJECT_TYPE_IDS: Final[Mapping[str, str]] = {"0-1": "contact", "0-2": "company", "0-3": "deal"}
_MODELS: Final[Mapping[str, type[CanonicalRecord]]] = {"contact": Contact, "company": Account, "deal": Deal}
_ID_FIELDS: Final[Mapping[str, str]] = {"contact": "contact_id", "company": "account_id", "deal": "deal_id"}


# --- declared field mapping ----------------------------------------------------------------------------

PropertyType = Literal["str", "decimal", "int", "bool", "date", "datetime"]


class PropertyRule(BaseModel):
    """One HubSpot property ↔ one canonical field (``address.city`` for nested ones), with the value's type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1)
    type: PropertyType = "str"
    read_only: bool = Field(False, description="read into the record but never written (HubSpot computes it)")


class ObjectMapping(BaseModel):
    """How one HubSpot object type maps to its canonical entity. ``properties``: HubSpot name → rule, or the
    canonical field name alone for text. ``upsert_id_property``: the unique property writes are matched on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity: Entity
    properties: dict[str, PropertyRule]
    upsert_id_property: str | None = None

    @field_validator("properties", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {name: {"field": rule} if isinstance(rule, str) else rule for name, rule in value.items()}
        return value

    @property
    def object_type(self) -> str:
        return OBJECT_TYPES[self.entity]

    @property
    def model(self) -> type[CanonicalRecord]:
        return _MODELS[self.entity]

    def property_names(self) -> list[str]:
        return list(self.properties)

    def to_record(self, obj: HubSpotObject) -> CanonicalRecord:
        """The canonical record of a HubSpot object. ``source_version`` is ``updatedAt`` in epoch milliseconds:
        HubSpot has no record version, and its modification time only moves forward for one record."""
        values: dict[str, Any] = {_ID_FIELDS[self.entity]: obj.id, "updated_at": obj.updated_at}
        values["source_version"] = int(obj.updated_at.timestamp() * 1000)
        for name, rule in self.properties.items():
            parsed = parse_property(obj.properties.get(name), rule.type)
            if parsed is not None:
                _put(values, rule.field, parsed)
        return self.model.model_validate(values)

    def to_properties(
        self, record: CanonicalRecord | Mapping[str, Any], *, clear_missing: bool = False
    ) -> dict[str, str]:
        """HubSpot property values (all text) for a canonical record or a dict of its fields. An empty field is
        left out unless ``clear_missing``, which writes ``""`` (HubSpot's way to clear a property)."""
        values = record.model_dump(mode="python") if isinstance(record, BaseModel) else dict(record)
        out: dict[str, str] = {}
        for name, rule in self.properties.items():
            if rule.read_only:
                continue
            value = _get(values, rule.field)
            if value is None:
                if clear_missing:
                    out[name] = ""
                continue
            out[name] = format_property(value, rule.type)
        return out


def parse_property(value: str | None, kind: PropertyType) -> Any:
    """HubSpot sends every property as text (or null); empty text means unset."""
    if value is None or value == "":
        return None
    if kind == "decimal":
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a number: {value[:40]!r}") from None
    if kind == "int":
        return int(Decimal(value))
    if kind == "bool":
        return value.strip().lower() == "true"
    if kind in {"date", "datetime"}:
        moment = _parse_time(value)
        return moment.date() if kind == "date" else moment
    return value


def format_property(value: Any, kind: PropertyType) -> str:
    if kind == "bool":
        return "true" if value else "false"
    if kind == "date":
        # HubSpot date properties take midnight UTC of the day.
        day = value.date() if isinstance(value, datetime) else value
        return f"{day.isoformat()}T00:00:00.000Z" if isinstance(day, date) else str(value)
    if kind == "datetime" and isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _parse_time(value: str) -> datetime:
    text = value.strip()
    if text.isdigit():  # older properties hold epoch milliseconds
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _put(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = values
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _get(values: Mapping[str, Any], path: str) -> Any:
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


# Stock mapping, in the same form a sync pair's configuration declares it. Country is not mapped by default:
# HubSpot's is free text ("United States"), the canonical one an ISO code.
DEFAULT_MAPPINGS: Final[Mapping[str, ObjectMapping]] = {
    entity: ObjectMapping.model_validate(spec)
    for entity, spec in {
        "contact": {
            "entity": "contact",
            "upsert_id_property": "email",
            "properties": {
                "email": "email",
                "firstname": "first_name",
                "lastname": "last_name",
                "phone": "phone",
                "lifecyclestage": "lifecycle_stage",
                "associatedcompanyid": {"field": "account_id", "read_only": True},
                "address": "address.line1",
                "city": "address.city",
                "state": "address.region",
                "zip": "address.postal_code",
            },
        },
        "company": {
            "entity": "company",
            "properties": {
                "name": "name",
                "domain": "domain",
                "industry": "industry",
                "address": "address.line1",
                "city": "address.city",
                "state": "address.region",
                "zip": "address.postal_code",
            },
        },
        "deal": {
            "entity": "deal",
            "properties": {
                "dealname": "name",
                "dealstage": "stage",
                "amount": {"field": "amount", "type": "decimal"},
                "deal_currency_code": "currency",
                "closedate": {"field": "close_date", "type": "date"},
            },
        },
    }.items()
}


# --- API shapes ----------------------------------------------------------------------------------------


class HubSpotObject(BaseModel):
    """A CRM object as the v3 API returns it (every property value is text or null)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    archived: bool = False
    new: bool | None = None  # upsert only: whether the record was created


class BatchError(BaseModel):
    """One error of a batch: HubSpot's ``category``/``message`` and the inputs it concerns (``ids``)."""

    model_config = ConfigDict(extra="ignore")

    status: str = "error"
    category: str = "UNKNOWN"
    message: str = ""
    ids: list[str] = Field(default_factory=list)
    details: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> BatchError:
        context = body.get("context") or {}
        ids = context.get("ids") or context.get("id") or []
        return cls(
            status=str(body.get("status", "error")),
            category=str(body.get("category", "UNKNOWN")),
            message=str(body.get("message", ""))[:500],
            ids=[str(i) for i in (ids if isinstance(ids, list) else [ids])],
            details=[e for e in body.get("errors") or [] if isinstance(e, dict)],
        )


@dataclass
class BatchResult:
    """What a batch call (possibly split into several requests) did: the objects, and the per-record errors."""

    results: list[HubSpotObject] = field(default_factory=list)
    errors: list[BatchError] = field(default_factory=list)

    @property
    def failed_ids(self) -> set[str]:
        return {i for error in self.errors for i in error.ids}

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, body: Mapping[str, Any]) -> None:
        self.results.extend(HubSpotObject.model_validate(item) for item in body.get("results") or [])
        self.errors.extend(BatchError.from_body(item) for item in body.get("errors") or [])


@dataclass(frozen=True)
class UpsertInput:
    """One record to create or update, matched on ``id`` as the value of the call's unique ``idProperty``."""

    id: str
    properties: Mapping[str, str]


# --- rate limiting -------------------------------------------------------------------------------------

_MAX_HEADER: Final = "x-hubspot-ratelimit-max"
_REMAINING_HEADER: Final = "x-hubspot-ratelimit-remaining"
_INTERVAL_HEADER: Final = "x-hubspot-ratelimit-interval-milliseconds"
_DAILY_REMAINING_HEADER: Final = "x-hubspot-ratelimit-daily-remaining"


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class WindowLimiter:
    """Client side of HubSpot's rolling window, driven by the rate-limit headers of each response.

    Installed as httpx event hooks, so it sees every attempt, retries included: ``before`` waits while the window
    is known to be full, ``after`` reads ``Remaining``/``Interval-Milliseconds``. When the window is full the
    next slot opens as the oldest request this client sent in it ages out (other clients of the same portal can
    only have sent theirs earlier, or be inside the window, so waiting for our oldest is never too short for one
    slot); with none of ours in the window, it waits a whole interval. ``margin`` covers the delay between our
    clock and HubSpot's counting the request.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        interval: float = 10.0,
        margin: float = 0.05,
        reserve: int = 0,
    ) -> None:
        self.clock, self.sleep = clock, sleep
        self.interval, self.margin, self.reserve = interval, margin, reserve
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._closed_until = 0.0
        self.waits = 0  # times a request was held back
        self.waited = 0.0  # seconds held back in total
        self.throttled = 0  # 429 responses seen
        self.remaining: int | None = None
        self.limit: int | None = None
        self.daily_remaining: int | None = None

    def before(self, request: httpx.Request) -> None:
        with self._lock:
            wait = self._closed_until - self.clock()
            if wait > 0:
                self.waits += 1
                self.waited += wait
        if wait > 0:
            self.sleep(wait)
        with self._lock:
            now = self.clock()
            self._forget_before(now)
            self._sent.append(now)

    def _forget_before(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.interval:
            self._sent.popleft()

    def after(self, response: httpx.Response) -> None:
        headers = response.headers
        interval_ms = _int_header(headers, _INTERVAL_HEADER)
        with self._lock:
            if interval_ms:
                self.interval = interval_ms / 1000
            self.limit = _int_header(headers, _MAX_HEADER) or self.limit
            self.daily_remaining = _int_header(headers, _DAILY_REMAINING_HEADER)
            remaining = _int_header(headers, _REMAINING_HEADER)
            self.remaining = remaining
            now = self.clock()
            if response.status_code == 429:
                self.throttled += 1
                after = retry_after(headers)
                self._close(now + (after if after is not None else self.interval))
            elif remaining is not None and remaining <= self.reserve:
                self._forget_before(now)
                oldest = self._sent[0] if self._sent else now
                self._close(oldest + self.interval + self.margin)

    def _close(self, until: float) -> None:
        self._closed_until = max(self._closed_until, until)

    def install(self, client: httpx.Client) -> httpx.Client:
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [*hooks.get("request", []), self.before],
            "response": [*hooks.get("response", []), self.after],
        }
        return client


# --- the client ----------------------------------------------------------------------------------------


class HubSpotClient:
    """HubSpot CRM v3 for contacts, companies and deals; ``base_url`` points at the sandbox or ``HUBSPOT_API``."""

    def __init__(
        self,
        token: Callable[[], str],
        *,
        base_url: str = HUBSPOT_API,
        mappings: Mapping[str, ObjectMapping] = DEFAULT_MAPPINGS,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        limiter: WindowLimiter | None = None,
    ) -> None:
        self.limiter = limiter or WindowLimiter()
        http_client = self.limiter.install(client or httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0)))
        self._token = token
        self.http = HttpApi("hubspot", base_url, client=http_client, retry=retry, auth=self._auth)
        self.mappings = dict(mappings)

    def __repr__(self) -> str:  # never the token
        return f"HubSpotClient(base_url={self.http.base_url!r})"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"}

    def close(self) -> None:
        self.http.close()

    def mapping(self, entity: str) -> ObjectMapping:
        try:
            return self.mappings[entity]
        except KeyError:
            raise ValueError(f"no HubSpot mapping for entity {entity!r}; known: {sorted(self.mappings)}") from None

    def _path(self, entity: str, suffix: str = "") -> str:
        if entity not in OBJECT_TYPES:
            raise ValueError(f"unsupported HubSpot entity {entity!r}; use one of {sorted(OBJECT_TYPES)}")
        return f"/crm/v3/objects/{OBJECT_TYPES[entity]}{suffix}"

    def _properties(self, entity: str, properties: Sequence[str] | None) -> list[str]:
        if properties is not None:
            return list(properties)
        return self.mapping(entity).property_names() if entity in self.mappings else []

    # reads

    def batch_read(
        self,
        entity: str,
        ids: Iterable[str],
        *,
        id_property: str | None = None,
        properties: Sequence[str] | None = None,
    ) -> BatchResult:
        """Read records by HubSpot id, or by the values of a unique ``id_property``; 100 per request. Ids not
        found are in ``errors`` (category ``OBJECT_NOT_FOUND``)."""
        wanted = self._properties(entity, properties)
        if id_property and id_property not in wanted:
            wanted.append(id_property)  # so each result can be matched back to the value asked for
        result = BatchResult()
        for chunk in _chunks(list(dict.fromkeys(ids)), BATCH_LIMIT):
            body: dict[str, Any] = {"properties": wanted, "inputs": [{"id": i} for i in chunk]}
            if id_property:
                body["idProperty"] = id_property
            result.extend(self.http.json("POST", self._path(entity, "/batch/read"), json=body) or {})
        return result

    def list_objects(
        self, entity: str, *, properties: Sequence[str] | None = None, page_size: int = PAGE_LIMIT
    ) -> Iterator[HubSpotObject]:
        """Every record of a type, page by page (``paging.next.after``)."""
        params: dict[str, Any] = {"limit": min(page_size, PAGE_LIMIT)}
        wanted = self._properties(entity, properties)
        if wanted:
            params["properties"] = ",".join(wanted)
        after: str | None = None
        while True:
            page = (
                self.http.json("GET", self._path(entity), params={**params, **({"after": after} if after else {})})
                or {}
            )
            yield from (HubSpotObject.model_validate(item) for item in page.get("results") or [])
            after = _next_after(page)
            if after is None:
                return

    def search(
        self,
        entity: str,
        *,
        filter_groups: Sequence[Mapping[str, Any]] = (),
        sorts: Sequence[Mapping[str, Any]] = (),
        properties: Sequence[str] | None = None,
        page_size: int = PAGE_LIMIT,
    ) -> Iterator[HubSpotObject]:
        """Records matching ``filter_groups`` (OR of ANDed filters), all pages."""
        body: dict[str, Any] = {
            "filterGroups": list(filter_groups),
            "sorts": list(sorts),
            "properties": self._properties(entity, properties),
            "limit": min(page_size, PAGE_LIMIT),
        }
        while True:
            page = self.http.json("POST", self._path(entity, "/search"), json=body) or {}
            yield from (HubSpotObject.model_validate(item) for item in page.get("results") or [])
            after = _next_after(page)
            if after is None:
                return
            body["after"] = after

    # writes

    def batch_upsert(self, entity: str, inputs: Iterable[UpsertInput], *, id_property: str) -> BatchResult:
        """Create or update records matched on the unique ``id_property``; 100 per request. Records HubSpot
        refused are in ``errors`` with their ``id`` values; the others are written."""
        result = BatchResult()
        for chunk in _chunks(_last_per_id(inputs), BATCH_LIMIT):
            body = {
                "inputs": [{"id": i.id, "idProperty": id_property, "properties": dict(i.properties)} for i in chunk]
            }
            result.extend(self.http.json("POST", self._path(entity, "/batch/upsert"), json=body) or {})
        return result

    def batch_update(self, entity: str, inputs: Iterable[UpsertInput]) -> BatchResult:
        """Update existing records by HubSpot id; 100 per request. Unknown ids are in ``errors``."""
        result = BatchResult()
        for chunk in _chunks(_last_per_id(inputs), BATCH_LIMIT):
            body = {"inputs": [{"id": i.id, "properties": dict(i.properties)} for i in chunk]}
            result.extend(self.http.json("POST", self._path(entity, "/batch/update"), json=body) or {})
        return result

    # canonical records

    def read_records(
        self, entity: str, ids: Iterable[str], *, id_property: str | None = None
    ) -> dict[str, CanonicalRecord]:
        """Canonical records by HubSpot id (or by ``id_property`` value), keyed as asked; missing ones absent."""
        mapping = self.mapping(entity)
        result = self.batch_read(entity, ids, id_property=id_property)
        records: dict[str, CanonicalRecord] = {}
        for obj in result.results:
            key = obj.id if id_property is None else obj.properties.get(id_property)
            if key is not None:
                records[key] = mapping.to_record(obj)
        return records

    def upsert_records(
        self, entity: str, records: Iterable[CanonicalRecord], *, clear_missing: bool = False
    ) -> BatchResult:
        """Write canonical records, matched on the mapping's ``upsert_id_property`` (email for contacts)."""
        mapping = self.mapping(entity)
        id_property = mapping.upsert_id_property
        if not id_property:
            raise ValueError(f"the {entity} mapping declares no upsert_id_property (a unique HubSpot property)")
        inputs = []
        for record in records:
            properties = mapping.to_properties(record, clear_missing=clear_missing)
            match = properties.get(id_property)
            if not match:
                raise ValueError(f"{entity} record has no value for its upsert id property {id_property!r}")
            inputs.append(UpsertInput(match, properties))
        return self.batch_upsert(entity, inputs, id_property=id_property)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _last_per_id(inputs: Iterable[UpsertInput]) -> list[UpsertInput]:
    # HubSpot refuses a batch naming one record twice; the last write for an id is the one meant.
    return list({i.id: i for i in inputs}.values())


def _next_after(page: Mapping[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


# --- two-way sync adapter ------------------------------------------------------------------------------


@dataclass
class HubSpotRecordSystem:
    """``syncline.twoway.RecordSystem`` over HubSpot records of one entity, keyed by HubSpot id.

    HubSpot has no compare-and-swap: ``write`` re-reads the record and refuses (``StaleWrite``) when its
    ``updatedAt`` version moved past ``expected_version``. The gap between that read and the write is HubSpot's
    to close; the engine's lease and echo check cover Syncline's own writers.
    """

    client: HubSpotClient
    entity: str
    name: str = "hubspot"

    def read(self, key: str) -> Copy | None:
        record = self.client.read_records(self.entity, [key]).get(key)
        return None if record is None else self._copy(record)

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        current = self.read(key)
        if current is None or (expected_version is not None and current.version != expected_version):
            raise StaleWrite(f"hubspot {self.entity} {key} moved on before our write")
        properties = self.client.mapping(self.entity).to_properties(values, clear_missing=True)
        result = self.client.batch_update(self.entity, [UpsertInput(key, properties)])
        if not result.ok or not result.results:
            first = result.errors[0] if result.errors else None
            raise StaleWrite(f"hubspot {self.entity} {key} refused: {first.category if first else 'no result'}")
        return self._copy(self.client.mapping(self.entity).to_record(result.results[0]))

    def _copy(self, record: CanonicalRecord) -> Copy:
        id_field = _ID_FIELDS[self.entity]
        values = record.model_dump(mode="json", exclude={id_field, "updated_at", "source_version"})
        return Copy(values=values, changed_at=record.updated_at, version=record.source_version)


class RecordRefused(RuntimeError):
    """HubSpot refused a record itself (a 207 validation error): no retry will change that."""

    retryable = False


@dataclass
class HubSpotContactsByEmail:
    """``syncline.twoway.RecordSystem`` over HubSpot contacts keyed by e-mail (lower-cased), the key they share
    with OMS customers (``syncline.contacts``).

    Reads are one batch read with ``idProperty=email``; writes a batch upsert by e-mail. As in
    ``HubSpotRecordSystem``, HubSpot has no compare-and-swap: ``write`` re-reads first and refuses (``StaleWrite``)
    when the contact's ``updatedAt`` version moved past ``expected_version``, or appeared when it was expected
    absent.
    """

    client: HubSpotClient
    name: str = "hubspot"

    def read(self, key: str) -> Copy | None:
        result = self.client.batch_read("contact", [key], id_property="email")
        found = [obj for obj in result.results if contact_key(obj.properties.get("email")) == key]
        return self._copy(found[0]) if found else None

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        current = self.read(key)
        if (current is None) != (expected_version is None) or (
            current is not None and current.version != expected_version
        ):
            raise StaleWrite(f"{self.name}: contact {key} moved on before our write")
        mapping = self.client.mapping("contact")
        properties = mapping.to_properties({**values, "email": key}, clear_missing=True)
        result = self.client.batch_upsert("contact", [UpsertInput(key, properties)], id_property="email")
        if not result.ok or not result.results:
            first = result.errors[0] if result.errors else None
            reason = f"{first.category}: {first.message}" if first else "no result"
            raise RecordRefused(f"{self.name}: contact {key} refused: {reason}"[:500])
        return self._copy(result.results[0])

    def iter_copies(self, page_size: int = PAGE_LIMIT) -> Iterator[list[tuple[str, Copy]]]:
        """Every contact with an e-mail, keyed by it, page by page (reconcile's full compare)."""
        page: list[tuple[str, Copy]] = []
        for obj in self.client.list_objects("contact", page_size=page_size):
            key = contact_key(obj.properties.get("email"))
            if key is not None:
                page.append((key, self._copy(obj)))
            if len(page) >= page_size:
                yield page
                page = []
        yield page

    def key_of(self, object_id: str) -> str | None:
        """The pair's key (e-mail) of the contact a webhook names by its HubSpot id; None if gone or without one."""
        result = self.client.batch_read("contact", [object_id], properties=["email"])
        return next((contact_key(obj.properties.get("email")) for obj in result.results if obj.id == object_id), None)

    def _copy(self, obj: HubSpotObject) -> Copy:
        record = self.client.mapping("contact").to_record(obj)
        values = contact_values(record.model_dump(mode="json"))
        return Copy(values=values, changed_at=record.updated_at, version=record.source_version)


# --- webhooks ------------------------------------------------------------------------------------------

_DELETE_EVENTS: Final = frozenset({"deletion", "privacyDeletion"})
_UPSERT_EVENTS: Final = frozenset({"creation", "propertyChange", "restore"})


@dataclass
class WebhookTranslator:
    """HubSpot webhook v3 events → ``ChangeNotice`` hints, one per changed record, echoes dropped.

    An event is Syncline's own echo when its ``changeSource`` is one of ``echo_change_sources`` and its
    ``sourceId`` names our app (``app_id``); it is counted in ``stats["echo"]`` and produces nothing. Events for
    other object types, or kinds that change no record field (association changes), count as ``ignored``.
    """

    app_id: str | None = None
    source_system: str = "hubspot"
    echo_change_sources: frozenset[str] = frozenset({"INTEGRATION", "API"})
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stats: Counter[str] = field(default_factory=Counter)

    def is_echo(self, event: Mapping[str, Any]) -> bool:
        if self.app_id is None or str(event.get("changeSource", "")).upper() not in self.echo_change_sources:
            return False
        source_id = str(event.get("sourceId", ""))
        # HubSpot writes an app's id bare or as "<prefix>:<id>"; match the id part exactly.
        return source_id == self.app_id or source_id.rpartition(":")[2] == self.app_id

    def notices(self, payload: bytes | str | Sequence[Mapping[str, Any]]) -> list[ChangeNotice]:
        """The notices of one delivery (raw body or parsed array). The latest event per record decides."""
        try:
            events = json.loads(payload) if isinstance(payload, bytes | str) else payload
        except RecursionError:
            raise ValueError("a HubSpot webhook body nests too deeply") from None
        if not isinstance(events, list):
            raise ValueError("a HubSpot webhook body is a JSON array of events")
        now = self.clock()
        latest: dict[tuple[str, str], tuple[int, ChangeNotice]] = {}
        for event in events:
            if not isinstance(event, Mapping):
                self.stats["malformed"] += 1
                continue
            if self.is_echo(event):
                self.stats["echo"] += 1
                continue
            try:
                found = list(self._notices_of(event, now))
            except ValueError:  # a mistyped id or list: this event is set aside, the others still count
                self.stats["malformed"] += 1
                continue
            self.stats["ignored" if not found else "accepted"] += 1
            for occurred, notice in found:
                slot = (notice.entity, notice.key)
                if slot not in latest or occurred >= latest[slot][0]:
                    latest[slot] = (occurred, notice)
        return [notice for _, notice in latest.values()]

    def _notices_of(self, event: Mapping[str, Any], now: datetime) -> Iterator[tuple[int, ChangeNotice]]:
        kind = str(event.get("subscriptionType") or event.get("eventType") or "")
        prefix, _, action = kind.partition(".")
        entity = OBJECT_TYPE_IDS.get(str(event.get("objectTypeId", ""))) if prefix == "object" else prefix
        if entity not in OBJECT_TYPES:
            return
        triggered = _from_millis(event.get("occurredAt"))
        occurred_ms = round(triggered.timestamp() * 1000) if triggered is not None else 0
        delivery = f"{event.get('eventId')}-{occurred_ms}" if event.get("eventId") is not None else None

        def notice(key: Any, operation: Literal["upsert", "delete"]) -> tuple[int, ChangeNotice]:
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise ValueError(f"{entity} id {key!r:.40} is not a string or an integer")
            return occurred_ms, ChangeNotice(
                source_system=self.source_system,
                entity=entity,
                key=str(key),
                operation=operation,
                observed_at=now,
                delivery_id=delivery,
                triggered_at=triggered,
            )

        if action == "merge":
            merged_ids = event.get("mergedObjectIds") or []
            if not isinstance(merged_ids, list):
                raise ValueError("mergedObjectIds is not a list")
            if event.get("primaryObjectId") is not None:
                yield notice(event["primaryObjectId"], "upsert")
            for merged in merged_ids:
                yield notice(merged, "delete")
            return
        if event.get("objectId") is None:
            return
        if action in _DELETE_EVENTS:
            yield notice(event["objectId"], "delete")
        elif action in _UPSERT_EVENTS:
            yield notice(event["objectId"], "upsert")


def _from_millis(value: Any) -> datetime | None:
    """An epoch-milliseconds time, or None when it is missing, not a finite number or out of range."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None
    except (OverflowError, OSError, ValueError):
        return None
