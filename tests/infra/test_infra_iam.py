"""Each function's role allows exactly what its FunctionSpec declares, and nothing on other resources."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import App, Stack, assertions
from aws_cdk import aws_lambda as lambda_

from infra import FUNCTIONS_DIR
from infra.constructs.notice_bus import NoticeBus
from infra.constructs.state_table import StateTable
from infra.constructs.sync_queue import SyncQueue
from infra.function_builder import FunctionBuilder, import_secrets
from syncline.topology import FunctionSpec, QueueSpec, TableSpec, webhook_secret_id

if TYPE_CHECKING:
    from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
TABLE_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def statements(resources: dict[str, dict[str, Any]], function_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the execution role of one function (its inline and attached policies)."""
    role_id = resources[function_logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "no AWS managed policy (AWSLambdaBasicExecutionRole logs to *)"
    found = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in found)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(found: list[dict[str, Any]], action_prefix: str) -> list[tuple[str, Any]]:
    """(action, resource) pairs granted for actions starting with ``action_prefix``."""
    return [
        (action, resource)
        for statement in found
        for action in _as_list(statement["Action"])
        if action.startswith(action_prefix)
        for resource in _as_list(statement["Resource"])
    ]


def secret_name(resource: Any) -> str:
    """The secret name in a Secrets Manager ARN built by CDK (``...:secret:NAME-??????``)."""
    tail = resource["Fn::Join"][1][-1]
    match = re.fullmatch(r":secret:(.+)-\?{6}", tail)
    assert match, f"not a by-name secret ARN: {tail!r}"
    return match.group(1)


def test_only_the_poller_may_publish_notices(synthesized: Synthesized) -> None:
    (bus_id,) = synthesized.of_type("AWS::Events::EventBus")
    poller = statements(synthesized.resources, synthesized.logical_id("poller"))
    assert allowed(poller, "events:") == [("events:PutEvents", synthesized.arn(bus_id))]
    for spec in synthesized.topology.queues:
        worker = statements(synthesized.resources, synthesized.logical_id(spec.consumer))
        assert allowed(worker, "events:") == []


def test_a_sync_worker_may_send_to_its_own_dlq_and_consume_its_queue_only(synthesized: Synthesized) -> None:
    for spec in synthesized.topology.queues:
        queue_id, dlq_id = synthesized.queue_ids(spec.id)
        worker = statements(synthesized.resources, synthesized.logical_id(spec.consumer))
        sqs = allowed(worker, "sqs:")
        assert ("sqs:SendMessage", synthesized.arn(dlq_id)) in sqs
        assert ("sqs:ReceiveMessage", synthesized.arn(queue_id)) in sqs
        assert {resource["Fn::GetAtt"][0] for _, resource in sqs} == {queue_id, dlq_id}
        assert ("sqs:SendMessage", synthesized.arn(queue_id)) not in sqs


def test_the_webhook_function_publishes_records_deliveries_and_reads_only_webhook_secrets(
    synthesized: Synthesized,
) -> None:
    (bus_id,) = synthesized.of_type("AWS::Events::EventBus")
    webhook = statements(synthesized.resources, synthesized.logical_id("webhook"))
    assert allowed(webhook, "events:") == [("events:PutEvents", synthesized.arn(bus_id))]
    assert allowed(webhook, "sqs:") == []
    names = {secret_name(resource) for _, resource in allowed(webhook, "secretsmanager:")}
    assert names == {source.secret for source in synthesized.config.webhooks.values()}
    assert not names & {system.secret for system in synthesized.config.systems.values()}


def test_the_poller_touches_no_queue(synthesized: Synthesized) -> None:
    poller = statements(synthesized.resources, synthesized.logical_id("poller"))
    assert allowed(poller, "sqs:") == []


def test_secrets_are_readable_only_by_functions_naming_their_system(synthesized: Synthesized) -> None:
    config = synthesized.config
    references = {name: system.secret for name, system in config.systems.items()} | {
        webhook_secret_id(name): source.secret for name, source in config.webhooks.items()
    }
    for spec in synthesized.topology.functions:
        granted = allowed(statements(synthesized.resources, synthesized.logical_id(spec.id)), "secretsmanager:")
        assert {action for action, _ in granted} <= {
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
        }
        names = {secret_name(resource) for _, resource in granted}
        assert names == {references[reference] for reference in spec.secrets}, spec.id


def test_table_access_matches_the_spec(synthesized: Synthesized) -> None:
    (table_id,) = synthesized.of_type("AWS::DynamoDB::Table")
    # The table itself and its own indexes (the conflict list by status), nothing else.
    on_table = [synthesized.arn(table_id), {"Fn::Join": ["", [synthesized.arn(table_id), "/index/*"]]}]
    for spec in synthesized.topology.functions:
        granted = allowed(statements(synthesized.resources, synthesized.logical_id(spec.id)), "dynamodb:")
        actions = {action for action, _ in granted}
        assert all(resource in on_table for _, resource in granted), spec.id
        if spec.table_access is not None:
            assert {json.dumps(resource) for _, resource in granted} == {json.dumps(arn) for arn in on_table}
        assert ("dynamodb:GetItem" in actions) == (spec.table_access is not None)
        assert (actions >= TABLE_WRITES) == (spec.table_access == "readwrite")


def test_functions_log_only_to_their_own_log_group(synthesized: Synthesized) -> None:
    for spec in synthesized.topology.functions:
        properties = synthesized.function_properties(spec.id)
        own_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        granted = allowed(statements(synthesized.resources, synthesized.logical_id(spec.id)), "logs:")
        assert sorted(granted, key=str) == [
            ("logs:CreateLogStream", synthesized.arn(own_group)),
            ("logs:PutLogEvents", synthesized.arn(own_group)),
        ]


def test_the_only_wildcard_resource_is_xray(synthesized: Synthesized) -> None:
    for spec in synthesized.topology.functions:
        for statement in statements(synthesized.resources, synthesized.logical_id(spec.id)):
            if "*" in _as_list(statement["Resource"]):
                assert set(_as_list(statement["Action"])) == XRAY


def test_a_read_only_function_without_declarations_gets_nothing_else() -> None:
    """The builder's other branches, on a spec the current topology does not contain."""
    stack = Stack(App(), "Builder")
    queue = SyncQueue(stack, "Queue", spec=QueueSpec(id="q", name="q", consumer="x"), visibility_timeout_seconds=60)
    builder = FunctionBuilder(
        stack,
        code=lambda_.Code.from_asset(str(FUNCTIONS_DIR)),
        table=StateTable(stack, "State", spec=TableSpec(name="t")).table,
        bus=NoticeBus(stack, "Notices", bus_name="b").bus,
        dead_letter_queues={"q": queue.dead_letter_queue},
        secrets=import_secrets(stack, {}),
    )
    function = builder.build(FunctionSpec(id="reader", handler="handlers.reader.handler", table_access="read"))
    template = assertions.Template.from_stack(stack).to_json()
    found = statements(template["Resources"], stack.get_logical_id(function.node.default_child))
    actions = {action for action, _ in allowed(found, "")}
    assert "dynamodb:GetItem" in actions
    assert "dynamodb:Query" in actions
    assert not actions & TABLE_WRITES
    assert not {a for a in actions if a.startswith(("events:", "sqs:", "secretsmanager:"))}
