"""The monitoring construct: alarms on the right metrics and thresholds, to the right topic; the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack, assertions
from aws_cdk import aws_lambda as lambda_

from infra.constructs.monitoring import Monitoring
from infra.constructs.sync_queue import SyncQueue
from syncline.topology import QueueSpec


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack = Stack(App(), "MonitoringTest")
    spec = QueueSpec(id="sync_storefront", name="syncline-sync-storefront", consumer="sync_storefront")
    queue = SyncQueue(stack, "Queue", spec=spec, visibility_timeout_seconds=180)
    worker = lambda_.Function(
        stack,
        "Worker",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
    )
    Monitoring(
        stack,
        "Monitoring",
        app="syncline",
        queues={"sync_storefront": queue},
        functions={"sync_storefront": worker},
        pairs=["erp-storefront-inventory"],
        max_lag_seconds=240,
    )
    return assertions.Template.from_stack(stack)


def _alarm(template: assertions.Template, metric: str, namespace: str) -> dict[str, Any]:
    found = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": metric, "Namespace": namespace}}
    )
    assert len(found) == 1, f"one alarm on {namespace}/{metric}, found {len(found)}"
    properties: dict[str, Any] = next(iter(found.values()))["Properties"]
    return properties


def _topic_ref(template: assertions.Template, level: str) -> dict[str, str]:
    topics = template.find_resources("AWS::SNS::Topic", {"Properties": {"TopicName": f"syncline-{level}"}})
    assert len(topics) == 1
    return {"Ref": next(iter(topics))}


def test_lag_on_the_work_queue_is_unhealthy_after_three_minutes_over_the_limit(template: assertions.Template) -> None:
    lag = _alarm(template, "ApproximateAgeOfOldestMessage", "AWS/SQS")
    assert (lag["Threshold"], lag["EvaluationPeriods"], lag["Period"], lag["Statistic"]) == (240, 3, 60, "Maximum")
    assert lag["ComparisonOperator"] == "GreaterThanThreshold"
    assert lag["AlarmActions"] == [_topic_ref(template, "unhealthy")]
    assert lag["TreatMissingData"] == "notBreaching"


def test_a_message_in_the_dlq_is_degraded_and_names_the_runbook(template: assertions.Template) -> None:
    dlq = _alarm(template, "ApproximateNumberOfMessagesVisible", "AWS/SQS")
    assert dlq["Threshold"] == 0
    assert dlq["AlarmActions"] == dlq["OKActions"] == [_topic_ref(template, "degraded")]
    assert "syncline dlq list" in dlq["AlarmDescription"]
    queue_ids = template.find_resources(
        "AWS::SQS::Queue", {"Properties": {"QueueName": "syncline-sync-storefront-dlq"}}
    )
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [next(iter(queue_ids)), "QueueName"]}}]


def test_function_errors_and_throttles_are_degraded(template: assertions.Template) -> None:
    for metric in ("Errors", "Throttles"):
        alarm = _alarm(template, metric, "AWS/Lambda")
        assert (alarm["Threshold"], alarm["Statistic"]) == (0, "Sum")
        assert alarm["AlarmActions"] == [_topic_ref(template, "degraded")]


def test_topics_are_encrypted_with_a_key_cloudwatch_may_use_and_tls_only(template: assertions.Template) -> None:
    template.resource_count_is("AWS::SNS::Topic", 2)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    key_policy = json.dumps(template.find_resources("AWS::KMS::Key"))
    assert "cloudwatch.amazonaws.com" in key_policy
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": assertions.Match.array_with(
                    [
                        assertions.Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_the_dashboard_shows_latency_throughput_errors_lag_dlq_and_lambda_health(template: assertions.Template) -> None:
    dashboards = template.find_resources("AWS::CloudWatch::Dashboard")
    assert [d["Properties"]["DashboardName"] for d in dashboards.values()] == ["syncline-operations"]
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    for title in (
        "Sync latency (ms)",
        "Throughput",
        "Errors: dead-lettered records",
        "Lag: oldest waiting change",
        "DLQ depth and oldest age",
        "Lambda errors and throttles",
        "Lambda duration p99",
        "Alarms",
    ):
        assert title in body, title
    for metric in (
        "SyncLatency",
        "DeadLettered",
        "FailedMessages",
        "ApproximateAgeOfOldestMessage",
        "Throttles",
        "HealthLevel",
        "LagSeconds",
    ):
        assert metric in body, metric
    assert "p99" in body and "p50" in body


def test_the_app_alarms_on_every_queue_and_function_of_the_topology(synthesized: Any) -> None:
    """Composed into the stack: a lag and a DLQ alarm per work queue, errors and throttles per function."""
    alarms = synthesized.of_type("AWS::CloudWatch::Alarm").values()
    per_metric: dict[str, int] = {}
    for alarm in alarms:
        per_metric[alarm["Properties"]["MetricName"]] = per_metric.get(alarm["Properties"]["MetricName"], 0) + 1
    queues, functions = len(synthesized.topology.queues), len(synthesized.topology.functions)
    assert per_metric == {
        "ApproximateAgeOfOldestMessage": queues,
        "ApproximateNumberOfMessagesVisible": queues,
        "Errors": functions,
        "Throttles": functions,
        "HealthLevel": 1,
        "ConsistencyRatio": len(synthesized.config.pairs),
    }


def test_each_pair_alarms_below_the_consistency_promise(synthesized: Any) -> None:
    (ratio,) = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ConsistencyRatio"
    ]
    assert (ratio["Threshold"], ratio["ComparisonOperator"], ratio["Statistic"]) == (
        0.9995,
        "LessThanThreshold",
        "Minimum",
    )
    assert {"Name": "pair", "Value": "erp-storefront-inventory"} in ratio["Dimensions"]
    assert "syncline reconcile erp-storefront-inventory" in ratio["AlarmDescription"]


def test_an_unhealthy_report_from_the_monitor_pages(template: assertions.Template) -> None:
    alarm = _alarm(template, "HealthLevel", "Syncline")
    assert (alarm["Threshold"], alarm["Statistic"], alarm["Dimensions"]) == (
        1,
        "Maximum",
        [{"Name": "service", "Value": "syncline"}],
    )
    assert alarm["AlarmActions"] == [_topic_ref(template, "unhealthy")]


def test_the_monitor_may_read_queue_depths_and_peek_dlqs_but_never_send_or_delete(synthesized: Any) -> None:
    from tests.infra.test_infra_iam import allowed, statements

    found = allowed(statements(synthesized.resources, synthesized.logical_id("monitor")), "sqs:")
    for spec in synthesized.topology.queues:
        queue_id, dlq_id = synthesized.queue_ids(spec.id)
        assert ("sqs:GetQueueAttributes", synthesized.arn(queue_id)) in found
        assert ("sqs:ReceiveMessage", synthesized.arn(dlq_id)) in found
        assert ("sqs:ChangeMessageVisibility", synthesized.arn(dlq_id)) in found
        assert ("sqs:ReceiveMessage", synthesized.arn(queue_id)) not in found  # receiving would count toward the DLQ
    assert not {action for action, _ in found if action in {"sqs:SendMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"}}
