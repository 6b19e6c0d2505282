"""Two-way pairs in the template: a queue, worker and routing rule per pair, the conflict sweeper on its
schedule, and the escalation topic only the sweeper may publish to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import FUNCTIONS_DIR
from infra.application import create_app
from syncline.config import DEFAULT_PATH, load_config
from tests.infra.test_infra_iam import allowed, secret_name, statements

pytestmark = pytest.mark.infra

TWO_STORES = """
[systems.store_a]
kind = "postgres"
secret = "syncline/store-a"

[systems.store_b]
kind = "postgres"
secret = "syncline/store-b"

[systems.cmms]
kind = "fracttal"
secret = "syncline/fracttal"
token_url = "https://app.fracttal.com/oauth/token"
warehouse_code = "WH"

[review]
sweep_rate_seconds = 900

[monitoring.stock]
enabled = true
default_reorder_point = 5

[alert_channels.ops-slack]
kind = "slack"
secret = "syncline/alerts/ops-slack"

[[notifications]]
name = "low-stock"
event = "StockLevelCrossed"
when = [{ field = "kind", equals = "below_reorder_point" }]
channels = ["ops-slack"]
message = "{sku} at {location}: {available:.0f} left"

[[pairs]]
name = "erp-cmms"
source = "sage300"
target = "cmms"
entity = "inventory_level"
locations = { "1" = "plant" }

[[pairs]]
name = "stores-products"
source = "store_a"
target = "store_b"
entity = "product"
direction = "two_way"
"""


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("twoway")
    config_path = work / "syncline.toml"
    config_path.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + TWO_STORES, encoding="utf-8")
    app, stack = create_app(outdir=str(work / "cdk.out"), config=load_config(config_path), code_dir=FUNCTIONS_DIR)
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error
    template = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    return stack, json.loads(template.read_text(encoding="utf-8"))["Resources"]


def _logical_id(stack: Any, function_id: str) -> str:
    return str(stack.get_logical_id(stack.functions[function_id].node.default_child))


def test_each_two_way_pair_has_its_worker_fed_by_its_own_queue(synthesized: tuple[Any, Any]) -> None:
    stack, resources = synthesized
    worker = resources[_logical_id(stack, "twoway_stores_products")]["Properties"]
    assert worker["Handler"] == "handlers.twoway_worker.handler"
    assert worker["Environment"]["Variables"]["SYNCLINE_PAIR"] == "stores-products"
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    pattern = next(r["EventPattern"] for r in rules if r.get("Name") == "syncline-between-stores-products")
    assert pattern["source"] == ["syncline.store_a", "syncline.store_b"]
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert any(m["FunctionName"] == {"Ref": _logical_id(stack, "twoway_stores_products")} for m in mappings)


def test_only_the_sweeper_publishes_to_the_escalation_topic(synthesized: tuple[Any, Any]) -> None:
    stack, resources = synthesized
    (topic_id,) = [
        key
        for key, r in resources.items()
        if r["Type"] == "AWS::SNS::Topic" and r["Properties"].get("TopicName") == "syncline-escalations"
    ]
    topic = resources[topic_id]["Properties"]
    assert "KmsMasterKeyId" in topic  # encrypted at rest
    sweeper = resources[_logical_id(stack, "conflict_sweeper")]["Properties"]
    assert sweeper["Environment"]["Variables"]["SYNCLINE_ESCALATION_TOPIC"] == {"Ref": topic_id}
    for function_id in stack.functions:
        publishes = allowed(statements(resources, _logical_id(stack, function_id)), "sns:Publish")
        if function_id == "conflict_sweeper":
            assert publishes == [("sns:Publish", {"Ref": topic_id})]
        else:
            assert publishes == [], function_id
    schedules = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule" and r["Properties"].get("ScheduleExpression")
    ]
    assert any(s["ScheduleExpression"] == "rate(15 minutes)" for s in schedules)


def test_the_token_refresher_runs_every_ten_minutes_reading_only_oauth_secrets(synthesized: tuple[Any, Any]) -> None:
    stack, resources = synthesized
    refresher = _logical_id(stack, "token_refresher")
    assert resources[refresher]["Properties"]["Handler"] == "handlers.token_refresher.handler"
    secrets = allowed(statements(resources, refresher), "secretsmanager:GetSecretValue")
    assert [secret_name(resource) for _, resource in secrets] == ["syncline/fracttal"]
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert any(
        r.get("ScheduleExpression") == "rate(10 minutes)"
        and any(t["Arn"] == {"Fn::GetAtt": [refresher, "Arn"]} for t in r["Targets"])
        for r in rules
    )


def test_the_notifier_reads_only_its_channels_secrets_and_takes_the_rules_event_types(synthesized: Any) -> None:
    stack, resources = synthesized
    notifier = _logical_id(stack, "notifier")
    secrets = allowed(statements(resources, notifier), "secretsmanager:GetSecretValue")
    assert [secret_name(resource) for _, resource in secrets] == ["syncline/alerts/ops-slack"]
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    pattern = next(r["EventPattern"] for r in rules if r.get("Name") == "syncline-notify")
    assert pattern == {"detail-type": ["StockLevelCrossed"]}
    # The inventory workers publish the events the rules listen to.
    for worker in ("sync_storefront", "sync_cmms"):
        assert allowed(statements(resources, _logical_id(stack, worker)), "events:PutEvents"), worker
