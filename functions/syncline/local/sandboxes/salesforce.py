"""A Salesforce sandbox: the OAuth2 client-credentials token endpoint, the REST resources Syncline uses, and
Change Data Capture events for every change.

Served (``url`` plays both the My Domain login URL and the ``instance_url`` the token response names):
- ``POST /services/oauth2/token``: ``grant_type=client_credentials`` with the client id/secret in the body or
  as HTTP Basic; answers ``access_token``, ``instance_url``, ``id``, ``token_type``, ``issued_at``,
  ``signature``, ``scope`` and, like Salesforce, no ``expires_in``. Bad credentials: 400 ``invalid_client``.
- ``GET  /services/data/vXX.X/composite/sobjects/{type}?ids=&fields=``: records in the order asked, null for
  ids that do not exist.
- ``PATCH /services/data/vXX.X/composite/sobjects/{type}/{externalIdField}``: upsert up to 200 records
  (``allOrNone`` honoured), UpsertResult per record (``id``, ``success``, ``errors``, ``created``).
- ``PATCH /services/data/vXX.X/composite/sobjects``: update up to 200 records by ``id``.
- ``GET  /services/data/vXX.X/query?q=`` and ``/query/{locator}``: a small SOQL subset (``SELECT f, ... FROM T
  [WHERE Id IN (...) | WHERE F = '...'] [ORDER BY F]``) paged by ``page_size`` with ``nextRecordsUrl``.
Expired or unknown bearer tokens get 401 ``[{"message": "Session expired or invalid", "errorCode":
"INVALID_SESSION_ID"}]``; request errors come as ``[{"message", "errorCode"}]``, record errors as
``{"statusCode", "message", "fields"}``. Every create/update/delete appends a CometD-shaped CDC message to
``change_events`` (and POSTs it to subscribers) with ``changeOrigin`` taken from the writer's
``Sforce-Call-Options`` client, as Salesforce does, and hands it to each of ``relays`` (the local stack's
Event Relay puts it on the partner event bus, as Salesforce's Event Relay does in AWS).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from syncline.local.sandboxes.base import Reply, Request, Sandbox, Tokens, route

MAX_COLLECTION = 200
MIN_VERSION = 46.0  # sObject Collections upsert needs API v46+
PREFIXES = {"Account": "001", "Contact": "003", "Opportunity": "006"}
SYSTEM_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
FIELDS: dict[str, frozenset[str]] = {
    "Contact": frozenset(
        {
            *SYSTEM_FIELDS,
            "Email",
            "FirstName",
            "LastName",
            "Phone",
            "AccountId",
            "MailingStreet",
            "MailingCity",
            "MailingState",
            "MailingPostalCode",
            "MailingCountry",
            "HasOptedOutOfEmail",
            "Syncline_Id__c",
        }
    ),
    "Account": frozenset(
        {
            *SYSTEM_FIELDS,
            "Name",
            "Website",
            "Industry",
            "BillingStreet",
            "BillingCity",
            "BillingState",
            "BillingPostalCode",
            "BillingCountry",
            "Syncline_Id__c",
        }
    ),
    "Opportunity": frozenset(
        {*SYSTEM_FIELDS, "Name", "StageName", "Amount", "CloseDate", "AccountId", "Syncline_Id__c"}
    ),
}
REQUIRED = {"Contact": ("LastName",), "Account": ("Name",), "Opportunity": ("Name", "StageName", "CloseDate")}
SOQL = re.compile(
    r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<sobject>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<direction>ASC|DESC))?)?\s*",
    re.IGNORECASE | re.DOTALL,
)
WHERE_IN = re.compile(r"(?P<field>\w+)\s+IN\s*\((?P<values>[^)]*)\)", re.IGNORECASE)
WHERE_EQ = re.compile(r"(?P<field>\w+)\s*=\s*'(?P<value>[^']*)'")
DATA = r"/services/data/v(?P<version>\d+\.\d)"


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, [{"message": message, "errorCode": code}])


def sf_time(moment: datetime) -> str:
    """Salesforce's datetime format: ``2024-05-01T10:00:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class SalesforceSandbox(Sandbox):
    service: ClassVar[str] = "salesforce"

    def __init__(
        self,
        *,
        clients: dict[str, str] | None = None,
        session_seconds: int = 7200,
        page_size: int = 2000,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.tokens = Tokens(clients or {"syncline-consumer-key": "syncline-consumer-secret"}, lifetime=session_seconds)
        self.page_size = page_size
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in FIELDS}
        self.change_events: list[dict[str, Any]] = []
        self.relays: list[Callable[[dict[str, Any]], None]] = []  # each CDC message, as it is committed
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._commits = itertools.count(10_000_000)
        self._replay = itertools.count(1)

    @property
    def token_requests(self) -> int:
        return self.requests["POST /services/oauth2/token"]

    # --- seeding and user edits (changes made in Salesforce itself: no API client in changeOrigin) --------

    def create(self, sobject: str, fields: dict[str, Any], *, origin: str = "") -> str:
        with self.lock:
            record = self._insert(sobject, fields)
            self._emit(sobject, "CREATE", [record["Id"]], sorted(fields), origin, record)
            return str(record["Id"])

    def edit(self, sobject: str, record_id: str, fields: dict[str, Any], *, origin: str = "") -> None:
        with self.lock:
            changed = self._apply(self.records[sobject][record_id], fields)
            self._emit(sobject, "UPDATE", [record_id], changed, origin, fields)

    def delete(self, sobject: str, record_id: str) -> None:
        with self.lock:
            self.records[sobject].pop(record_id)
            self._emit(sobject, "DELETE", [record_id], [], "", {})

    def record(self, sobject: str, record_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.records[sobject][record_id])

    def by_external_id(self, sobject: str, field: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(r) for r in self.records[sobject].values() if r.get(field) == value), None)

    def _insert(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        now = sf_time(datetime.now(UTC))
        record_id = f"{PREFIXES[sobject]}SB{next(self._ids):013d}"
        record = dict.fromkeys(FIELDS[sobject]) | {
            "Id": record_id,
            "CreatedDate": now,
            "LastModifiedDate": now,
            "SystemModstamp": now,
            "IsDeleted": False,
        }
        record.update(fields)
        self.records[sobject][record_id] = record
        return record

    def _apply(self, record: dict[str, Any], fields: dict[str, Any]) -> list[str]:
        changed = sorted(name for name, value in fields.items() if record.get(name) != value)
        record.update(fields)
        now = sf_time(datetime.now(UTC))
        record["LastModifiedDate"] = record["SystemModstamp"] = now
        return [*changed, "LastModifiedDate"]

    def _emit(
        self, sobject: str, change_type: str, ids: list[str], changed: list[str], origin: str, fields: dict[str, Any]
    ) -> None:
        commit_ms = int(time.time() * 1000)
        message = {
            "data": {
                "schema": f"sandbox-{sobject}-schema",
                "payload": {
                    "ChangeEventHeader": {
                        "entityName": sobject,
                        "recordIds": ids,
                        "changeType": change_type,
                        "changeOrigin": origin,
                        "transactionKey": secrets.token_hex(8),
                        "sequenceNumber": 1,
                        "isTransactionEnd": True,
                        "commitTimestamp": commit_ms,
                        "commitUser": "005SB0000000000001",
                        "commitNumber": next(self._commits),
                        "changedFields": changed if change_type == "UPDATE" else [],
                        "nulledFields": [],
                        "diffFields": [],
                    },
                    **{name: value for name, value in fields.items() if name != "Id"},
                },
                "event": {"replayId": next(self._replay)},
            },
            "channel": f"/data/{sobject}ChangeEvent",
        }
        self.change_events.append(message)
        for relay in self.relays:
            relay(message)
        if self.subscriptions:
            self.deliver(f"/data/{sobject}ChangeEvent", message)

    # --- OAuth2 -------------------------------------------------------------------------------------

    @route("POST", r"/services/oauth2/token")
    def token(self, request: Request) -> Reply:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        client_id, client_secret = request.basic() or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        issued = self.tokens.issue(client_id, client_secret)
        if issued is None:
            return Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        token, _lifetime = issued
        return Reply(
            200,
            {
                "access_token": f"00DSB0000000001!{token}",
                "signature": secrets.token_urlsafe(32),
                "scope": "api",
                "instance_url": self.url,
                "id": f"{self.url}/id/00DSB0000000001EAA/005SB0000000001AAA",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            },
        )

    def _session(self, request: Request) -> Reply | None:
        token = (request.bearer() or "").partition("!")[2]
        if self.tokens.valid(token or None):
            version = request.params.get("version")
            if version is not None and float(version) < MIN_VERSION:
                return _error(404, "NOT_FOUND", "The requested resource does not exist")
            return None
        reply = _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        reply.headers["WWW-Authenticate"] = "Token"
        return reply

    # --- sObject Collections ------------------------------------------------------------------------

    @route("GET", DATA + r"/composite/sobjects/(?P<sobject>\w+)")
    def get_collection(self, request: Request) -> Reply:
        if (denied := self._session(request)) is not None:
            return denied
        sobject = request.params["sobject"]
        if sobject not in FIELDS:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        fields = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
        if not ids or not fields:
            return _error(400, "MISSING_ARGUMENT", "ids and fields are required")
        if len(ids) > MAX_COLLECTION:
            return _error(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_COLLECTION}")
        if unknown := [f for f in fields if f not in FIELDS[sobject]]:
            return _error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{sobject}'")
        with self.lock:
            found = [self.records[sobject].get(i) for i in ids]
            return Reply(200, [self._shape(sobject, r, fields, request) if r else None for r in found])

    @route("PATCH", DATA + r"/composite/sobjects/(?P<sobject>\w+)/(?P<external>\w+)")
    def upsert_collection(self, request: Request) -> Reply:
        if (denied := self._session(request)) is not None:
            return denied
        sobject, external = request.params["sobject"], request.params["external"]
        body = request.json()
        if (refused := self._refuse_collection(sobject, body)) is not None:
            return refused
        if external not in FIELDS[sobject] or external == "Id":
            return _error(400, "INVALID_FIELD", f"Field name provided, {external} is not an External ID or indexed")
        records = body["records"]
        with self.lock:
            results = []
            for record in records:
                key = record.get(external)
                if not key:
                    results.append(self._record_error("MISSING_ARGUMENT", f"{external} not specified", [external]))
                    continue
                existing = next((r for r in self.records[sobject].values() if r.get(external) == key), None)
                fields = {name: value for name, value in record.items() if name != "attributes"}
                missing = [n for n in REQUIRED[sobject] if not (fields.get(n) or (existing or {}).get(n))]
                if missing:
                    message = f"Required fields are missing: [{', '.join(missing)}]"
                    results.append(self._record_error("REQUIRED_FIELD_MISSING", message, missing))
                    continue
                results.append(
                    {"id": existing["Id"] if existing else None, "success": True, "errors": []}
                    | {
                        "created": existing is None,
                        "_fields": fields,
                    }
                )
            return self._commit(sobject, body, results, request, upsert=True)

    @route("PATCH", DATA + r"/composite/sobjects")
    def update_collection(self, request: Request) -> Reply:
        if (denied := self._session(request)) is not None:
            return denied
        body = request.json()
        records = body.get("records") if isinstance(body, dict) else None
        sobject = (records[0].get("attributes") or {}).get("type") if isinstance(records, list) and records else None
        if (refused := self._refuse_collection(str(sobject), body)) is not None:
            return refused
        with self.lock:
            results = []
            for record in body["records"]:
                record_id = record.get("id") or record.get("Id")
                if record_id not in self.records[str(sobject)]:
                    message = "invalid cross reference id" if record_id else "Id not specified"
                    results.append(self._record_error("INVALID_CROSS_REFERENCE_KEY", message, ["Id"]))
                    continue
                fields = {n: v for n, v in record.items() if n not in {"attributes", "id", "Id"}}
                results.append({"id": record_id, "success": True, "errors": [], "_fields": fields})
            return self._commit(str(sobject), body, results, request, upsert=False)

    def _refuse_collection(self, sobject: str, body: Any) -> Reply | None:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return _error(400, "JSON_PARSER_ERROR", "records is required")
        if sobject not in FIELDS:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(body["records"]) > MAX_COLLECTION:
            return _error(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_COLLECTION}")
        for record in body["records"]:
            if (record.get("attributes") or {}).get("type") != sobject:
                return _error(400, "INVALID_TYPE", "Each record must have attributes with the type of the request")
            if unknown := [n for n in record if n not in {"attributes", "id"} and n not in FIELDS[sobject]]:
                return _error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}")
        return None

    @staticmethod
    def _record_error(code: str, message: str, fields: list[str]) -> dict[str, Any]:
        return {"id": None, "success": False, "errors": [{"statusCode": code, "message": message, "fields": fields}]}

    def _commit(
        self, sobject: str, body: dict[str, Any], results: list[dict[str, Any]], request: Request, *, upsert: bool
    ) -> Reply:
        """Apply the accepted records (all or none when asked) and emit their change events."""
        if body.get("allOrNone") and not all(r["success"] for r in results):
            rolled = self._record_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back", [])
            return Reply(200, [r if not r["success"] else rolled for r in results])
        origin = self._origin(request)
        answer = []
        for result in results:
            fields = result.pop("_fields", None)
            if fields is not None:
                if result.get("created"):
                    record = self._insert(sobject, fields)
                    result["id"] = record["Id"]
                    self._emit(sobject, "CREATE", [record["Id"]], [], origin, record)
                else:
                    changed = self._apply(self.records[sobject][result["id"]], fields)
                    self._emit(sobject, "UPDATE", [result["id"]], changed, origin, fields)
            if not upsert:
                result.pop("created", None)
            answer.append(result)
        return Reply(200, answer)

    def _origin(self, request: Request) -> str:
        """``changeOrigin`` as Salesforce sets it for an API write: the API, its version and the call's client id."""
        origin = f"com/salesforce/api/rest/{request.params.get('version', '')}"
        options = request.headers.get("sforce-call-options", "")
        client = next((v for n, _, v in (p.strip().partition("=") for p in options.split(",")) if n == "client"), "")
        return f"{origin};client={client}" if client else origin

    def _shape(self, sobject: str, record: dict[str, Any], fields: list[str], request: Request) -> dict[str, Any]:
        version = request.params.get("version")
        url = f"/services/data/v{version}/sobjects/{sobject}/{record['Id']}"
        return {"attributes": {"type": sobject, "url": url}} | {name: record.get(name) for name in fields}

    # --- SOQL ---------------------------------------------------------------------------------------

    @route("GET", DATA + r"/query/?")
    def query(self, request: Request) -> Reply:
        if (denied := self._session(request)) is not None:
            return denied
        parsed = SOQL.fullmatch(request.query.get("q", ""))
        if parsed is None:
            return _error(400, "MALFORMED_QUERY", "unexpected token: the sandbox reads SELECT ... FROM ... only")
        sobject, fields = parsed["sobject"], [f.strip() for f in parsed["fields"].split(",")]
        if sobject not in FIELDS:
            return _error(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        if unknown := [f for f in fields if f not in FIELDS[sobject]]:
            return _error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{sobject}'")
        with self.lock:
            rows = list(self.records[sobject].values())
        if parsed["where"]:
            matcher = _where(parsed["where"])
            if matcher is None:
                return _error(400, "MALFORMED_QUERY", "unexpected token in WHERE")
            rows = [r for r in rows if matcher(r)]
        if parsed["order"]:
            rows.sort(
                key=lambda r: str(r.get(parsed["order"]) or ""), reverse=(parsed["direction"] or "").upper() == "DESC"
            )
        shaped = [self._shape(sobject, r, fields, request) for r in rows]
        return self._page(shaped, len(shaped), 0, request)

    @route("GET", DATA + r"/query/(?P<locator>01g[\w]+)-(?P<offset>\d+)")
    def query_more(self, request: Request) -> Reply:
        if (denied := self._session(request)) is not None:
            return denied
        with self.lock:
            rows = self._cursors.get(request.params["locator"])
        if rows is None:
            return _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(rows, len(rows), int(request.params["offset"]), request)

    def _page(self, rows: list[dict[str, Any]], total: int, offset: int, request: Request) -> Reply:
        page = rows[offset : offset + self.page_size]
        body: dict[str, Any] = {"totalSize": total, "done": offset + len(page) >= total, "records": page}
        if not body["done"]:
            locator = request.params.get("locator") or f"01gSB{secrets.token_hex(6)}"
            with self.lock:
                self._cursors[locator] = rows
            body["nextRecordsUrl"] = f"/services/data/v{request.params['version']}/query/{locator}-{offset + len(page)}"
        return Reply(200, body)

    # --- errors as Salesforce sends them --------------------------------------------------------------

    def rate_limited(self) -> Reply:
        return Reply(
            429,
            [{"message": "Too many requests: retry later", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {"Retry-After": "1"},
        )

    def not_found(self, request: Request) -> Reply:
        return _error(404, "NOT_FOUND", "The requested resource does not exist")


def _where(clause: str) -> Callable[[dict[str, Any]], bool] | None:
    """A predicate for ``Field IN ('a', 'b')`` or ``Field = 'a'``; None for anything else."""
    if found := WHERE_IN.fullmatch(clause.strip()):
        values = {v.strip().strip("'") for v in found["values"].split(",")}
        name = found["field"]
        return lambda r: str(r.get(name)) in values
    if found := WHERE_EQ.fullmatch(clause.strip()):
        name, value = found["field"], found["value"].lower()  # SOQL compares text case-insensitively
        return lambda r: r.get(name) is not None and str(r.get(name)).lower() == value
    return None
