"""A configurable REST sandbox standing in for the long tail (a POS, a WMS, a custom ERP endpoint).

Collections of JSON records live under ``/api/{collection}``: ``GET`` lists (paged in the collection's style),
``GET …/{key}`` reads one (404 if absent), ``PUT …/{key}`` creates or replaces one, ``POST /api/{collection}``
upserts the record by its key field. Records may be wrapped in the request body (``wrap="item"``).

Pagination styles, each with its own body shape so a connector's declared paths are really exercised:
- ``none``: a bare JSON array;
- ``page``: ``?page=&per_page=`` → ``{"data": [...], "meta": {"page": n, "total": N}}``;
- ``offset``: ``?offset=&limit=`` → ``{"items": [...], "total": N}``;
- ``cursor``: ``?cursor=&limit=`` → ``{"results": [...], "next": {"cursor": "…" | null}}``;
- ``link``: ``?page=&limit=`` → a bare array and ``Link: <…>; rel="next"`` (``link_base`` overrides the host,
  to test that a connector refuses a foreign next link).

Auth: an API key header (``api_keys``), static bearer tokens (``bearer_tokens``) or OAuth2 client-credentials
tokens from ``POST /oauth/token`` (``tokens.clients``); with none configured the API is open.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlencode

from syncline.local.sandboxes.base import Reply, Request, Sandbox, route

PaginationStyle = Literal["none", "page", "offset", "cursor", "link"]
_COLLECTION = r"/api/(?P<collection>[a-z][a-z0-9_]*)"


@dataclass
class Collection:
    key: str = "id"
    pagination: PaginationStyle = "none"
    wrap: str | None = None  # write bodies hold the record under this top-level name
    required: tuple[str, ...] = ()  # fields a write must carry (else 422)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


class GenericRestSandbox(Sandbox):
    service: ClassVar[str] = "generic-rest"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        api_keys: Iterable[str] = (),
        api_key_header: str = "X-API-Key",
        bearer_tokens: Iterable[str] = (),
        max_page_size: int = 100,
        link_base: str | None = None,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.api_keys, self.api_key_header = set(api_keys), api_key_header.lower()
        self.bearer_tokens = set(bearer_tokens)
        self.max_page_size = max_page_size
        self.link_base = link_base
        self.collections: dict[str, Collection] = {}
        self.writes = 0
        self._cursors: dict[str, int] = {}  # opaque cursor -> offset

    def add_collection(
        self,
        name: str,
        records: Iterable[Mapping[str, Any]] = (),
        *,
        key: str = "id",
        pagination: PaginationStyle = "none",
        wrap: str | None = None,
        required: tuple[str, ...] = (),
    ) -> Collection:
        collection = Collection(key, pagination, wrap, required)
        for record in records:
            collection.records[str(record[key])] = dict(record)
        self.collections[name] = collection
        return collection

    # --- auth --------------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        if not (self.api_keys or self.bearer_tokens or self.tokens.clients):
            return True
        key = request.headers.get(self.api_key_header)
        if key is not None and any(secrets.compare_digest(key, k) for k in self.api_keys):
            return True
        token = request.bearer()
        if token is None:
            return False
        return any(secrets.compare_digest(token, t) for t in self.bearer_tokens) or self.tokens.valid(token)

    def _route(self, request: Request) -> Reply:
        if request.path != "/oauth/token" and not self._authorized(request):
            return Reply(401, {"error": "unauthorized", "message": "missing or invalid credentials"})
        return super()._route(request)

    @route("POST", r"/oauth/token")
    def token(self, request: Request) -> Reply:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        issued = self.tokens.issue(form.get("client_id", ""), form.get("client_secret", ""))
        if issued is None:
            return Reply(401, {"error": "invalid_client"})
        token, lifetime = issued
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    # --- records -----------------------------------------------------------------------------------------

    @route("GET", _COLLECTION)
    def list_records(self, request: Request) -> Reply:
        collection = self.collections.get(request.params["collection"])
        if collection is None:
            return self.not_found(request)
        with self.lock:
            records = list(collection.records.values())
        style = collection.pagination
        if style == "none":
            return Reply(200, records)
        size_name = "per_page" if style == "page" else "limit"
        size = _int(request.query.get(size_name, "25"))
        if size is None or not 1 <= size <= self.max_page_size:
            return Reply(400, {"error": f"{size_name} must be 1..{self.max_page_size}"})
        if style == "offset":
            return self._offset_page(request, records, size)
        if style == "cursor":
            return self._cursor_page(request, records, size)
        return self._numbered_page(request, records, size, link=style == "link")

    @staticmethod
    def _offset_page(request: Request, records: list[dict[str, Any]], size: int) -> Reply:
        offset = _int(request.query.get("offset", "0"))
        if offset is None:
            return Reply(400, {"error": "offset must be a whole number"})
        return Reply(200, {"items": records[offset : offset + size], "total": len(records)})

    def _cursor_page(self, request: Request, records: list[dict[str, Any]], size: int) -> Reply:
        cursor = request.query.get("cursor")
        with self.lock:
            start = 0 if not cursor else self._cursors.get(cursor)
            if start is None:
                return Reply(400, {"error": "invalid cursor"})
            following = None
            if start + size < len(records):
                following = secrets.token_urlsafe(8)
                self._cursors[following] = start + size
        return Reply(200, {"results": records[start : start + size], "next": {"cursor": following}})

    def _numbered_page(self, request: Request, records: list[dict[str, Any]], size: int, *, link: bool) -> Reply:
        page = _int(request.query.get("page", "1"))
        if page is None or page < 1:
            return Reply(400, {"error": "page must be 1 or more"})
        chunk = records[(page - 1) * size : page * size]
        if not link:
            return Reply(200, {"data": chunk, "meta": {"page": page, "per_page": size, "total": len(records)}})
        headers = {}
        if page * size < len(records):
            base = self.link_base or self.url
            query = urlencode({"page": page + 1, "limit": size})
            headers["Link"] = f'<{base}{request.path}?{query}>; rel="next", <{base}{request.path}?page=1>; rel="first"'
        return Reply(200, chunk, headers)

    @route("GET", rf"{_COLLECTION}/(?P<key>[^/]+)")
    def get_record(self, request: Request) -> Reply:
        collection = self.collections.get(request.params["collection"])
        key = unquote(request.params["key"])
        with self.lock:
            record = None if collection is None else collection.records.get(key)
        if record is None:
            return Reply(404, {"error": "not_found", "message": f"no record {key!r}"})
        return Reply(200, {"data": record})

    @route("PUT", rf"{_COLLECTION}/(?P<key>[^/]+)")
    def put_record(self, request: Request) -> Reply:
        return self._write(request, unquote(request.params["key"]))

    @route("POST", _COLLECTION)
    def post_record(self, request: Request) -> Reply:
        return self._write(request, None)

    def _write(self, request: Request, key: str | None) -> Reply:
        collection = self.collections.get(request.params["collection"])
        if collection is None:
            return self.not_found(request)
        try:
            body = request.json()
        except ValueError:
            return Reply(400, {"error": "body is not JSON"})
        record = body.get(collection.wrap) if collection.wrap and isinstance(body, dict) else body
        if not isinstance(record, dict):
            return Reply(
                400, {"error": "body must hold a record" + (f" under {collection.wrap!r}" if collection.wrap else "")}
            )
        key = key if key is not None else record.get(collection.key)
        if key is None or str(record.get(collection.key, key)) != str(key):
            return Reply(400, {"error": f"the record's {collection.key} must match the key"})
        missing = [name for name in collection.required if record.get(name) in (None, "")]
        if missing:
            return Reply(422, {"error": "validation_failed", "message": f"missing {', '.join(missing)}"})
        with self.lock:
            created = str(key) not in collection.records
            stored = {**record, collection.key: record.get(collection.key, key)}
            collection.records[str(key)] = stored
            self.writes += 1
        return Reply(201 if created else 200, {"data": stored})


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None
