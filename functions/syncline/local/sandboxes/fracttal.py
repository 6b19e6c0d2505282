"""A Fracttal CMMS sandbox: OAuth2 client-credentials tokens and the warehouse-item resources Syncline uses.

Served (paths relative to ``url``, whose ``/api`` plays ``https://app.fracttal.com/api``):
- ``POST /oauth/token``: client credentials in the form body or as HTTP Basic. Fracttal's documented token URL
  was not found; the connector takes it from configuration, this path is the sandbox's own.
- ``GET /api/inventories/{code}``: one spare part in the envelope ``{"success", "mensaje", "data", "total"}``;
  ``?id_warehouse=`` picks the warehouse when the code is stocked in several.
- ``PUT /api/inventories/{code}``: update stock / cost / levels in one warehouse (``id_warehouse`` or
  ``code_warehouse``); answers ``{"success", "message", "data": [item with "warehouses"], "total"}``.
- ``GET /api/warehouses_items/?code=`` (or ``?id=``): the stock of one warehouse, paged with ``start``/``limit``.
Bearer tokens expire (``tokens.expire_all()``); a request without a valid one gets a 401 in the OAuth2
bearer-token error shape (RFC 6750). Error envelopes carry ``success: false`` and a ``message``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import unquote

from syncline.local.sandboxes.base import Reply, Request, Sandbox, Tokens, route

MAX_PAGE = 100
WAREHOUSE_FIELDS = (
    "id_warehouse",
    "location",
    "max_stock_level",
    "min_stock_level",
    "reorder_level",
    "stock",
    "unit_cost_stock",
)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _number(value: Any) -> float | int:
    """A JSON number as Fracttal writes it: an integer when whole."""
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


class FracttalSandbox(Sandbox):
    service: ClassVar[str] = "fracttal"

    def __init__(
        self,
        *,
        clients: dict[str, str] | None = None,
        token_lifetime: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.tokens = Tokens(clients or {"syncline-key": "syncline-secret"}, lifetime=token_lifetime)
        self.warehouses: dict[int, str] = {}  # id -> code
        self.items: dict[tuple[int, str], dict[str, Any]] = {}  # (id_warehouse, code) -> item
        self.updates: list[tuple[str, dict[str, Any]]] = []  # (code, body) of every accepted PUT
        self._next_id = 100

    # --- seeding ----------------------------------------------------------------------------------

    def add_warehouse(self, code: str, warehouse_id: int | None = None) -> int:
        with self.lock:
            ident = warehouse_id or len(self.warehouses) + 1
            self.warehouses[ident] = code
            return ident

    def add_item(self, warehouse: str, code: str, stock: float = 0, **fields: Any) -> dict[str, Any]:
        """Stock a spare part in a warehouse (created if new), with the fields of ``warehouses_items``."""
        with self.lock:
            id_warehouse = self._warehouse_id(warehouse) or self.add_warehouse(warehouse)
            self._next_id += 1
            item = {
                "id": self._next_id,
                "id_item": self._next_id + 2000,
                "id_type_item": 4,
                "code": code,
                "description": fields.pop("description", f"{code} spare part"),
                "units_description": "Cada uno",
                "field_1": fields.pop("field_1", code),
                "field_2": "",
                "active": True,
                "id_warehouse": id_warehouse,
                "stock": stock,
                "max_stock_level": None,
                "min_stock_level": None,
                "reorder_level": None,
                "location": None,
                "unit_cost_stock": 0,
                **fields,
            }
            self.items[(id_warehouse, code)] = item
            return item

    def stock(self, warehouse: str, code: str) -> Any:
        with self.lock:
            ident = self._warehouse_id(warehouse)
            return None if ident is None else self.items[(ident, code)]["stock"]

    def _warehouse_id(self, code: str) -> int | None:
        return next((ident for ident, name in self.warehouses.items() if name == code), None)

    # --- OAuth2 -------------------------------------------------------------------------------------

    @route("POST", r"/oauth/token")
    def token(self, request: Request) -> Reply:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "grant_type not supported"})
        client_id, client_secret = request.basic() or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        issued = self.tokens.issue(client_id, client_secret)
        if issued is None:
            return Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        token, lifetime = issued
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    def _unauthorized(self, request: Request) -> Reply | None:
        if self.tokens.valid(request.bearer()):
            return None
        error = "invalid_token" if request.bearer() else "invalid_request"
        return Reply(
            401,
            {"error": error, "error_description": "The access token provided is invalid or has expired"},
            {"WWW-Authenticate": f'Bearer error="{error}"'},
        )

    # --- resources ----------------------------------------------------------------------------------

    @route("GET", r"/api/inventories/(?P<code>[^/]+)")
    def get_inventory(self, request: Request) -> Reply:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        code = unquote(request.params["code"])
        with self.lock:
            found = [item for (ident, item_code), item in self.items.items() if item_code == code]
            if request.query.get("id_warehouse"):
                found = [item for item in found if str(item["id_warehouse"]) == request.query["id_warehouse"]]
            if not found:
                return Reply(404, {"success": False, "message": f"Item {code} not found", "data": []})
            item = found[0]
            data = {
                key: item[key]
                for key in (
                    "id",
                    "code",
                    "description",
                    "id_warehouse",
                    "location",
                    "max_stock_level",
                    "reorder_level",
                    "stock",
                    "unit_cost_stock",
                )
            }
            data["min_stoc_level"] = item["min_stock_level"]  # spelled as in the documented example
            return Reply(200, {"success": True, "mensaje": "200", "data": data, "total": len(found)})

    @route("PUT", r"/api/inventories/(?P<code>[^/]+)")
    def put_inventory(self, request: Request) -> Reply:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        code = unquote(request.params["code"])
        try:
            with self.lock:
                item, changes = self._update_of(code, request)
                item.update(changes)
                self.updates.append((code, request.json()))
                warehouse = {key: item[key] for key in WAREHOUSE_FIELDS} | {"stock_temp": 0}
                data = {"id": item["id_item"], "description": item["description"], "field_1": item["field_1"]}
        except _Refused as refused:
            return Reply(refused.status, {"success": False, "message": refused.message})
        return Reply(200, {"success": True, "message": "200", "data": [data | {"warehouses": [warehouse]}], "total": 1})

    def _update_of(self, code: str, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stored item a PUT names and the changes it asks for, or ``_Refused`` as Fracttal would answer."""
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Refused(400, "Invalid JSON body")
        if "id_warehouse" in body and "code_warehouse" in body:
            raise _Refused(400, "Send id_warehouse or code_warehouse, not both")
        ident = body.get("id_warehouse") or self._warehouse_id(str(body.get("code_warehouse", "")))
        if ident not in self.warehouses:
            raise _Refused(400, "Warehouse not found")
        item = self.items.get((ident, code))
        if item is None:
            raise _Refused(404, f"Item {code} not found")
        changes: dict[str, Any] = {"location": body["location"]} if "location" in body else {}
        for name in ("stock", "unit_cost_stock", "max_stock_level", "min_stock_level", "reorder_level"):
            if name in body:
                try:
                    value = _number(body[name])
                except (InvalidOperation, ValueError, TypeError):
                    raise _Refused(400, f"{name} must be a number") from None
                if value < 0:
                    raise _Refused(400, f"{name} must not be negative")
                changes[name] = value
        return item, changes

    @route("GET", r"/api/warehouses_items/?")
    def warehouse_items(self, request: Request) -> Reply:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            start = int(request.query.get("start", "0"))
            limit = min(int(request.query.get("limit", str(MAX_PAGE))), MAX_PAGE)
        except ValueError:
            return Reply(400, {"success": False, "message": "start and limit must be integers"})
        if start < 0 or limit < 1:
            return Reply(400, {"success": False, "message": "start and limit out of range"})
        with self.lock:
            if "id" in request.query:
                ident: int | None = int(request.query["id"]) if request.query["id"].isdigit() else None
            else:
                ident = self._warehouse_id(request.query.get("code", ""))
            if ident is None or ident not in self.warehouses:
                return Reply(404, {"success": False, "message": "Warehouse not found", "data": []})
            rows = [dict(item) for (item_ident, _), item in sorted(self.items.items()) if item_ident == ident]
        return Reply(200, {"success": True, "mensaje": "200", "data": rows[start : start + limit], "total": len(rows)})

    def rate_limited(self) -> Reply:
        return Reply(429, {"success": False, "message": "Too Many Requests"}, {"Retry-After": "1"})

    def not_found(self, request: Request) -> Reply:
        return Reply(404, {"success": False, "message": f"Route {request.method} {request.path} not found"})
