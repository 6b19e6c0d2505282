"""The demo scenario: a small Sage 300 company syncing stock and prices to its PostgreSQL storefront and two
Shopify stores (kept in agreement with each other), orders to its OMS, spare parts to its CMMS (``demo_stores``)."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import httpx
from rich.console import Console
from rich.table import Table

from syncline.local import demo_stores
from syncline.local.emf import MetricLog, percentile
from syncline.local.sage300 import Stock
from syncline.local.stack import LocalStack

QUEUE = "sync_storefront"
PRICE_QUEUE = "sync_storefront_price"
STOREFRONT_QUEUES = (QUEUE, PRICE_QUEUE)  # what a poll puts on the storefront's queues: shown, then replayed


@dataclass
class Round:
    title: str
    what: str
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return int(sum(self.metrics.get(name, [])))


def run_demo(
    *,
    items: int = 200,
    changes: int = 40,
    seed: int = 42,
    console: Console | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Run the scenario on a fresh local stack, print a summary, return the figures."""
    # A wider table than a pipe's default 80 columns, so figures are not cut when output is captured.
    console = console or (Console() if sys.stdout.isatty() else Console(width=120))
    rng = random.Random(seed)  # noqa: S311 - demo data
    work_dir = Path(tempfile.mkdtemp(prefix="syncline-demo-"))
    with console.status(
        "Starting the local stack (moto server, embedded PostgreSQL, Sage 300 emulator, Shopify and Fracttal sandboxes)…"
    ):
        started = time.perf_counter()
        stack = LocalStack.up(
            database_url=database_url, work_dir=work_dir, config_path=demo_stores.write_demo_config(work_dir)
        )
        startup = time.perf_counter() - started
    try:
        status = stack.status()
        console.print(
            f"[bold]Local stack up[/] in {startup:.1f} s · AWS: moto server {status['moto_endpoint']} · "
            f"PostgreSQL: {status['postgres']}\n  function logs and EMF metrics: {status['logs']}"
        )
        erp = stack.erp()
        metric_log = MetricLog(stack.work_dir / "logs" / "functions.log")
        rounds: list[Round] = []

        def run_round(
            title: str, what: str, deliveries: Callable[[list[Message]], list[Message]] | None = None
        ) -> list[Message]:
            """Poll, deliver, drain; returns the message bodies the poll produced."""
            metric_log.mark()
            began = time.perf_counter()
            stack.poll_erp()
            bodies = _take_messages(stack)
            _send_messages(stack, deliveries(bodies) if deliveries else bodies)
            stack.settle()
            rounds.append(Round(title, what, metric_log.read(), time.perf_counter() - began))
            return bodies

        # 1. Initial load, with three rows no storefront can take.
        erp.add_items([(f"SKU-{i:04d}", f"Demo item {i}") for i in range(items)])
        erp.set_stock(
            Stock(f"SKU-{i:04d}", location, Decimal(rng.randint(0, 400)), committed=Decimal(rng.randint(0, 10)))
            for i in range(items)
            for location in ("1", "2", "3")
        )
        erp.add_items([("SKU-NEG", "Counted wrong"), ("SKU-QC", "Quality hold"), ("SKU-STAMP", "Broken stamp")])
        erp.set_stock(
            [
                Stock("SKU-NEG", "1", Decimal(-5)),
                Stock("SKU-QC", "QC", Decimal(12)),
                Stock("SKU-STAMP", "2", Decimal(3)),
            ]
        )
        erp.set_raw_stamp("SKU-STAMP", "2", 20261131, 12000000)
        demo_stores.seed(stack, erp)
        demo_stores.seed_prices(erp, items)
        run_round(
            "1 · initial",
            f"{items} items x 3 locations (10 sold in two Shopify stores) with web prices, 5 spare parts for the "
            "CMMS, plus 3 stock rows and 2 prices no storefront can take",
        )

        # 2. A morning of stock movements and one item renamed in the item master.
        keys = rng.sample(sorted(k for k in erp.stock() if k[0].startswith("SKU-0")), changes)
        erp.set_stock(Stock(item, location, Decimal(rng.randint(0, 400))) for item, location in keys)
        erp.rename_item("SKU-0001", "Demo item 1 (new packaging)")
        others = [f"SKU-{i:04d}" for i in range(10, items)]
        repriced = ["SKU-0001", "SKU-0003", *rng.sample(others, min(8, len(others)))]
        demo_stores.change_prices(erp, repriced)
        round_two = run_round(
            "2 · changes",
            f"{changes} stock movements + 1 item renamed (3 locations) + {len(repriced)} web prices and 1 MSRP changed",
        )

        # 3. Round 2's messages delivered twice more, shuffled (at-least-once delivery): nothing may change.
        metric_log.mark()
        began = time.perf_counter()
        replay = round_two * 2
        rng.shuffle(replay)
        _send_messages(stack, replay)
        stack.drain()
        what = f"round 2's {len(round_two)} messages delivered twice more, shuffled"
        rounds.append(Round("3 · duplicates", what, metric_log.read(), time.perf_counter() - began))

        # 4. A morning in the stores: sales, a record changed in both stores at once, an order.
        rounds.append(_stores_round(console, stack, metric_log))

        return _report(console, stack, work_dir, rounds)
    finally:
        stack.down()


