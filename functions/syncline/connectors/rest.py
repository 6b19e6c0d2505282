"""A generic REST connector for the long tail (a POS, a WMS, a custom ERP endpoint), declared, not coded.

A system is a ``RestSystemConfig``: its base URL, its auth (``none``, an API key header, a bearer token, or OAuth2
through a token callable such as the one ``syncline.connectors.oauth2`` provides), and per entity
(``RestEntityConfig``) the endpoints to list, get and upsert records (paths with ``{key}`` templates and a method),
the pagination style of the list (page number, offset/limit, a cursor found in the body, or the ``Link`` header's
``rel="next"``) and the field mapping: canonical field → dotted path in the system's JSON, with a simple type
(``str``, ``int``, ``decimal``, ``bool``, ``upper``, ``lower``).

Every request goes through ``HttpApi`` (timeouts, retries on 429/5xx/dropped connections, no retry on other 4xx).
The credential is asked for on every attempt and never logged. A ``Link`` to another origin is refused, so the
credential is never sent to a host the configuration did not name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from urllib.parse import quote, urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from syncline.connectors.http import ApiError, HttpApi, RetryPolicy
from syncline.models import InventoryLevel
from syncline.twoway import Copy, StaleWrite

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Transform = Literal["str", "int", "decimal", "bool", "upper", "lower"]
_MAX_PAGES: Final = 100_000


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RestAuthConfig(_Config):
    """How requests are authenticated. The secret itself is never here: the connector gets a callable."""

    kind: Literal["none", "api_key", "bearer", "oauth2"] = "none"
    header: str = Field("X-API-Key", description="api_key: the header carrying the key")
    prefix: str = Field("", description="api_key: text before the key in the header (e.g. 'Token ')")


class RestEndpointConfig(_Config):
    """One call: ``path`` relative to the base URL, with ``{key}`` where the record's key goes (URL-escaped)."""

    path: str = Field(min_length=1)
    method: Method = "GET"
    query: dict[str, str] = Field(default_factory=dict, description="fixed query parameters")
    records_path: str | None = Field(None, description="list: dotted path of the array in the body (None: the body)")
    record_path: str | None = Field(None, description="get/upsert answer: dotted path of the record (None: the body)")
    body_path: str | None = Field(None, description="upsert: wrap the record under this dotted path in the body")


class PaginationConfig(_Config):
    """How a list endpoint pages. ``page``: ``page_param``=1,2,…; ``offset``: ``offset_param``=0,n,2n,…; both stop at
    a short or empty page (or at ``total_path`` when the body has a total). ``cursor``: the next cursor is read at
    ``cursor_path`` in the body and sent as ``cursor_param``; ``link``: the ``Link`` header's ``rel="next"`` URL."""

    style: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_size: int = Field(100, ge=1, le=10_000)
    size_param: str = "limit"
    page_param: str = "page"
    first_page: int = 1
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    total_path: str | None = None
    max_pages: int = Field(_MAX_PAGES, ge=1)

    @model_validator(mode="after")
    def _cursor_needs_a_path(self) -> PaginationConfig:
        if self.style == "cursor" and not self.cursor_path:
            raise ValueError("cursor pagination needs cursor_path (where the next cursor is in the body)")
        return self


class FieldRule(_Config):
    """Where a canonical field comes from (dotted ``source`` path) and its type."""

    source: str = Field(min_length=1)
    transform: Transform = "str"


class RestEntityConfig(_Config):
    """One entity of the system. ``fields``: canonical field → rule, or the dotted source path alone for text."""

    key_field: str = Field(min_length=1, description="the canonical field holding the record's key")
    fields: dict[str, FieldRule]
    list: RestEndpointConfig | None = None
    get: RestEndpointConfig | None = None
    upsert: RestEndpointConfig | None = None
    pagination: PaginationConfig = PaginationConfig()

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {name: {"source": rule} if isinstance(rule, str) else rule for name, rule in value.items()}
        return value

    @model_validator(mode="after")
    def _key_is_mapped(self) -> RestEntityConfig:
        if self.key_field not in self.fields:
            raise ValueError(f"key_field {self.key_field!r} is not one of the mapped fields")
        return self

    def to_canonical(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical fields of one source record (absent or null source values are left out)."""
        out: dict[str, Any] = {}
        for name, rule in self.fields.items():
            value = get_path(raw, rule.source)
            if value is not None:
                out[name] = convert(value, rule.transform)
        return out

    def to_source(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The source JSON for a canonical record (a ``None`` field is sent as null)."""
        out: dict[str, Any] = {}
        for name, rule in self.fields.items():
            if name in record:
                value = record[name]
                set_path(out, rule.source, None if value is None else convert(value, rule.transform, outbound=True))
        return out


class RestSystemConfig(_Config):
    """A REST system: where it is, how it authenticates, and its entities."""

    system: str = Field(min_length=1, description="the system's name in notices and errors")
    base_url: str = Field(pattern=r"^https?://")
    auth: RestAuthConfig = RestAuthConfig()
    entities: dict[str, RestEntityConfig]


# --- pure helpers --------------------------------------------------------------------------------------


def get_path(document: Any, path: str | None) -> Any:
    """The value at a dotted path (``a.b.0.c``; digits index arrays), or None when any step is missing."""
    if path is None:
        return document
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = document
    for part in parents:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"cannot set {path!r}: {part!r} is not an object")
        target = child
    target[leaf] = value


