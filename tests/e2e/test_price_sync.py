"""Sage 300 prices -> the PostgreSQL storefront and a Shopify store, on the local stack: the emulated ERP's
ICPRICP table, the real poller and price workers, a Shopify sandbox over real HTTP, SQS redelivery and DLQs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from syncline.local.sage300 import ItemPrice
from syncline.local.stack import LocalStack
from tests.conftest import load_event
from tests.e2e.helpers import run_cli, stack_with

SKUS = ["SKU-A", "SKU-B", "SKU-C"]
PRICES = """
[systems.store_a]
kind = "shopify"
secret = "syncline/store-a"
shop = "store-a.myshopify.com"
[systems.store_a.locations]
main = "1001"

[[pairs]]
name = "erp-storefront-prices"
source = "sage300"
target = "storefront"
entity = "price"
prices = { price_list = "WEB", currency = "USD", compare_at_price_list = "MSRP" }

[[pairs]]
name = "erp-store-a-prices"
source = "sage300"
target = "store_a"
entity = "price"
prices = { price_list = "WEB", currency = "USD", compare_at_price_list = "MSRP" }
"""
STOREFRONT, STORE = "sync_storefront_price", "sync_store_a_price"


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[LocalStack]:
    with stack_with(services, tmp_path, PRICES) as local:
        yield local


def _count_price_writes(stack: LocalStack) -> Callable[[], int]:
    connection = stack.storefront()
    connection.execute(
        """
        CREATE TABLE price_writes (sku text, source_version bigint);
        CREATE FUNCTION log_price_write() RETURNS trigger AS $$
        BEGIN INSERT INTO price_writes VALUES (NEW.sku, NEW.source_version); RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER log_price_write AFTER INSERT OR UPDATE ON prices FOR EACH ROW EXECUTE FUNCTION log_price_write();
        """
    )
    return lambda: int(connection.execute("SELECT count(*) FROM price_writes").fetchone()[0])


def _storefront(stack: LocalStack) -> dict[str, tuple[Decimal, Decimal | None]]:
    rows = stack.storefront().execute("SELECT sku, price, compare_at FROM prices WHERE price_list = 'WEB'").fetchall()
    return {sku: (price, compare_at) for sku, price, compare_at in rows}


def _shown(stack: LocalStack) -> dict[str, tuple[Decimal, Decimal | None]]:
    variants = stack.sandboxes["store_a"].variants.values()
    return {
        v["sku"]: (Decimal(v["price"]), None if v["compareAtPrice"] is None else Decimal(v["compareAtPrice"]))
        for v in variants
    }


def _take(stack: LocalStack, queue: str) -> list[str]:
    sqs, url = boto3.client("sqs"), stack.resources.queues[queue].url
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _send(stack: LocalStack, queue: str, bodies: list[str]) -> None:
    sqs, url = boto3.client("sqs"), stack.resources.queues[queue].url
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def test_an_erp_price_change_reaches_the_storefront_and_shopify_once_and_bad_rows_reach_the_dlq(
    stack: LocalStack,
) -> None:
    erp, writes = stack.erp(), _count_price_writes(stack)
    erp.add_items([(sku, f"Item {sku}") for sku in SKUS] + [("SKU-NEG", "Typo")])
    stack.seed_shopify("store_a", SKUS)  # each variant at 10.00, mapped by SKU in the identity map
    sandbox = stack.sandboxes["store_a"]
    erp.set_prices(
        [
            ItemPrice("SKU-A", "WEB", Decimal("19.99")),
            ItemPrice("SKU-A", "MSRP", Decimal("24.99")),
            ItemPrice("SKU-B", "WEB", Decimal("5.50")),
            ItemPrice("SKU-B", "MSRP", Decimal("5.00")),  # below the price: no compare-at
            ItemPrice("SKU-C", "WEB", Decimal("7.00")),
            ItemPrice("SKU-NEG", "WEB", Decimal("-1.00")),
            ItemPrice("SKU-GHOST", "WEB", Decimal("3.00")),  # not in the item master
        ]
    )

    # Given the initial load, when the poller and workers run, then both targets show the ERP's prices.
    stack.poll_erp()
    stack.settle()
    expected = {
        "SKU-A": (Decimal("19.99"), Decimal("24.99")),
        "SKU-B": (Decimal("5.50"), None),
        "SKU-C": (Decimal("7.00"), None),
    }
    assert _storefront(stack) == expected
    assert _shown(stack) == expected
    assert writes() == 3 and sandbox.applied["productVariantsBulkUpdate"] == 3

    # The bad rows sit in each pair's DLQ with their reason and the fetched ERP rows.
    for queue in (STOREFRONT, STORE):
        letters = {m["attributes"]["syncline-key"]: m for m in stack.dead_letters(queue)}
        assert set(letters) == {"SKU-NEG", "SKU-GHOST"}, queue
        assert letters["SKU-NEG"]["attributes"]["syncline-reason"] == "negative price: UNITPRICE of WEB = -1.000000"
        assert "not in the item master (ICITEM)" in letters["SKU-GHOST"]["attributes"]["syncline-reason"]
        assert letters["SKU-NEG"]["body"]["fetched"]["ICPRICP"][0]["UNITPRICE"] == "-1.000000"
        assert letters["SKU-NEG"]["body"]["stage"] == "map"

    # When a price changes in the ERP and its notice is delivered three times (at-least-once delivery)...
    erp.set_prices([ItemPrice("SKU-C", "WEB", Decimal("8.25"))])
    stack.poll_erp()
    for queue in (STOREFRONT, STORE):
        bodies = _take(stack, queue)
        assert len(bodies) == 1, queue
        _send(stack, queue, bodies * 3)
    stack.settle()

    # ...then each target shows it, written exactly once.
    expected["SKU-C"] = (Decimal("8.25"), None)
    assert _storefront(stack) == expected and _shown(stack) == expected
    assert writes() == 4 and sandbox.applied["productVariantsBulkUpdate"] == 4

    # An ERP re-stamp with the same price (a user saving the record again) writes nothing anywhere.
    erp.set_prices([ItemPrice("SKU-A", "WEB", Decimal("19.99"))])
    stack.poll_erp()
    stack.settle()
    assert writes() == 4 and sandbox.applied["productVariantsBulkUpdate"] == 4
    assert len(stack.dead_letters(STOREFRONT)) == len(stack.dead_letters(STORE)) == 2  # nothing new parked

    # Once the typo is fixed in the ERP, `syncline dlq redrive` brings the fix (no poll needed).
    config = str(stack.config_file)  # type: ignore[attr-defined]
    erp.set_prices([ItemPrice("SKU-NEG", "WEB", Decimal("1.00"))])
    code, report = run_cli(stack, "dlq", "redrive", "--error", "negative price", "--json", "--config", config)
    assert code == 0 and sum(queue["moved"] for queue in report) == 2  # one per pair
    stack.drain()
    assert _storefront(stack)["SKU-NEG"] == (Decimal("1.00"), None)
    code, left = run_cli(stack, "dlq", "list", "--json", "--config", config)
    assert code == 4 and sorted(m["keys"] for m in left) == [["SKU-GHOST"], ["SKU-GHOST"]]


def test_backfill_refuses_a_price_pair_instead_of_loading_stock_into_it(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(stack.config_file)  # type: ignore[attr-defined]
    code, _ = run_cli(stack, "backfill", "erp-storefront-prices", "--config", config)
    assert code == 2
    said = capsys.readouterr().err
    assert "backfill loads one-way inventory_level pairs from sage300 into postgres" in said
    assert "erp-storefront-prices is one_way price, sage300 -> postgres" in said
    assert stack.storefront().execute("SELECT count(*) FROM inventory_levels").fetchone()[0] == 0


def test_the_price_worker_takes_its_sample_event_two_notices_of_one_item_cost_one_write(stack: LocalStack) -> None:
    erp, writes = stack.erp(), _count_price_writes(stack)
    erp.add_items([("A1-100", "Widget"), ("A1-200", "Gadget")])
    erp.set_prices(
        [
            ItemPrice("A1-100", "WEB", Decimal("4.99")),
            ItemPrice("A1-100", "MSRP", Decimal("6.49")),
            ItemPrice("A1-200", "WEB", Decimal("12")),
        ]
    )
    invocation = stack.functions[STOREFRONT].invoke(load_event("price_worker_change_notices.json"))
    assert invocation.response == {"batchItemFailures": []}
    assert _storefront(stack) == {"A1-100": (Decimal("4.99"), Decimal("6.49")), "A1-200": (Decimal(12), None)}
    assert writes() == 2