def _stores_round(console: Console, stack: LocalStack, metric_log: MetricLog) -> Round:
    metric_log.mark()
    began = time.perf_counter()
    with console.status("Store activity: webhooks from the Shopify sandboxes through the local gateway…"):
        what = demo_stores.store_activity(stack)
        stack.settle()
    return Round("4 · stores", what, metric_log.read(), time.perf_counter() - began)


def _report(console: Console, stack: LocalStack, work_dir: Path, rounds: list[Round]) -> dict[str, Any]:
    """Print the summaries (rounds, consistency, DLQ, webhooks, per pair) and return the figures."""
    webhooks = _webhook_round(stack)
    consistency = _consistency(stack)
    prices = demo_stores.prices_agree(stack)
    dead = [letter for queue in STOREFRONT_QUEUES for letter in stack.dead_letters(queue)]
    _print_summary(console, rounds, consistency, dead)
    _print_prices(console, prices)
    _print_webhooks(console, webhooks)
    pairs = demo_stores.pair_figures(stack, work_dir / "logs" / "functions.log")
    demo_stores.print_pairs(console, pairs)
    equal, compared = demo_stores.stores_agree(stack)
    mark = "[green]✓[/]" if equal == compared else "[red]✗[/]"
    console.print(f"{mark} the two stores agree on {equal} of {compared} records")
    crm_ok = demo_stores.crm_and_oms_agree(stack)
    console.print(f"{'[green]✓[/]' if crm_ok else '[red]✗[/]'} HubSpot and the OMS agree on both customers")
    return {
        "pairs": pairs,
        "stores_agree": {"equal": equal, "compared": compared},
        "crm_agrees": crm_ok,
        "rounds": [
            {
                "title": r.title,
                "synced": r.total("Synced"),
                "skipped": r.total("Skipped"),
                "dead_lettered": r.total("DeadLettered"),
            }
            for r in rounds
        ],
        "consistency": consistency,
        "prices": prices,
        "dead_letters": len(dead),
        "webhooks": webhooks,
    }


WEBHOOK_SOURCE = "shopify-store-a"


def _webhook_round(stack: LocalStack) -> dict[str, int]:
    """One Shopify inventory webhook signed and accepted, the same delivery again, and a forgery."""
    if WEBHOOK_SOURCE not in stack.config.webhooks:
        return {}
    level = {"inventory_item_id": 271878346596884015, "location_id": 24826418, "available": 6}
    with httpx.Client(timeout=10) as client:
        sender = stack.webhook_sender(WEBHOOK_SOURCE, client)
        accepted = sender.post(level, delivery_id="demo-event-1")
        duplicate = sender.post(level, delivery_id="demo-event-1")
        forged = sender.post(level | {"available": 9999}, delivery_id="demo-event-2", forged=True)
    return {"signed": accepted.status_code, "duplicate": duplicate.status_code, "forged": forged.status_code}


def _print_webhooks(console: Console, webhooks: dict[str, int]) -> None:
    if not webhooks:
        return
    ok = (webhooks["signed"], webhooks["duplicate"], webhooks["forged"]) == (202, 200, 401)
    mark = "[green]✓[/]" if ok else "[red]✗[/]"
    console.print(
        f"{mark} webhooks to /webhooks/{WEBHOOK_SOURCE}: signed accepted ({webhooks['signed']}) · "
        f"duplicate absorbed ({webhooks['duplicate']}) · forged rejected ({webhooks['forged']})"
    )