def convert(value: Any, transform: Transform, *, outbound: bool = False) -> Any:
    """Apply a field's type. Decimals go out as text, so money keeps every digit through JSON."""
    if transform == "int":
        number = Decimal(str(value))
        if number != number.to_integral_value():
            raise ValueError(f"not a whole number: {str(value)[:40]!r}")
        return int(number)
    if transform == "decimal":
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"not a number: {str(value)[:40]!r}") from None
        return format(number, "f") if outbound else number
    if transform == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() in {"true", "1", "yes", "y"}
    text = str(value)
    if transform == "upper":
        return text.upper()
    if transform == "lower":
        return text.lower()
    return text


def fill_path(template: str, key: str | None) -> str:
    """``template`` with ``{key}`` replaced by the URL-escaped key (a '/' in a key cannot change the path)."""
    if "{key}" in template:
        if key is None:
            raise ValueError(f"path {template!r} needs a key")
        return template.replace("{key}", quote(key, safe=""))
    return template


def same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


# --- the connector -------------------------------------------------------------------------------------


class RestConnector:
    """Reads and writes a declared REST system. ``credential`` returns the API key or the bearer/OAuth2 access
    token, and is called for every attempt (so a refreshed token is used); ``on_unauthorized`` (e.g. the OAuth2
    provider's invalidate) is called once on a 401 before one retry."""

    def __init__(
        self,
        config: RestSystemConfig,
        *,
        credential: Callable[[], str] | None = None,
        on_unauthorized: Callable[[], None] | None = None,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if config.auth.kind != "none" and credential is None:
            raise ValueError(f"{config.system}: auth {config.auth.kind!r} needs a credential callable")
        self.config = config
        self._credential = credential
        self.http = HttpApi(
            config.system,
            config.base_url,
            client=client,
            retry=retry,
            auth=self._auth_headers,
            on_unauthorized=on_unauthorized,
        )

    def __repr__(self) -> str:  # never the credential
        return f"RestConnector(system={self.config.system!r}, base_url={self.config.base_url!r})"

    def _auth_headers(self) -> dict[str, str]:
        auth = self.config.auth
        if auth.kind == "none" or self._credential is None:
            return {}
        if auth.kind == "api_key":
            return {auth.header: f"{auth.prefix}{self._credential()}"}
        return {"Authorization": f"Bearer {self._credential()}"}

    def close(self) -> None:
        self.http.close()

    def entity(self, name: str) -> RestEntityConfig:
        try:
            return self.config.entities[name]
        except KeyError:
            raise ValueError(f"{self.config.system}: no entity {name!r}") from None

    def _endpoint(self, entity: str, kind: Literal["list", "get", "upsert"]) -> RestEndpointConfig:
        endpoint: RestEndpointConfig | None = getattr(self.entity(entity), kind)
        if endpoint is None:
            raise ValueError(f"{self.config.system}: entity {entity!r} declares no {kind} endpoint")
        return endpoint

    # reads

    def raw_records(self, entity: str) -> Iterator[dict[str, Any]]:
        """Every source record of ``entity``, following the declared pagination."""
        endpoint, paging = self._endpoint(entity, "list"), self.entity(entity).pagination
        url: str = fill_path(endpoint.path, None)
        params: dict[str, Any] = dict(endpoint.query)
        if paging.style in {"page", "offset", "cursor", "link"}:
            params[paging.size_param] = paging.page_size
        if paging.style == "page":
            params[paging.page_param] = paging.first_page
        elif paging.style == "offset":
            params[paging.offset_param] = 0
        seen = 0
        for _ in range(paging.max_pages):
            # httpx drops a URL's own query when given params, even empty ones: a next link keeps its query.
            response = self.http.request(endpoint.method, url, **({"params": params} if params else {}))
            body = response.json() if response.content else None
            records = get_path(body, endpoint.records_path) or []
            if not isinstance(records, list):
                raise ApiError(self.config.system, response.status_code, "list body holds no array", retryable=False)
            yield from (r for r in records if isinstance(r, dict))
            seen += len(records)
            following = self._next(paging, response, body, params, records, seen)
            if following is None:
                return
            if following == (str(response.request.url), {}) or following == (url, params):
                raise ApiError(self.config.system, None, "pagination does not advance: giving up", retryable=False)
            url, params = following
        raise ApiError(self.config.system, None, f"more than {paging.max_pages} pages: giving up", retryable=False)

    def _next(
        self,
        paging: PaginationConfig,
        response: httpx.Response,
        body: Any,
        params: dict[str, Any],
        records: list[Any],
        seen: int,
    ) -> tuple[str, dict[str, Any]] | None:
        """The next request (URL and query) of a list, or None at its end."""
        if paging.style == "none" or not records:
            return None
        here = str(response.request.url.copy_with(query=None))
        if paging.style == "cursor":
            cursor = get_path(body, paging.cursor_path)
            return None if cursor in (None, "") else (here, {**params, paging.cursor_param: cursor})
        if paging.style == "link":
            return self._next_link(response)
        total = get_path(body, paging.total_path) if paging.total_path else None
        if (total is not None and seen >= int(total)) or (total is None and len(records) < paging.page_size):
            return None
        if paging.style == "page":
            return here, {**params, paging.page_param: params[paging.page_param] + 1}
        return here, {**params, paging.offset_param: params[paging.offset_param] + len(records)}

    def _next_link(self, response: httpx.Response) -> tuple[str, dict[str, Any]] | None:
        following = response.links.get("next", {}).get("url")
        if not following:
            return None
        absolute = urljoin(str(response.request.url), following)
        if not same_origin(absolute, self.config.base_url):
            raise ApiError(self.config.system, None, "Link rel=next points at another origin", retryable=False)
        return absolute, {}  # the next URL carries its own query

    def records(self, entity: str) -> Iterator[dict[str, Any]]:
        """Every record of ``entity`` as canonical fields."""
        config = self.entity(entity)
        return (config.to_canonical(raw) for raw in self.raw_records(entity))

    def get(self, entity: str, key: str) -> dict[str, Any] | None:
        """One record as canonical fields, or None when the system answers 404."""
        endpoint = self._endpoint(entity, "get")
        try:
            response = self.http.request(endpoint.method, fill_path(endpoint.path, key), params=dict(endpoint.query))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        raw = get_path(response.json() if response.content else None, endpoint.record_path)
        return self.entity(entity).to_canonical(raw) if isinstance(raw, Mapping) else None

    # writes

    def upsert(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """Send one canonical record to the upsert endpoint; returns the stored record's canonical fields when
        the system answers with it."""
        config, endpoint = self.entity(entity), self._endpoint(entity, "upsert")
        key = record.get(config.key_field)
        payload: dict[str, Any] = config.to_source(record)
        if endpoint.body_path:
            wrapped: dict[str, Any] = {}
            set_path(wrapped, endpoint.body_path, payload)
            payload = wrapped
        path = fill_path(endpoint.path, None if key is None else str(key))
        response = self.http.request(endpoint.method, path, params=dict(endpoint.query), json=payload)
        raw = get_path(response.json() if response.content else None, endpoint.record_path)
        return config.to_canonical(raw) if isinstance(raw, Mapping) else None


# --- a one-way inventory target ------------------------------------------------------------------------

INVENTORY_ENTITY: Final = "inventory_level"


class RestInventoryTarget:
    """``InventoryTarget`` over a declared REST system's ``inventory_level`` entity (a POS, a WMS).

    Each level is sent as its canonical fields (``sku``, ``location``, ``on_hand``, ``available``, ...,
    ``source_version``, and ``key``: ``SKU|LOCATION``) through the entity's field mapping to its ``upsert``
    endpoint, one request per level. What it can guarantee is what a generic API allows:
    - idempotent: a ``PUT`` to a path holding ``{key}`` replaces the same record however often it is sent;
    - guarded against older data only as far as the API shows versions: with a ``get`` endpoint mapping
      ``source_version``, a level the system already holds at a newer version is not sent (a read, then a write:
      not atomic; a concurrent writer between the two can still be overwritten, which the next change repairs);
      without one, Syncline's state cache is the only guard (it skips versions older than the last it wrote);
    - a request the API refuses (a 4xx other than 408/429) is not retried: the level is reported in ``refused``
      with the reason, and the worker parks it in the DLQ; 429 and 5xx are retried, then fail the batch.
    """

    def __init__(self, connector: RestConnector, entity: str = INVENTORY_ENTITY) -> None:
        self.connector, self.entity = connector, entity
        self.refused: dict[str, str] = {}
        config = connector.entity(entity)
        if config.upsert is None:
            raise ValueError(f"{connector.config.system}: entity {entity!r} declares no upsert endpoint")
        self._guarded = config.get is not None and "source_version" in config.fields

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        self.refused = {}
        written: set[str] = set()
        for level in levels:
            record = {**level.model_dump(mode="json"), "key": level.key}
            try:
                if self._guarded and self._holds_newer(level):
                    continue
                self.connector.upsert(self.entity, record)
            except ApiError as exc:
                if exc.retryable:
                    raise
                self.refused[level.key] = f"{self.connector.config.system} refused {level.key}: {exc}"[:500]
                continue
            written.add(level.key)
        return written

    def _holds_newer(self, level: InventoryLevel) -> bool:
        current = self.connector.get(self.entity, level.key)
        version = (current or {}).get("source_version")
        return version is not None and int(version) > level.source_version


# --- two-way records -----------------------------------------------------------------------------------

_META_FIELDS: Final = ("source_version", "updated_at")


class RestRecords:
    """``syncline.twoway.RecordSystem`` over one declared entity of a REST system, polled for changes.

    A copy's values are its canonical fields less the key and ``source_version`` / ``updated_at``; its time is the
    mapped ``updated_at``; its version the mapped ``source_version`` when there is one. A generic API offers no
    compare-and-swap: ``write`` re-reads first and refuses (``StaleWrite``) when the record moved past the version
    read, or appeared or vanished; without a version the engine's fingerprint check is the only guard, and a
    writer between the re-read and the write can be overwritten (the next poll sees its change again only if it
    differs from ours).
    """

    def __init__(self, connector: RestConnector, entity: str, *, name: str) -> None:
        self.connector, self.entity, self.name = connector, entity, name
        self._key_field = connector.entity(entity).key_field

    def read(self, key: str) -> Copy | None:
        record = self.connector.get(self.entity, key)
        return self.copy(record) if record is not None else None

    def copy(self, record: Mapping[str, Any]) -> Copy:
        """A canonical record as the copy two-way sync compares."""
        values = {k: _plain(v) for k, v in record.items() if k not in (*_META_FIELDS, self._key_field)}
        version = record.get("source_version")
        return Copy(values, _when(record.get("updated_at")), int(version) if version is not None else None)

    def iter_copies(self, page_size: int = 500) -> Iterator[list[tuple[str, Copy]]]:
        """Every record the declared list endpoint returns (its own pagination), keyed by the mapped key, in pages
        of ``page_size`` (reconcile's full compare). Records without a key are not Syncline's to compare."""
        page: list[tuple[str, Copy]] = []
        for record in self.connector.records(self.entity):
            key = record.get(self._key_field)
            if key in (None, ""):
                continue
            page.append((str(key), self.copy(record)))
            if len(page) >= page_size:
                yield page
                page = []
        yield page

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        current = self.read(key)
        moved = (current is None and expected_version is not None) or (
            current is not None and current.version is not None and current.version != expected_version
        )
        if moved:
            raise StaleWrite(f"{self.name}: {self.entity} {key} moved on before our write")
        record = {
            **{k: v for k, v in values.items() if k not in _META_FIELDS},
            self._key_field: key,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        self.connector.upsert(self.entity, record)
        stored = self.read(key)
        if stored is None:
            raise StaleWrite(f"{self.name}: {self.entity} {key} is gone after our write")
        return stored


def _plain(value: Any) -> Any:
    """JSON-comparable: a Decimal as its text, so a copy read back equals what was written."""
    return format(value, "f") if isinstance(value, Decimal) else value


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if value in (None, ""):
        return datetime.fromtimestamp(0, UTC)  # no time: it never wins a last-writer-wins decision
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
