"""Fracttal CMMS: spare-part stock in warehouses, kept equal to the ERP's on-hand quantities.

Resources (base URL ``https://app.fracttal.com/api`` from configuration):
- ``GET inventories/{code}``: one spare part, in Fracttal's envelope ``{"success", "mensaje", "data", "total"}``
  (the documented example spells ``min_stoc_level``; both spellings are read);
- ``PUT inventories/{code}``: update stock / cost / levels of the part in one warehouse;
- ``GET warehouses_items/?code={warehouse}``: a warehouse's stock, paged with ``start``/``limit``.
Every call carries an OAuth2 client-credentials bearer token (``syncline.connectors.oauth2``).

Item codes are strings end to end (``"0003010001001521"`` keeps its leading zeros). When matching ERP item
numbers to Fracttal codes, surrounding whitespace is ignored on both sides (Sage 300 pads item numbers);
inner whitespace and case are significant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from syncline.canonical.entities import Asset
from syncline.connectors.http import ApiError, HttpApi, RetryPolicy
from syncline.connectors.oauth2 import OAuth2ClientCredentials
from syncline.models import InventoryLevel

logger = logging.getLogger(__name__)

SERVICE = "fracttal"


class FracttalSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_url: str = Field("https://app.fracttal.com/api", min_length=1)
    warehouse_code: str = Field(min_length=1, description="the Fracttal warehouse the ERP stock is written to")
    page_size: int = Field(100, ge=1, le=100)


class WarehouseItem(BaseModel):
    """A spare part's stock in one Fracttal warehouse (``warehouses_items`` and ``inventories`` rows)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str
    id_warehouse: int | None = None
    stock: Decimal | None = None
    description: str | None = None
    id: int | None = None
    id_item: int | None = None
    units_description: str | None = None
    active: bool | None = None
    location: str | None = None
    max_stock_level: Decimal | None = None
    min_stock_level: Decimal | None = Field(None, validation_alias=AliasChoices("min_stock_level", "min_stoc_level"))
    reorder_level: Decimal | None = None
    unit_cost_stock: Decimal | None = None

    @property
    def match_code(self) -> str:
        return match_code(self.code)


def match_code(code: str) -> str:
    """The form an item code is matched in: surrounding whitespace dropped, nothing else touched."""
    return code.strip()


