"""A HubSpot CRM v3 sandbox: contacts, companies and deals, the endpoints Syncline uses, HubSpot's shapes.

- Auth: private-app bearer tokens (``add_app(token, app_id)``); anything else gets HubSpot's 401 body
  (``category: INVALID_AUTHENTICATION``). Every error body has ``status``, ``message``, ``correlationId``, ``category``.
- Rate limit: a rolling window per portal (``window_max`` requests per ``window_ms``, default 100 per 10 s) and a
  daily budget. Every answer carries ``X-HubSpot-RateLimit-Max``/``-Remaining``/``-Interval-Milliseconds``/
  ``-Daily``/``-Daily-Remaining``; a request over the window gets a 429 with the ``TEN_SECONDLY_ROLLING`` body and no
  ``Retry-After``, like HubSpot's. ``clock`` is injectable so a test can drive the window without waiting.
- Endpoints: ``POST …/batch/read`` (by id or ``idProperty``), ``…/batch/upsert`` (by a unique ``idProperty``),
  ``…/batch/update`` (by id), ``GET /crm/v3/objects/{type}`` (``limit``/``after``) and ``POST …/search``
  (``filterGroups``, ``sorts``, ``after``). Per-record problems (unknown property, bad number or e-mail, read-only
  property, unknown id) answer 207 with ``errors[].context.ids``; request problems answer 400.
- Webhooks v3: every change queues an event (``contact.creation``, ``contact.propertyChange`` per property,
  ``contact.deletion``…) with ``changeSource``/``sourceId`` = ``INTEGRATION``/the writer's app id for API writes and
  ``CRM_UI``/a user for ``user_edit``. ``flush_webhooks`` delivers them as arrays of up to ``webhook_batch``,
  signed by the subscription's scheme (``hubspot``: v3 signature) through ``Sandbox.deliver``; with
  ``auto_deliver`` each write request flushes before it answers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

from syncline.local.sandboxes.base import Reply, Request, Sandbox, route

_TYPES: Final = "(?P<object_type>contacts|companies|deals)"
ENTITY_OF: Final[Mapping[str, str]] = {"contacts": "contact", "companies": "company", "deals": "deal"}
TYPE_OF: Final[Mapping[str, str]] = {entity: object_type for object_type, entity in ENTITY_OF.items()}
_SUBSCRIPTION_IDS: Final[Mapping[str, int]] = {"contact": 1001, "company": 1002, "deal": 1003}
_LAST_MODIFIED: Final[Mapping[str, str]] = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
_READ_ONLY: Final = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"})
_TEXT = "string"
_NUMBER = "number"
_DATETIME = "datetime"

# Property name -> type, per object type (the subset of HubSpot's defaults Syncline maps, plus custom ids).
DEFAULT_SCHEMA: Final[Mapping[str, Mapping[str, str]]] = {
    "contacts": {
        **dict.fromkeys(
            ["email", "firstname", "lastname", "phone", "lifecyclestage", "address", "city", "state", "zip", "country"],
            _TEXT,
        ),
        "associatedcompanyid": _NUMBER,
        "erp_customer_id": _TEXT,
    },
    "companies": {
        **dict.fromkeys(["name", "domain", "industry", "address", "city", "state", "zip", "country"], _TEXT),
        "erp_account_id": _TEXT,
    },
    "deals": {
        **dict.fromkeys(["dealname", "dealstage", "pipeline", "deal_currency_code", "erp_deal_id"], _TEXT),
        "amount": _NUMBER,
        "closedate": _DATETIME,
    },
}
# Properties whose values are unique per object type (usable as idProperty).
DEFAULT_UNIQUE: Final[Mapping[str, frozenset[str]]] = {
    "contacts": frozenset({"email", "erp_customer_id"}),
    "companies": frozenset({"erp_account_id"}),
    "deals": frozenset({"erp_deal_id"}),
}


@dataclass
class StoredObject:
    id: str
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived: bool = False


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, category: str, message: str, **extra: Any) -> Reply:
    return Reply(
        status,
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra},
    )


class HubSpotSandbox(Sandbox):
    service: ClassVar[str] = "hubspot"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        window_max: int = 100,
        window_ms: int = 10_000,
        daily_max: int = 500_000,
        clock: Callable[[], float] = time.monotonic,
        portal_id: int = 62515,
        webhook_app_id: int = 54321,
        webhook_batch: int = 100,
        auto_deliver: bool = False,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.window_max, self.window_ms, self.daily_max = window_max, window_ms, daily_max
        self.clock = clock
        self.portal_id, self.webhook_app_id = portal_id, webhook_app_id
        self.webhook_batch, self.auto_deliver = webhook_batch, auto_deliver
        self.apps: dict[str, str] = {}  # private-app token -> app id
        self.schema = {name: dict(properties) for name, properties in DEFAULT_SCHEMA.items()}
        self.unique = {name: set(properties) for name, properties in DEFAULT_UNIQUE.items()}
        self.objects: dict[str, dict[str, StoredObject]] = {name: {} for name in DEFAULT_SCHEMA}
        self.statuses: Counter[int] = Counter()  # status of every authenticated, routed answer
        self.throttled = 0  # requests refused by the window
        self.pending: list[dict[str, Any]] = []  # webhook events not yet delivered
        self._window: deque[float] = deque()
        self._daily_used = 0
        self._next_id = 100
        self._next_event = 1
        self._last_ms = 0
        self._flush_lock = threading.Lock()

    # --- set-up and simulated users ---------------------------------------------------------------------

    def add_app(self, token: str, app_id: str) -> None:
        """Accept ``token`` as a private app's access token; its writes are attributed to ``app_id``."""
        self.apps[token] = app_id

    def seed(self, object_type: str, properties: Mapping[str, str]) -> str:
        """Create a record without any webhook event; returns its id."""
        with self.lock:
            return self._create(object_type, dict(properties)).id

    def user_edit(self, object_type: str, object_id: str, properties: Mapping[str, str]) -> None:
        """A person changes a record in HubSpot's UI (changeSource ``CRM_UI``)."""
        with self.lock:
            stored = self.objects[object_type][object_id]
            self._apply(object_type, stored, dict(properties), ("CRM_UI", "userId:7000001"))
        self._auto_flush()

    def user_delete(self, object_type: str, object_id: str) -> None:
        with self.lock:
            stored = self.objects[object_type][object_id]
            stored.archived = True
            self._event(object_type, "deletion", stored, ("CRM_UI", "userId:7000001"))
        self._auto_flush()

    def find(self, object_type: str, prop: str, value: str) -> StoredObject | None:
        with self.lock:
            return self._find(object_type, prop, value)

    # --- webhooks ---------------------------------------------------------------------------------------

    def flush_webhooks(self) -> int:
        """Deliver queued events in arrays of at most ``webhook_batch`` per object type; returns events sent."""
        with self._flush_lock:
            with self.lock:
                events, self.pending = self.pending, []
            for entity in ENTITY_OF.values():
                of_entity = [e for e in events if e["subscriptionType"].startswith(f"{entity}.")]
                for start in range(0, len(of_entity), self.webhook_batch):
                    self.deliver(entity, of_entity[start : start + self.webhook_batch])
            return len(events)

    def _auto_flush(self) -> None:
        if self.auto_deliver:
            self.flush_webhooks()

    def _event(
        self,
        object_type: str,
        kind: str,
        stored: StoredObject,
        source: tuple[str, str],
        prop: str | None = None,
    ) -> None:
        entity = ENTITY_OF[object_type]
        event: dict[str, Any] = {
            "eventId": self._next_event,
            "subscriptionId": _SUBSCRIPTION_IDS[entity],
            "portalId": self.portal_id,
            "appId": self.webhook_app_id,
            "occurredAt": stored.updated_ms,
            "subscriptionType": f"{entity}.{kind}",
            "attemptNumber": 0,
            "objectId": int(stored.id),
            "changeSource": source[0],
            "sourceId": source[1],
        }
        if kind == "creation":
            event["changeFlag"] = "NEW"
        if prop is not None:
            event["propertyName"], event["propertyValue"] = prop, stored.properties.get(prop, "")
        self._next_event += 1
        self.pending.append(event)

    # --- serving: auth and the rate window around every route -------------------------------------------

    def _route(self, request: Request) -> Reply:
        token = request.bearer()
        if token is None:
            return _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        if token not in self.apps:
            return _error(401, "INVALID_AUTHENTICATION", "The access token provided is invalid or has been revoked.")
        with self.lock:
            now = self.clock()
            while self._window and self._window[0] <= now - self.window_ms / 1000:
                self._window.popleft()
            if len(self._window) >= self.window_max:
                self.throttled += 1
                self.statuses[429] += 1
                return self.rate_limited()
            self._window.append(now)
            self._daily_used += 1
            headers = self._limit_headers(self.window_max - len(self._window))
        request.headers = {**request.headers, "x-sandbox-app-id": self.apps[token]}
        reply = super()._route(request)
        reply.headers = {**headers, **reply.headers}
        with self.lock:
            self.statuses[reply.status] += 1
        if request.method == "POST" and request.path.endswith(("/batch/upsert", "/batch/update")):
            self._auto_flush()
        return reply

    def _limit_headers(self, remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.window_max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.window_ms),
            "X-HubSpot-RateLimit-Daily": str(self.daily_max),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_max - self._daily_used)),
        }

    def rate_limited(self) -> Reply:
        """HubSpot's 429 for the rolling window: no ``Retry-After``, the policy named in the body."""
        reply = _error(
            429,
            "RATE_LIMITS",
            "You have reached your ten_secondly_rolling limit.",
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
        )
        reply.headers = self._limit_headers(0)
        return reply

    def not_found(self, request: Request) -> Reply:
        return _error(404, "OBJECT_NOT_FOUND", f"resource not found: {request.method} {request.path}")

    # --- endpoints --------------------------------------------------------------------------------------

    @route("POST", rf"/crm/v3/objects/{_TYPES}/batch/read")
    def batch_read(self, request: Request) -> Reply:
        object_type = request.params["object_type"]
        body, problem = self._batch_body(request)
        if problem is not None:
            return problem
        id_property = body.get("idProperty")
        if id_property and id_property not in self.unique[object_type] and id_property != "hs_object_id":
            return _error(400, "VALIDATION_ERROR", f"{id_property} is not a unique property of {object_type}")
        wanted = [str(p) for p in body.get("properties") or []]
        results, missing = [], []
        with self.lock:
            for item in body["inputs"]:
                key = str(item.get("id", ""))
                stored = self._find(object_type, id_property, key) if id_property else self._live(object_type, key)
                if stored is None:
                    missing.append(key)
                else:
                    results.append(self._render(object_type, stored, wanted))
        errors = []
        if missing:
            noun = ENTITY_OF[object_type].upper()
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {noun} objects, they may be deleted or not exist.",
                    "context": {"ids": missing},
                }
            )
        return self._batch_reply(results, errors)

    @route("POST", rf"/crm/v3/objects/{_TYPES}/batch/upsert")
    def batch_upsert(self, request: Request) -> Reply:
        object_type = request.params["object_type"]
        body, problem = self._batch_body(request)
        if problem is not None:
            return problem
        id_properties = {item.get("idProperty") for item in body["inputs"]}
        if len(id_properties) != 1 or not all(isinstance(p, str) and p for p in id_properties):
            return _error(400, "VALIDATION_ERROR", "every input needs the same idProperty")
        (id_property,) = id_properties
        if id_property not in self.unique[object_type]:
            return _error(400, "VALIDATION_ERROR", f"{id_property} is not a unique property of {object_type}")
        keys = [str(item.get("id", "")) for item in body["inputs"]]
        if len(set(keys)) != len(keys) or not all(keys):
            return _error(400, "VALIDATION_ERROR", "Duplicate or empty IDs found in batch input")
        source = ("INTEGRATION", request.headers["x-sandbox-app-id"])
        results, errors = [], []
        with self.lock:
            for key, item in zip(keys, body["inputs"], strict=True):
                properties = {str(k): "" if v is None else str(v) for k, v in (item.get("properties") or {}).items()}
                properties[id_property] = key
                invalid = self._invalid(object_type, properties)
                if invalid:
                    errors.append(self._validation_error(key, invalid))
                    continue
                stored = self._find(object_type, id_property, key)
                created = stored is None
                if stored is None:
                    stored = self._create(object_type, properties, source)
                else:
                    self._apply(object_type, stored, properties, source)
                results.append({**self._render(object_type, stored, list(properties)), "new": created})
        return self._batch_reply(results, errors)

    @route("POST", rf"/crm/v3/objects/{_TYPES}/batch/update")
    def batch_update(self, request: Request) -> Reply:
        object_type = request.params["object_type"]
        body, problem = self._batch_body(request)
        if problem is not None:
            return problem
        source = ("INTEGRATION", request.headers["x-sandbox-app-id"])
        results, errors, missing = [], [], []
        with self.lock:
            for item in body["inputs"]:
                key = str(item.get("id", ""))
                properties = {str(k): "" if v is None else str(v) for k, v in (item.get("properties") or {}).items()}
                stored = self._live(object_type, key)
                if stored is None:
                    missing.append(key)
                    continue
                invalid = self._invalid(object_type, properties)
                if invalid:
                    errors.append(self._validation_error(key, invalid))
                    continue
                self._apply(object_type, stored, properties, source)
                results.append(self._render(object_type, stored, list(properties)))
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not update some objects, they may be deleted or not exist.",
                    "context": {"ids": missing},
                }
            )
        return self._batch_reply(results, errors)

    @route("GET", rf"/crm/v3/objects/{_TYPES}")
    def list_objects(self, request: Request) -> Reply:
        object_type = request.params["object_type"]
        limit, problem = self._limit(request.query.get("limit", "10"), 100)
        if problem is not None:
            return problem
        after = request.query.get("after") or "0"
        if not after.isdigit():
            return _error(400, "VALIDATION_ERROR", "after must be a cursor from paging.next.after")
        wanted = [p for p in request.query.get("properties", "").split(",") if p]
        with self.lock:
            live = sorted((o for o in self.objects[object_type].values() if not o.archived), key=lambda o: int(o.id))
            page = [o for o in live if int(o.id) > int(after)][: limit + 1]
            results = [self._render(object_type, o, wanted) for o in page[:limit]]
        answer: dict[str, Any] = {"results": results}
        if len(page) > limit:
            cursor = page[limit - 1].id
            answer["paging"] = {"next": {"after": cursor, "link": f"{self.url}{request.path}?after={cursor}"}}
        return Reply(200, answer)

    @route("POST", rf"/crm/v3/objects/{_TYPES}/search")
    def search(self, request: Request) -> Reply:
        object_type = request.params["object_type"]
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
        limit, problem = self._limit(str(body.get("limit", 10)), 200)
        if problem is not None:
            return problem
        offset = str(body.get("after") or "0")
        if not offset.isdigit():
            return _error(400, "VALIDATION_ERROR", "after must be a cursor from paging.next.after")
        with self.lock:
            found = [
                o
                for o in self.objects[object_type].values()
                if not o.archived and _matches(o, body.get("filterGroups") or [])
            ]
            found.sort(key=lambda o: int(o.id))
            for sort in reversed(body.get("sorts") or []):
                name = str(sort.get("propertyName") if isinstance(sort, dict) else sort)
                descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
                found.sort(key=_sort_key(name), reverse=descending)
            start = int(offset)
            wanted = [str(p) for p in body.get("properties") or []]
            results = [self._render(object_type, o, wanted) for o in found[start : start + limit]]
        answer: dict[str, Any] = {"total": len(found), "results": results}
        if start + limit < len(found):
            answer["paging"] = {"next": {"after": str(start + limit)}}
        return Reply(200, answer)

    # --- helpers (called with self.lock held where they touch records) -----------------------------------

    def _batch_body(self, request: Request) -> tuple[dict[str, Any], Reply | None]:
        try:
            body = request.json()
        except ValueError:
            return {}, _error(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
            return {}, _error(400, "VALIDATION_ERROR", "inputs must be a non-empty list")
        if len(body["inputs"]) > 100:
            return {}, _error(400, "VALIDATION_ERROR", "Batch input cannot contain more than 100 inputs")
        if not all(isinstance(item, dict) for item in body["inputs"]):
            return {}, _error(400, "VALIDATION_ERROR", "each input must be an object")
        return body, None

    @staticmethod
    def _limit(value: str, maximum: int) -> tuple[int, Reply | None]:
        if not value.isdigit() or not 1 <= int(value) <= maximum:
            return 0, _error(400, "VALIDATION_ERROR", f"limit must be between 1 and {maximum}")
        return int(value), None

    @staticmethod
    def _batch_reply(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Reply:
        now = _iso(int(time.time() * 1000))
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return Reply(207 if errors else 200, body)

    @staticmethod
    def _validation_error(key: str, invalid: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: " + json.dumps(invalid)[:300],
            "context": {"ids": [key]},
            "errors": invalid,
        }

    def _invalid(self, object_type: str, properties: Mapping[str, str]) -> list[dict[str, Any]]:
        problems = []
        schema = self.schema[object_type]
        for name, value in properties.items():
            kind = schema.get(name)
            code = None
            if name in _READ_ONLY:
                code = "READ_ONLY_VALUE"
            elif kind is None:
                code = "PROPERTY_DOESNT_EXIST"
            elif value == "":
                continue
            elif kind == _NUMBER and not _is_number(value):
                code = "INVALID_DECIMAL"
            elif kind == _DATETIME and not _is_time(value):
                code = "INVALID_DATE"
            elif name == "email" and ("@" not in value or " " in value):
                code = "INVALID_EMAIL"
            if code:
                problems.append({"message": f"Property {name!r} is not valid", "code": code, "name": name})
        return problems

    def _tick(self) -> int:
        # Strictly increasing milliseconds, so updatedAt moves forward on every change of a record.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def _create(
        self, object_type: str, properties: dict[str, str], source: tuple[str, str] | None = None
    ) -> StoredObject:
        self._next_id += 1
        ms = self._tick()
        clean = {k: v.lower() if k == "email" else v for k, v in properties.items() if v != ""}
        stored = StoredObject(str(self._next_id), clean, ms, ms)
        self.objects[object_type][stored.id] = stored
        if source is not None:
            self._event(object_type, "creation", stored, source)
            for name in clean:
                self._event(object_type, "propertyChange", stored, source, name)
        return stored

    def _apply(
        self, object_type: str, stored: StoredObject, properties: dict[str, str], source: tuple[str, str]
    ) -> None:
        changed = []
        for name, given in properties.items():
            value = given.lower() if name == "email" else given
            if stored.properties.get(name, "") != value:
                if value == "":
                    stored.properties.pop(name, None)
                else:
                    stored.properties[name] = value
                changed.append(name)
        if changed:  # HubSpot leaves a record whose values did not change untouched
            stored.updated_ms = self._tick()
            for name in changed:
                self._event(object_type, "propertyChange", stored, source, name)

    def _live(self, object_type: str, object_id: str) -> StoredObject | None:
        stored = self.objects[object_type].get(object_id)
        return stored if stored is not None and not stored.archived else None

    def _find(self, object_type: str, prop: str | None, value: str) -> StoredObject | None:
        if prop in (None, "hs_object_id"):
            return self._live(object_type, value)
        wanted = value.lower() if prop == "email" else value
        for stored in self.objects[object_type].values():
            if not stored.archived and stored.properties.get(prop or "") == wanted:
                return stored
        return None

    def _render(self, object_type: str, stored: StoredObject, wanted: list[str]) -> dict[str, Any]:
        properties: dict[str, str | None] = {name: stored.properties.get(name) for name in wanted}
        properties.update(
            {
                "hs_object_id": stored.id,
                "createdate": _iso(stored.created_ms),
                _LAST_MODIFIED[object_type]: _iso(stored.updated_ms),
            }
        )
        return {
            "id": stored.id,
            "properties": properties,
            "createdAt": _iso(stored.created_ms),
            "updatedAt": _iso(stored.updated_ms),
            "archived": stored.archived,
        }


def _is_number(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _is_time(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _sort_key(name: str) -> Callable[[StoredObject], str]:
    return lambda stored: stored.properties.get(name) or ""


def _matches(stored: StoredObject, groups: list[Any]) -> bool:
    """HubSpot search semantics: filter groups are ORed, filters in a group ANDed."""
    if not groups:
        return True
    return any(all(_filter(stored, f) for f in group.get("filters") or []) for group in groups)


def _filter(stored: StoredObject, spec: Mapping[str, Any]) -> bool:
    value = stored.properties.get(str(spec.get("propertyName")))
    operator = str(spec.get("operator", "EQ"))
    wanted = spec.get("value")
    if operator == "HAS_PROPERTY":
        return value is not None
    if operator == "NOT_HAS_PROPERTY":
        return value is None
    if operator == "IN":
        return value in [str(v) for v in spec.get("values") or []]
    if value is None:
        return operator == "NEQ"
    if operator in {"EQ", "NEQ"}:
        return (value.lower() == str(wanted).lower()) == (operator == "EQ")
    comparable: tuple[Any, Any] = (value, str(wanted))
    if _is_number(value) and _is_number(str(wanted)):
        comparable = (Decimal(value), Decimal(str(wanted)))
    left, right = comparable
    outcomes: dict[str, bool] = {"GT": left > right, "GTE": left >= right, "LT": left < right, "LTE": left <= right}
    return outcomes.get(operator, False)
