"""Contract tests: the Fracttal connector over real HTTP against the Fracttal sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from syncline.canonical.entities import Asset
from syncline.connectors.fracttal import FracttalClient, FracttalSettings, sync_spare_parts
from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.oauth2 import ClientCredentials, InMemoryTokenStore, OAuth2ClientCredentials, OAuth2Settings
from syncline.local.sandboxes.fracttal import FracttalSandbox
from syncline.models import InventoryLevel

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[FracttalSandbox]:
    with FracttalSandbox(clients={"key": "secret"}) as server:
        server.add_item("WH-1", "0003010001001521", stock=0, unit_cost_stock=12.5)
        server.add_item("WH-1", "P-2", stock=7)
        server.add_item("WH-1", "P-3", stock=1)
        server.add_item("WH-1", "P-4", stock=2)
        server.add_item("WH-1", "P-5", stock=3)
        server.add_item("WH-2", "P-2", stock=99)
        yield server


@pytest.fixture
def client(sandbox: FracttalSandbox) -> FracttalClient:
    tokens = OAuth2ClientCredentials(
        OAuth2Settings(provider="fracttal", token_url=f"{sandbox.url}/oauth/token", client_auth="basic"),
        lambda: ClientCredentials("key", "secret"),
        InMemoryTokenStore(),
        retry=RetryPolicy(sleep=lambda _s: None),
    )
    settings = FracttalSettings(base_url=f"{sandbox.url}/api", warehouse_code="WH-1", page_size=2)
    return FracttalClient(settings, tokens, retry=RetryPolicy(attempts=4, sleep=lambda _s: None))


def _level(sku: str, on_hand: str) -> InventoryLevel:
    quantity = Decimal(on_hand)
    return InventoryLevel(
        sku=sku,
        location="WH-1",
        on_hand=quantity,
        reserved=Decimal(0),
        available=quantity,
        on_order=Decimal(0),
        source_version=1,
        source_updated_at=NOW,
    )


def test_get_item_reads_the_documented_envelope_and_keeps_leading_zeros(client: FracttalClient) -> None:
    item = client.get_item("0003010001001521")
    assert item is not None
    assert item.code == "0003010001001521"
    assert item.stock == 0 and item.unit_cost_stock == Decimal("12.5")
    assert client.get_item("NOPE") is None


def test_list_items_pages_with_start_and_limit(client: FracttalClient, sandbox: FracttalSandbox) -> None:
    codes = [item.code for item in client.list_items()]
    assert sorted(codes) == ["0003010001001521", "P-2", "P-3", "P-4", "P-5"]
    assert sandbox.requests["GET /api/warehouses_items/"] == 3  # 2 + 2 + 1


def test_update_item_changes_only_the_named_warehouse(client: FracttalClient, sandbox: FracttalSandbox) -> None:
    answer = client.update_item("P-2", stock=Decimal("8.5"), unit_cost_stock=Decimal(0))
    assert answer["warehouses"][0]["stock"] == 8.5
    assert sandbox.stock("WH-1", "P-2") == 8.5
    assert sandbox.stock("WH-2", "P-2") == 99


def test_sync_spare_parts_writes_only_changed_and_reports_unmatched(
    client: FracttalClient, sandbox: FracttalSandbox
) -> None:
    levels = [
        _level("0003010001001521   ", "4"),  # Sage pads item numbers: matched after trimming
        _level("P-2", "7"),  # unchanged
        _level("P-3", "10"),
        _level("NOT-IN-FRACTTAL", "1"),
    ]
    part = Asset(asset_id="a1", code="P-4", kind="spare_part", quantity=Decimal(2), updated_at=NOW)
    machine = Asset(asset_id="a2", code="P-5", kind="asset", updated_at=NOW)

    summary = sync_spare_parts([*levels, part, machine], client=client)

    assert sorted(summary.updated) == ["0003010001001521", "P-3"]
    assert sorted(summary.unchanged) == ["P-2", "P-4"]
    assert summary.unmatched == ["NOT-IN-FRACTTAL"]
    assert summary.ok
    assert [code for code, _ in sandbox.updates] == ["0003010001001521", "P-3"]
    assert sandbox.updates[0][1] == {"code_warehouse": "WH-1", "stock": 4, "unit_cost_stock": 12.5}
    assert sandbox.stock("WH-1", "P-5") == 3

    again = sync_spare_parts(levels, client=client)  # idempotent: a second run writes nothing
    assert again.updated == [] and len(sandbox.updates) == 2


def test_dry_run_writes_nothing(client: FracttalClient, sandbox: FracttalSandbox) -> None:
    summary = sync_spare_parts([_level("P-3", "10")], client=client, dry_run=True)
    assert summary.updated == ["P-3"] and sandbox.updates == []


@pytest.mark.parametrize(
    ("kind", "options"),
    [("status", {"status": 503}), ("status", {"status": 502}), ("rate_limit", {}), ("drop", {})],
)
def test_transient_failures_are_retried(
    client: FracttalClient, sandbox: FracttalSandbox, kind: str, options: dict[str, int]
) -> None:
    client.get_item("P-2")  # token first, so the fault hits the resource
    sandbox.faults.add(kind, times=2, path=r"^/api/", **options)

    assert client.get_item("P-2") is not None
    assert client.api.retries == 2
    assert sandbox.faults.injected[kind] == 2


def test_a_bad_request_is_not_retried(client: FracttalClient, sandbox: FracttalSandbox) -> None:
    with pytest.raises(ApiError) as failure:
        client.update_item("P-2", stock=Decimal(-1))
    assert failure.value.status == 400 and not failure.value.retryable
    assert "must not be negative" in failure.value.reason
    assert sandbox.requests["PUT /api/inventories/P-2"] == 1


def test_persisting_5xx_gives_up_retryably(client: FracttalClient, sandbox: FracttalSandbox) -> None:
    client.get_item("P-2")
    sandbox.faults.add("status", status=500, path=r"^/api/")
    with pytest.raises(ApiError) as failure:
        client.get_item("P-2")
    assert failure.value.retryable and failure.value.status == 500
    assert sandbox.faults.injected["status"] == 4


def test_a_refused_write_is_reported_and_the_others_go_on(client: FracttalClient, sandbox: FracttalSandbox) -> None:
    sandbox.faults.add("status", status=400, times=1, path=r"^/api/inventories/P-3$")
    summary = sync_spare_parts([_level("P-3", "10"), _level("P-4", "9")], client=client)
    assert list(summary.failed) == ["P-3"] and summary.updated == ["P-4"]