def _json_number(value: Decimal) -> int | float:
    """Fracttal's ``Real``: an integer when whole (no float noise on whole quantities)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _envelope(body: Any, what: str) -> Any:
    if not isinstance(body, dict) or body.get("success") is not True:
        message = body.get("message") if isinstance(body, dict) else None
        raise ApiError(SERVICE, 200, f"{what}: {message or 'unsuccessful response'}", retryable=False)
    return body.get("data")


class FracttalClient:
    """Fracttal's warehouse-item API over the shared ``HttpApi`` with OAuth2 bearer tokens."""

    def __init__(
        self,
        settings: FracttalSettings,
        tokens: OAuth2ClientCredentials,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.api = HttpApi(
            SERVICE,
            settings.base_url,
            client=client,
            retry=retry,
            headers={"Accept": "application/json"},
            auth=tokens.headers,
            on_unauthorized=tokens.on_unauthorized,
        )

    def get_item(self, code: str, *, id_warehouse: int | None = None) -> WarehouseItem | None:
        """One spare part (in ``id_warehouse`` when given), or None when Fracttal does not know the code."""
        params = {"id_warehouse": str(id_warehouse)} if id_warehouse is not None else None
        try:
            body = self.api.json("GET", f"inventories/{quote(code, safe='')}", params=params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        data = _envelope(body, f"inventory {code}")
        if isinstance(data, list):  # some responses wrap the one item in a list
            data = data[0] if data else None
        return WarehouseItem.model_validate(data) if data else None

    def list_items(self, warehouse_code: str | None = None) -> Iterator[WarehouseItem]:
        """Every item stocked in a warehouse, page by page (``start``/``limit``) until a short page or ``total``."""
        warehouse = warehouse_code or self.settings.warehouse_code
        start = 0
        while True:
            params = {"code": warehouse, "start": str(start), "limit": str(self.settings.page_size)}
            body = self.api.json("GET", "warehouses_items/", params=params)
            rows = _envelope(body, f"warehouse {warehouse}") or []
            yield from (WarehouseItem.model_validate(row) for row in rows)
            start += len(rows)
            total = body.get("total") if isinstance(body, dict) else None
            if len(rows) < self.settings.page_size or (isinstance(total, int) and start >= total):
                return

    def update_item(
        self,
        code: str,
        *,
        warehouse_code: str | None = None,
        stock: Decimal | None = None,
        unit_cost_stock: Decimal | None = None,
        levels: Mapping[str, Decimal] | None = None,
    ) -> dict[str, Any]:
        """Update one part's stock / cost / ``levels`` (max/min/reorder) in a warehouse; returns Fracttal's item."""
        body: dict[str, Any] = {"code_warehouse": warehouse_code or self.settings.warehouse_code}
        if stock is not None:
            body["stock"] = _json_number(stock)
        if unit_cost_stock is not None:
            body["unit_cost_stock"] = _json_number(unit_cost_stock)
        for name, value in (levels or {}).items():
            if name not in {"max_stock_level", "min_stock_level", "reorder_level"}:
                raise ValueError(f"unknown stock level {name!r}")
            body[name] = _json_number(value)
        data = _envelope(self.api.json("PUT", f"inventories/{quote(code, safe='')}", json=body), f"update {code}")
        first = data[0] if isinstance(data, list) and data else data
        return dict(first) if isinstance(first, dict) else {}

    def close(self) -> None:
        self.api.close()


@dataclass
class SparePartSyncSummary:
    """What one spare-part sync did: codes written, already equal, unknown to Fracttal, and failed (code -> reason)."""

    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed


def spare_part_quantity(record: InventoryLevel | Asset) -> tuple[str, Decimal] | None:
    """The (code, on-hand quantity) an ERP record asks Fracttal to hold; None for an asset that is not a stocked part."""
    if isinstance(record, InventoryLevel):
        return record.sku, record.on_hand
    if record.kind != "spare_part" or record.quantity is None:
        return None
    return record.code, record.quantity


def sync_spare_parts(
    levels: Iterable[InventoryLevel | Asset],
    *,
    client: FracttalClient,
    warehouse_code: str | None = None,
    dry_run: bool = False,
) -> SparePartSyncSummary:
    """Make Fracttal's warehouse stock equal the ERP's: match by item code, write only quantities that differ.

    The warehouse is read once; codes Fracttal does not stock are reported as unmatched (never created), a code
    given twice with different quantities is reported as failed, and a write that fails is reported without
    stopping the others. A retryable failure is left to the caller (the whole run may be retried: it is idempotent).
    """
    warehouse = warehouse_code or client.settings.warehouse_code
    summary = SparePartSyncSummary(dry_run=dry_run)
    wanted: dict[str, tuple[str, Decimal]] = {}
    for record in levels:
        pair = spare_part_quantity(record)
        if pair is None:
            continue
        code, quantity = pair
        key = match_code(code)
        if key in wanted and wanted[key][1] != quantity:
            summary.failed[key] = "given twice with different quantities"
            continue
        wanted[key] = (code, quantity)
    current = {item.match_code: item for item in client.list_items(warehouse)}
    for key, (_code, quantity) in wanted.items():
        if key in summary.failed:
            continue
        item = current.get(key)
        if item is None:
            summary.unmatched.append(key)
            continue
        if item.stock is not None and item.stock == quantity:
            summary.unchanged.append(key)
            continue
        if dry_run:
            summary.updated.append(key)
            continue
        try:
            # Fracttal requires the cost with the stock for integrated warehouses: send back the one it holds.
            client.update_item(
                item.code, warehouse_code=warehouse, stock=quantity, unit_cost_stock=item.unit_cost_stock or Decimal(0)
            )
        except ApiError as exc:
            if exc.retryable:
                raise
            summary.failed[key] = exc.reason[:200]
            continue
        summary.updated.append(key)
    logger.info(
        "fracttal spare-part sync",
        extra={
            "warehouse": warehouse,
            "updated": len(summary.updated),
            "unchanged": len(summary.unchanged),
            "unmatched": len(summary.unmatched),
            "failed": len(summary.failed),
            "dry_run": dry_run,
        },
    )
    return summary


class FracttalInventoryTarget:
    """``InventoryTarget`` over one Fracttal warehouse: the sync worker's write path for ERP spare-part stock.

    A level's item code is its SKU; the warehouse holds one quantity per code, so the pair should carry one ERP
    location (``[pairs.filters] locations``). Codes written or already equal are returned (the target agrees);
    codes Fracttal does not stock are not created, only logged; a refused write is logged and not returned,
    so the next change of that record tries again. A retryable failure raises: the batch comes back via SQS.
    """

    def __init__(self, client: FracttalClient, warehouse_code: str | None = None) -> None:
        self.client, self.warehouse_code = client, warehouse_code
        self.last: SparePartSyncSummary | None = None

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        by_code: dict[str, list[str]] = {}
        for level in levels:
            by_code.setdefault(match_code(level.sku), []).append(level.key)
        summary = sync_spare_parts(levels, client=self.client, warehouse_code=self.warehouse_code)
        self.last = summary
        for code in summary.unmatched:
            logger.warning("fracttal: no spare part %s in the warehouse; not created", code)
        for code, reason in summary.failed.items():
            logger.warning("fracttal: %s not written: %s", code, reason)
        return {key for code in (*summary.updated, *summary.unchanged) for key in by_code.get(code, [])}
