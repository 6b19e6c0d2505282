"""The fault-injection convergence suite, bounded: the scenario of `make chaos` (bench/chaos.py) on a small
catalogue with a few fixed seeds. Changes are made while deliveries are duplicated, delayed and reordered,
sandboxes fail, tokens expire, workers and the poller are killed, PostgreSQL connections are dropped and moto
freezes; after one DLQ redrive every record on every system must be what the configured policies promise."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from syncline.local.chaos import ChaosReport, ChaosSettings, run_chaos

CONFIG = Path(__file__).resolve().parents[2] / "bench" / "chaos.toml"
CHANGES = 100
MAX_WRITES_PER_CHANGE = 3.0  # ERP change: storefront + 2 stores (or Fracttal); an edit or a contact's: 1; an order: 1


def _run(services: tuple[Any, Any], tmp_path: Path, seed: int) -> ChaosReport:
    moto, postgres = services
    moto.reset()
    settings = ChaosSettings(
        seed=seed,
        changes=CHANGES,
        finished_goods=8,
        spare_parts=6,
        contacts=6,
        rate_limit_rounds=1,
        moto_freeze_seconds=1.0,
    )
    return run_chaos(settings, extra_config=CONFIG.read_text(), work_dir=tmp_path, moto=moto, postgres=postgres)


@pytest.mark.parametrize("seed", [3, 5])
def test_every_record_converges_under_faults(services: tuple[Any, Any], tmp_path: Path, seed: int) -> None:
    report = _run(services, tmp_path, seed)

    # The faults did happen: duplicates, delays, sandbox errors, and a record dead-lettered, then redriven.
    assert report.changes == CHANGES
    for kind in ("webhook_duplicated", "message_delayed", "message_duplicated", "sandbox_status", "poison_kill"):
        assert report.faults.get(kind, 0) > 0, kind
    assert report.dead_lettered >= 1 and report.redriven >= report.dead_lettered

    # Nothing diverged, nothing was lost, nothing is left in a DLQ, and no change was written in a loop.
    assert report.divergent_records == []
    assert (report.divergent, report.lost, report.left_in_dlq) == (0, 0, 0)
    assert 0 < report.writes_per_change <= MAX_WRITES_PER_CHANGE
    assert report.records_checked > 8 * 2 * 2  # every store record, storefront row, spare part and order

    # HubSpot <-> OMS customers: edited on both sides under HubSpot faults, written both ways, all in agreement.
    contacts = report.by_pair["crm-customers"]
    assert contacts.changes > 0 and contacts.records_checked >= 2 * 6
    assert sum(contacts.faults.values()) > 0
    assert contacts.writes > 0
    assert (contacts.divergent, contacts.lost, contacts.left_in_dlq) == (0, 0, 0)
    assert 0 < contacts.writes_per_change <= MAX_WRITES_PER_CHANGE


def test_an_edit_back_to_the_agreed_quantity_is_the_latest_edit(services: tuple[Any, Any], tmp_path: Path) -> None:
    from syncline.local.chaos import chaos_config
    from syncline.local.stack import LocalStack

    moto, postgres = services
    moto.reset()
    config = tmp_path / "syncline.toml"
    config.write_text(chaos_config(CONFIG.read_text()))
    stack = LocalStack.up(moto=moto, postgres=postgres, work_dir=tmp_path, config_path=config)
    try:
        stores = {"store_a": "gid://shopify/Location/1001", "store_b": "gid://shopify/Location/2001"}
        items = {store: stack.seed_shopify(store, ["FG-000"], available=5)["FG-000"] for store in stores}
        a, b = stack.sandboxes["store_a"], stack.sandboxes["store_b"]

        def edit(store: str, value: int) -> None:
            time.sleep(0.01)  # a later millisecond: Shopify's updatedAt decides last-writer-wins
            stack.sandboxes[store].set_available(items[store], stores[store], value)

        edit("store_a", 6)
        stack.settle()
        assert a.quantity(items["store_a"], stores["store_a"]) == b.quantity(items["store_b"], stores["store_b"]) == 6

        edit("store_b", 8)  # an edit in B...
        edit("store_a", 9)
        edit("store_a", 6)  # ...then the latest edit, in A, back to the agreed quantity
        stack.settle()
        assert a.quantity(items["store_a"], stores["store_a"]) == 6
        assert b.quantity(items["store_b"], stores["store_b"]) == 6
    finally:
        stack.down()
