"""Salesforce and a generic REST system in the template: the Event Relay partner bus with its rule to the relay's
queue, a relay that can only publish notices, the two-way worker reading the org's secret, and the REST target's
queue and worker. The template still passes cdk-nag (synthesis) and cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from infra import FUNCTIONS_DIR
from infra.application import create_app
from syncline.config import DEFAULT_PATH, load_config
from tests.infra.test_infra_iam import allowed, secret_name, statements

pytestmark = pytest.mark.infra

EVENT_SOURCE = "aws.partner/salesforce.com/00DSB0000000001EAA/0YLSB0000000001AAA"
EXTRA = f"""
[systems.sfdc]
kind = "salesforce"
secret = "syncline/salesforce"
login_url = "https://example.my.salesforce.com"
event_source = "{EVENT_SOURCE}"

[systems.oms]
kind = "oms"
secret = "syncline/oms"

[systems.pos]
kind = "rest"
secret = "syncline/pos"
base_url = "https://pos.example.com"
auth = {{ kind = "api_key" }}
[systems.pos.entities.inventory_level]
key_field = "key"
upsert = {{ path = "/api/stock/{{key}}", method = "PUT" }}
fields = {{ key = "id", available = {{ source = "qty", transform = "decimal" }} }}

[systems.pim]
kind = "rest"
secret = "syncline/pim"
base_url = "https://pim.example.com"
poll_seconds = 120
[systems.pim.entities.product]
key_field = "sku"
list = {{ path = "/api/products" }}
get = {{ path = "/api/products/{{key}}" }}
upsert = {{ path = "/api/products/{{key}}", method = "PUT" }}
fields = {{ sku = "code", title = "name", updated_at = "updated_at" }}

[systems.catalog]
kind = "postgres"
secret = "syncline/catalog"
table = "catalog_records"

[[pairs]]
name = "pim-catalog"
source = "pim"
target = "catalog"
entity = "product"
direction = "two_way"

[[pairs]]
name = "sf-customers"
source = "sfdc"
target = "oms"
entity = "contact"
direction = "two_way"

[[pairs]]
name = "erp-pos-stock"
source = "sage300"
target = "pos"
entity = "inventory_level"
locations = {{ "1" = "main" }}
"""


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, dict[str, Any]], Path]:
    work = tmp_path_factory.mktemp("sfrest")
    config_path = work / "syncline.toml"
    config_path.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + EXTRA, encoding="utf-8")
    app, stack = create_app(outdir=str(work / "cdk.out"), config=load_config(config_path), code_dir=FUNCTIONS_DIR)
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error
    template = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    return stack, json.loads(template.read_text(encoding="utf-8"))["Resources"], template


def _logical_id(stack: Any, function_id: str) -> str:
    return str(stack.get_logical_id(stack.functions[function_id].node.default_child))


def test_the_event_relay_partner_bus_routes_contact_change_events_to_the_relay_queue(synthesized: Any) -> None:
    stack, resources, _ = synthesized
    (partner_bus_id,) = [
        key
        for key, r in resources.items()
        if r["Type"] == "AWS::Events::EventBus" and r["Properties"].get("EventSourceName") == EVENT_SOURCE
    ]
    assert resources[partner_bus_id]["Properties"]["Name"] == EVENT_SOURCE
    rule = next(
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule" and r["Properties"].get("Name") == "syncline-cdc-sfdc"
    )
    assert rule["EventBusName"] == {"Ref": partner_bus_id}
    assert rule["EventPattern"] == {"source": [EVENT_SOURCE], "detail-type": ["ContactChangeEvent"]}
    queue = stack.queues["cdc_sfdc"]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [stack.get_logical_id(queue.queue.node.default_child), "Arn"]}


def test_the_relay_publishes_notices_and_reads_no_secret(synthesized: Any) -> None:
    stack, resources, _ = synthesized
    relay = _logical_id(stack, "cdc_sfdc")
    assert resources[relay]["Properties"]["Handler"] == "handlers.salesforce_cdc.handler"
    assert resources[relay]["Properties"]["Environment"]["Variables"]["SYNCLINE_SOURCE"] == "sfdc"
    found = statements(resources, relay)
    assert [action for action, _ in allowed(found, "events:")] == ["events:PutEvents"]
    assert allowed(found, "secretsmanager:") == []


def test_the_pairs_workers_read_their_systems_secrets(synthesized: Any) -> None:
    stack, resources, _ = synthesized
    worker = _logical_id(stack, "twoway_sf_customers")
    secrets = allowed(statements(resources, worker), "secretsmanager:GetSecretValue")
    assert sorted(secret_name(resource) for _, resource in secrets) == ["syncline/oms", "syncline/salesforce"]
    pos = _logical_id(stack, "sync_pos")
    assert resources[pos]["Properties"]["Handler"] == "handlers.sync_worker.handler"
    secrets = allowed(statements(resources, pos), "secretsmanager:GetSecretValue")
    assert sorted(secret_name(resource) for _, resource in secrets) == ["syncline/pos", "syncline/sage300"]


def test_a_two_way_rest_system_is_polled_on_its_schedule_reading_only_its_secret(synthesized: Any) -> None:
    stack, resources, _ = synthesized
    poller = _logical_id(stack, "rest_poller_pim")
    assert resources[poller]["Properties"]["Handler"] == "handlers.rest_poller.handler"
    found = statements(resources, poller)
    secrets = allowed(found, "secretsmanager:GetSecretValue")
    assert [secret_name(resource) for _, resource in secrets] == ["syncline/pim"]
    assert [action for action, _ in allowed(found, "events:")] == ["events:PutEvents"]
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert any(
        r.get("ScheduleExpression") == "rate(2 minutes)"
        and any(t["Arn"] == {"Fn::GetAtt": [poller, "Arn"]} for t in r["Targets"])
        for r in rules
    )


def test_cfn_lint_reports_nothing(synthesized: Any) -> None:
    _, _, template = synthesized
    matches = lint_file(template, ManualArgs(ignore_checks=["W3005"], regions=["us-east-1", "eu-west-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
