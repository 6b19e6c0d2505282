"""The `syncline` command as a user runs it: demo, local up --once, help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncline.cli import main
from syncline.local.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_on_embedded_defaults_and_reports_consistency(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = main(["demo", "--items", "8", "--changes", "3", "--json"])
    out = capsys.readouterr().out
    assert exit_code == 0
    assert "✓ consistent" in out
    assert "negative quantity: QTYONHAND = -5.0000" in out  # the DLQ table explains why
    # 8 items x 3 locations, and the 5 spare parts at location 1 (the storefront takes them too); parked: the
    # 3 stock rows and 2 prices no storefront can take
    assert '"in_agreement": 29' in out and '"dead_letters": 5' in out
    assert "negative price: UNITPRICE of WEB = -4.500000" in out


def test_demo_against_an_existing_server_via_database_url(services: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, postgres = services
    assert main(["demo", "--items", "4", "--changes", "2", "--database-url", postgres.admin_conninfo]) == 0
    assert "PostgreSQL: DATABASE_URL" in capsys.readouterr().out


def test_local_up_once_starts_polls_reports_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["local", "up", "--seed-items", "5", "--once"]) == 0
    captured = capsys.readouterr()
    assert "poll: 20 notices" in captured.err  # 15 ICILOC rows + 5 items
    assert "storefront rows: 15" in captured.out
    assert not (tmp_path / ".local" / "stack.json").exists()  # cleaned up on the way out


def test_help_teaches_and_bad_usage_fails_cleanly() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "functions")}
    helped = subprocess.run(
        [sys.executable, "-m", "syncline.cli", "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert helped.returncode == 0
    assert "syncline local up" in helped.stdout and "demo" in helped.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "syncline.cli", "local", "up", "--poll-every", "soon"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "invalid float value" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_status_without_a_running_stack_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["local", "status"]) == 3
    assert "syncline local up" in capsys.readouterr().err


def test_local_stack_is_the_one_from_the_topology(stack: LocalStack) -> None:
    # Every queue of the topology exists with its DLQ and redrive policy, as the CDK app deploys it.
    import json

    import boto3

    sqs = boto3.client("sqs")
    for spec in stack.topology.queues:
        url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["maxReceiveCount"] == spec.max_receive_count
        assert policy["deadLetterTargetArn"].endswith(f":{spec.dlq_name}")
        assert int(attributes["VisibilityTimeout"]) == stack.topology.visibility_timeout(spec)
    rules = boto3.client("events").list_rules(EventBusName=stack.topology.bus_name)["Rules"]
    assert {r["Name"] for r in rules} >= {r.name for r in stack.topology.rules}
