"""The synthesized resources carry the properties the topology and configuration ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match

from infra.constructs.schedules import Schedules
from infra.stack import SynclineStack
from syncline.models import NOTICE_SOURCE_PREFIX
from syncline.settings import ENV_BUS, ENV_DLQ_URL, ENV_SOURCE, ENV_TABLE, ENV_TARGET
from syncline.topology import CONFLICT_STATUS_INDEX, RouteSpec, ScheduleSpec

if TYPE_CHECKING:
    from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra


def test_state_table_is_on_demand_with_ttl_pitr_encryption_and_retained(synthesized: Synthesized) -> None:
    spec = synthesized.topology.table
    synthesized.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "TableName": spec.name,
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
                "AttributeDefinitions": [
                    {"AttributeName": spec.partition_key, "AttributeType": "S"},
                    {"AttributeName": "status", "AttributeType": "S"},
                    {"AttributeName": "created_at", "AttributeType": "S"},
                ],
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
                "DeletionProtectionEnabled": True,
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_state_table_indexes_the_conflict_list_by_status(synthesized: Synthesized) -> None:
    # DESIGN: conflict items CF#{id}, pending / escalated / resolved, listed by status oldest first.
    (table,) = synthesized.of_type("AWS::DynamoDB::Table").values()
    assert table["Properties"]["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-status",
            "KeySchema": [
                {"AttributeName": "status", "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert synthesized.topology.table.indexes == (CONFLICT_STATUS_INDEX,)


def test_notice_bus_archives_every_syncline_notice_for_replay(synthesized: Synthesized) -> None:
    (bus_id,) = synthesized.of_type("AWS::Events::EventBus")
    assert synthesized.resources[bus_id]["Properties"]["Name"] == synthesized.topology.bus_name
    synthesized.template.has_resource_properties(
        "AWS::Events::Archive",
        {
            "SourceArn": synthesized.arn(bus_id),
            "EventPattern": {"source": [{"prefix": NOTICE_SOURCE_PREFIX}]},
            "RetentionDays": 30,
        },
    )


def test_each_queue_has_an_encrypted_tls_only_dlq_with_redrive_from_topology(synthesized: Synthesized) -> None:
    for spec in synthesized.topology.queues:
        queue_id, dlq_id = synthesized.queue_ids(spec.id)
        consumer = synthesized.topology.function(spec.consumer)
        queue = synthesized.resources[queue_id]["Properties"]
        assert queue["QueueName"] == spec.name
        assert queue["SqsManagedSseEnabled"] is True
        # Given a consumer timeout, the queue hides a received batch for six of them.
        assert queue["VisibilityTimeout"] == 6 * consumer.timeout_seconds
        assert queue["MessageRetentionPeriod"] == spec.retention_days * 86_400
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": synthesized.arn(dlq_id),
            "maxReceiveCount": spec.max_receive_count,
        }
        dlq = synthesized.resources[dlq_id]["Properties"]
        assert dlq == {
            "QueueName": spec.dlq_name,
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": spec.dlq_retention_days * 86_400,
        }
        for logical_id in (queue_id, dlq_id):
            synthesized.template.has_resource_properties(
                "AWS::SQS::QueuePolicy",
                {
                    "Queues": [synthesized.ref(logical_id)],
                    "PolicyDocument": {
                        "Statement": Match.array_with(
                            [
                                {
                                    "Effect": "Deny",
                                    "Action": "sqs:*",
                                    "Principal": {"AWS": "*"},
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    "Resource": synthesized.arn(logical_id),
                                }
                            ]
                        )
                    },
                },
            )


def test_rules_route_matching_notices_to_their_queue_and_failures_to_its_dlq(
    synthesized: Synthesized,
) -> None:
    (bus_id,) = synthesized.of_type("AWS::Events::EventBus")
    assert synthesized.topology.rules
    for rule in synthesized.topology.rules:
        queue_id, dlq_id = synthesized.queue_ids(rule.queue)
        synthesized.template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "Name": rule.name,
                "EventBusName": synthesized.ref(bus_id),
                "EventPattern": rule.pattern,
                "Targets": [
                    Match.object_like(
                        {
                            "Arn": synthesized.arn(queue_id),
                            "DeadLetterConfig": {"Arn": synthesized.arn(dlq_id)},
                        }
                    )
                ],
            },
        )


def test_every_function_gets_the_same_runtime_defaults(synthesized: Synthesized) -> None:
    for spec in synthesized.topology.functions:
        properties = synthesized.function_properties(spec.id)
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Handler"] == spec.handler
        assert properties["Timeout"] == spec.timeout_seconds
        assert properties["MemorySize"] == spec.memory_mb
        logging = properties["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        log_group = synthesized.resources[logging["LogGroup"]["Ref"]]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] == 30


def test_every_function_has_powertools_settings_and_the_table_name(synthesized: Synthesized) -> None:
    (table_id,) = synthesized.of_type("AWS::DynamoDB::Table")
    for spec in synthesized.topology.functions:
        variables = synthesized.function_properties(spec.id)["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == "syncline"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Syncline"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert variables[ENV_TABLE] == synthesized.ref(table_id)
        for name, value in spec.environment.items():
            assert variables[name] == value


def test_only_publishers_know_the_bus_and_only_dead_letterers_know_a_dlq(synthesized: Synthesized) -> None:
    (bus_id,) = synthesized.of_type("AWS::Events::EventBus")
    for spec in synthesized.topology.functions:
        variables = synthesized.function_properties(spec.id)["Environment"]["Variables"]
        if spec.publishes_notices:
            assert variables[ENV_BUS] == synthesized.ref(bus_id)
        else:
            assert ENV_BUS not in variables
        if spec.dead_letters_to:
            _, dlq_id = synthesized.queue_ids(spec.dead_letters_to)
            assert variables[ENV_DLQ_URL] == synthesized.ref(dlq_id)  # a queue's Ref is its URL
        else:
            assert ENV_DLQ_URL not in variables


def test_poller_runs_alone_and_reads_the_erp(synthesized: Synthesized) -> None:
    properties = synthesized.function_properties("poller")
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["Environment"]["Variables"][ENV_SOURCE] == "sage300"


def test_sync_workers_scale_freely_and_know_their_target(synthesized: Synthesized) -> None:
    for spec in synthesized.topology.queues:
        properties = synthesized.function_properties(spec.consumer)
        assert "ReservedConcurrentExecutions" not in properties
        assert properties["Environment"]["Variables"][ENV_TARGET] in synthesized.config.systems


def test_queues_feed_their_consumer_with_partial_batch_failures(synthesized: Synthesized) -> None:
    mappings = synthesized.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(synthesized.topology.queues)
    for spec in synthesized.topology.queues:
        queue_id, _ = synthesized.queue_ids(spec.id)
        synthesized.template.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": synthesized.arn(queue_id),
                "FunctionName": synthesized.ref(synthesized.logical_id(spec.consumer)),
                "BatchSize": spec.batch_size,
                "MaximumBatchingWindowInSeconds": spec.max_batching_window_seconds,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        )


def test_poll_schedule_rate_comes_from_the_configuration(synthesized: Synthesized) -> None:
    rate_seconds = synthesized.config.poller.rate_seconds
    minutes = rate_seconds // 60
    poller_id = synthesized.logical_id("poller")
    synthesized.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": f"rate({minutes} minute{'s' if minutes > 1 else ''})",
            "Targets": [Match.object_like({"Arn": synthesized.arn(poller_id)})],
        },
    )
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": synthesized.arn(poller_id),
            "Principal": "events.amazonaws.com",
        },
    )
    # A missed tick is not retried: the next one resumes from the watermark.
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": synthesized.ref(poller_id),
            "MaximumRetryAttempts": 0,
            "MaximumEventAgeInSeconds": max(60, rate_seconds),
        },
    )


def test_a_sub_minute_schedule_is_refused_with_a_clear_error() -> None:
    spec = ScheduleSpec(id="poll_erp", rate_seconds=90, function="poller")
    with pytest.raises(ValueError, match=r"rate_seconds=90 .* whole minutes"):
        Schedules(Stack(), "Schedules", specs=[spec], functions={})


def test_a_topology_without_routes_deploys_no_webhook_api(synthesized: Synthesized) -> None:
    config = synthesized.config.model_copy(update={"webhooks": {}})
    topology = synthesized.topology.model_copy(
        update={"routes": (), "functions": tuple(f for f in synthesized.topology.functions if f.id != "webhook")}
    )
    stack = SynclineStack(Stack(), "NoRoutes", config=config, topology=topology, code_dir=synthesized.outdir)
    assert stack.webhook_api is None
    assert RouteSpec(method="POST", path="/webhooks/{source}", function="webhook") in synthesized.topology.routes


def test_the_app_applies_the_feature_flags_from_cdk_json(synthesized: Synthesized) -> None:
    assert synthesized.stack.node.try_get_context("@aws-cdk/aws-iam:minimizePolicies") is True
