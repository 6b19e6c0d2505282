"""Helpers for end-to-end scenarios on the local stack."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from syncline.cli import main
from syncline.config import DEFAULT_PATH

LOCATION_MAP = {"1": "main", "2": "east", "3": "west"}


def config_with(tmp_path: Path, **poller: int) -> Path:
    """The default configuration with some ``[poller]`` values replaced."""
    lines = []
    for line in DEFAULT_PATH.read_text().splitlines():
        name = line.split("=")[0].strip()
        lines.append(f"{name} = {poller[name]}" if name in poller else line)
    path = tmp_path / "syncline.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_levels(stack: Any) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """What the storefront must hold: every ERP row at a mapped location, as (on hand, available)."""
    return {
        (item, LOCATION_MAP[location]): (on_hand, max(on_hand - committed, Decimal(0)))
        for (item, location), (on_hand, committed, _) in stack.erp().stock().items()
        if location in LOCATION_MAP and on_hand >= 0
    }


def storefront_levels(stack: Any) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    rows = stack.storefront().execute("SELECT sku, location, on_hand, available FROM inventory_levels").fetchall()
    return {(sku, location): (on_hand, available) for sku, location, on_hand, available in rows}


def count_storefront_writes(stack: Any) -> Any:
    """Install a trigger that logs every write to inventory_levels; returns a function reading the count."""
    connection = stack.storefront()
    connection.execute(
        """
        CREATE TABLE write_log (sku text, location text, source_version bigint);
        CREATE FUNCTION log_write() RETURNS trigger AS $$
        BEGIN INSERT INTO write_log VALUES (NEW.sku, NEW.location, NEW.source_version); RETURN NEW; END $$ LANGUAGE plpgsql;
        CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON inventory_levels FOR EACH ROW EXECUTE FUNCTION log_write();
        """
    )

    def writes() -> int:
        row = connection.execute("SELECT count(*) FROM write_log").fetchone()
        return int(row[0])

    return writes


def run_cli(stack: Any, *argv: str) -> tuple[int, Any]:
    """Run ``syncline ARGV`` against the stack's moto server; (exit code, parsed JSON or the text printed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--endpoint-url", stack.moto.endpoint])
    text = out.getvalue()
    try:
        return code, json.loads(text)
    except json.JSONDecodeError:
        return code, text


def bus_tap(stack: Any, name: str, detail_types: list[str]) -> Callable[[], list[dict[str, Any]]]:
    """A copy of every event of ``detail_types`` on the stack's bus, in a queue ``name`` of its own; returns a
    function taking (and removing) what arrived, as EventBridge delivered it."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    inbox = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=stack.resources.bus, EventPattern=json.dumps({"detail-type": detail_types}))
    events.put_targets(Rule=name, EventBusName=stack.resources.bus, Targets=[{"Id": "inbox", "Arn": arn}])

    def take() -> list[dict[str, Any]]:
        taken = []
        while messages := sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                taken.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
        return taken

    return take


@contextlib.contextmanager
def stack_with(services: tuple[Any, Any], tmp_path: Path, extra: str) -> Iterator[Any]:
    """A fresh local stack on the session's services, configured as functions/syncline.toml plus ``extra``;
    ``stack.config_file`` is that file (for the CLI's ``--config``)."""
    from syncline.local.stack import LocalStack

    moto, postgres = services
    moto.reset()
    config = tmp_path / "syncline.toml"
    config.write_text(DEFAULT_PATH.read_text() + extra)
    stack = LocalStack.up(moto=moto, postgres=postgres, work_dir=tmp_path, config_path=config)
    stack.config_file = config
    try:
        yield stack
    finally:
        stack.down()