Message = tuple[str, str]  # (queue id, body)


def _take_messages(stack: LocalStack) -> list[Message]:
    """Take every waiting message off the storefront's queues (to show what the poll produced, and replay it)."""
    sqs = boto3.client("sqs")
    taken: list[Message] = []
    for queue in STOREFRONT_QUEUES:
        url = stack.resources.queues[queue].url
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                taken.append((queue, message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return taken


def _send_messages(stack: LocalStack, messages: list[Message]) -> None:
    sqs = boto3.client("sqs")
    for queue in STOREFRONT_QUEUES:
        url = stack.resources.queues[queue].url
        bodies = [body for where, body in messages if where == queue]
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]


def _print_prices(console: Console, prices: dict[str, int]) -> None:
    ok = prices["storefront_agree"] == prices["syncable"] and prices["stores_agree"] == prices["store_prices"]
    console.print(
        f"{'[green]✓[/]' if ok else '[red]✗[/]'} prices: the storefront matches the ERP's web prices for "
        f"{prices['storefront_agree']} of {prices['syncable']} syncable items; the two stores show the ERP's price "
        f"and compare-at price on {prices['stores_agree']} of {prices['store_prices']} variants"
    )


def _consistency(stack: LocalStack) -> dict[str, int]:
    mapping = {"1": "main", "2": "east", "3": "west"}
    erp_rows = stack.erp().stock()
    store = {
        (sku, location): on_hand
        for sku, location, on_hand in stack.storefront()
        .execute("SELECT sku, location, on_hand FROM inventory_levels")
        .fetchall()
    }
    syncable = {
        (item, mapping[loc]): qty[0]
        for (item, loc), qty in erp_rows.items()
        if loc in mapping and qty[0] >= 0 and item != "SKU-STAMP"
    }
    agree = sum(1 for key, qty in syncable.items() if store.get(key) == qty)
    return {"erp_rows": len(erp_rows), "syncable": len(syncable), "in_agreement": agree, "storefront_rows": len(store)}


def _print_summary(
    console: Console, rounds: list[Round], consistency: dict[str, int], dead: list[dict[str, Any]]
) -> None:
    for r in rounds:
        console.print(f"  round {r.title}: {r.what}")
    table = Table(title="What Syncline did", title_justify="left")
    for column in ("round", "notices", "synced", "skipped", "to DLQ", "latency p50/p99", "took"):
        table.add_column(column, justify="left" if column == "round" else "right", no_wrap=True)
    for r in rounds:
        latency = r.metrics.get("SyncLatency", [])
        table.add_row(
            r.title,
            str(r.total("Notices")),
            str(r.total("Synced")),
            str(r.total("Skipped")),
            str(r.total("DeadLettered")),
            f"{percentile(latency, 0.5):.0f}/{percentile(latency, 0.99):.0f} ms" if latency else "-",
            f"{r.seconds:.1f} s",
        )
    console.print(table)
    ok = consistency["in_agreement"] == consistency["syncable"]
    mark = "[green]✓ consistent[/]" if ok else "[red]✗ DIVERGED[/]"
    console.print(
        f"{mark}: storefront matches the ERP for {consistency['in_agreement']} of {consistency['syncable']} syncable rows "
        f"({consistency['erp_rows']} ERP rows; the rest are parked below)."
    )
    dlq = Table(title=f"Dead-letter queue ({len(dead)}): fix the cause, then redrive", title_justify="left")
    dlq.add_column("record")
    dlq.add_column("stage")
    dlq.add_column("reason")
    for message in sorted(dead, key=lambda m: m["attributes"].get("syncline-key", "")):
        attributes = message["attributes"]
        dlq.add_row(
            attributes.get("syncline-key", "?"),
            attributes.get("syncline-stage", "?"),
            attributes.get("syncline-reason", "?"),
        )
    console.print(dlq)
    console.print(
        "Latency is measured from the poll that saw a change to the storefront commit (the SyncLatency metric). "
        "Each message in the DLQ holds the notice, the fetched ERP row and the reason."
    )
