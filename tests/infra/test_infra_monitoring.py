"""The monitoring construct: alarms on the right metrics and thresholds, to the right topic; the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack, assertions
from aws_cdk import aws_lambda as lambda_

from infra.constructs.monitoring import WEBHOOK_REFUSED, Monitoring
from infra.constructs.sync_queue import SyncQueue
from syncline.monitoring_config import MonitoringConfig
from syncline.topology import QueueSpec

PAIR = "erp-storefront-inventory"
# Defaults loose, the pair strict: every alarm on the pair's queue must take the pair's limits.
LIMITS = MonitoringConfig.model_validate(
    {
        "max_lag_seconds": 900,
        "max_backlog": 9000,
        "max_dlq": 50,
        "max_pending_conflicts": 40,
        "pairs": {PAIR: {"max_lag_seconds": 240, "max_backlog": 800, "max_dlq": 2, "max_pending_conflicts": 3}},
    }
)


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
        pairs=[PAIR, "stores-products"],
        monitoring=LIMITS,
        queue_pairs={"sync_storefront": [PAIR]},
        two_way_pairs=["stores-products"],
        webhooks=True,
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


def _queue_alarm(template: assertions.Template, queue_name: str) -> dict[str, Any]:
    """The one ApproximateNumberOfMessagesVisible alarm on the queue named ``queue_name``."""
    (queue_id,) = template.find_resources("AWS::SQS::Queue", {"Properties": {"QueueName": queue_name}})
    found = template.find_resources(
        "AWS::CloudWatch::Alarm",
        {
            "Properties": {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            }
        },
    )
    assert len(found) == 1, f"one depth alarm on {queue_name}, found {len(found)}"
    properties: dict[str, Any] = next(iter(found.values()))["Properties"]
    return properties


def test_dlq_messages_over_the_pairs_limit_are_degraded_and_name_the_runbook(template: assertions.Template) -> None:
    dlq = _queue_alarm(template, "syncline-sync-storefront-dlq")
    assert dlq["Threshold"] == 2  # the pair's max_dlq, not the default 50
    assert dlq["AlarmActions"] == dlq["OKActions"] == [_topic_ref(template, "degraded")]
    assert "syncline dlq list" in dlq["AlarmDescription"]


def test_a_backlog_over_the_pairs_limit_for_fifteen_minutes_is_degraded(template: assertions.Template) -> None:
    backlog = _queue_alarm(template, "syncline-sync-storefront")
    assert (backlog["Threshold"], backlog["Period"], backlog["EvaluationPeriods"], backlog["Statistic"]) == (
        800,
        300,
        3,
        "Minimum",
    )
    assert backlog["ComparisonOperator"] == "GreaterThanThreshold"
    assert backlog["AlarmActions"] == [_topic_ref(template, "degraded")]


def _math_alarm(template: assertions.Template, label: str) -> dict[str, Any]:
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        if any(m.get("Label") == label for m in alarm["Properties"].get("Metrics", [])):
            properties: dict[str, Any] = alarm["Properties"]
            return properties
    raise AssertionError(f"no metric-math alarm labelled {label!r}")


def test_conflicts_waiting_over_each_pairs_limit_are_degraded(template: assertions.Template) -> None:
    for pair, limit in ((PAIR, 3), ("stores-products", 40)):  # the override, and the default
        alarm = _math_alarm(template, f"{pair} conflicts waiting")
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (limit, "GreaterThanThreshold")
        assert alarm["AlarmActions"] == [_topic_ref(template, "degraded")]
        assert f"syncline conflicts list --pair {pair}" in alarm["AlarmDescription"]
        expression = next(m for m in alarm["Metrics"] if "Expression" in m)
        assert expression["Expression"] == "pending + escalated"
        inputs = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
        assert {stat["Metric"]["MetricName"] for stat in inputs.values()} == {"ConflictsPending", "ConflictsEscalated"}
        for stat in inputs.values():
            assert {"Name": "pair", "Value": pair} in stat["Metric"]["Dimensions"]
            assert (stat["Metric"]["Namespace"], stat["Stat"], stat["Period"]) == ("Syncline", "Maximum", 300)


def test_the_webhook_function_answering_500_is_degraded(template: assertions.Template) -> None:
    alarm = _alarm(template, "WebhookRefused500", "Syncline")
    assert (alarm["Threshold"], alarm["Statistic"]) == (0, "Sum")
    assert alarm["AlarmActions"] == [_topic_ref(template, "degraded")]
    assert "signing secret" in alarm["AlarmDescription"]


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


def _widgets(template: assertions.Template) -> list[dict[str, Any]]:
    """The dashboard body's widgets (CDK writes the body as Fn::Join of strings and tokens)."""
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)  # tokens sit inside quotes
    widgets: list[dict[str, Any]] = json.loads(text)["widgets"]
    return widgets


def _widget(template: assertions.Template, title_start: str) -> dict[str, Any]:
    found = [w for w in _widgets(template) if w["properties"].get("title", "").startswith(title_start)]
    assert len(found) == 1, f"one widget titled {title_start!r}..., found {len(found)}"
    return found[0]["properties"]


def _metric_lines(widget: dict[str, Any]) -> list[list[Any]]:
    return [line for line in widget["metrics"] if isinstance(line, list)]


def _metrics(widget: dict[str, Any]) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, name, dimensions) of each graphed metric (CloudWatch's array: ns, name, dim, value, ..., {opts})."""
    found = set()
    for line in _metric_lines(widget):
        names = line[2:-1] if isinstance(line[-1], dict) else line[2:]
        found.add((line[0], line[1], frozenset(zip(names[::2], names[1::2], strict=True))))
    return found


def test_the_dashboard_counts_webhooks_accepted_duplicate_ignored_and_refused(template: assertions.Template) -> None:
    outcomes = _widget(template, "Webhooks: accepted, duplicate, ignored")
    assert _metrics(outcomes) == {
        ("Syncline", name, frozenset({("service", "syncline")}))
        for name in ("WebhookAccepted", "WebhookDuplicate", "WebhookIgnored")
    }
    refused = _widget(template, "Webhooks refused, by HTTP status")
    assert {line[1] for line in _metric_lines(refused)} == {f"WebhookRefused{status}" for status in WEBHOOK_REFUSED}
    assert {"WebhookRefused401", "WebhookRefused409", "WebhookRefused503"} <= {
        line[1] for line in _metric_lines(refused)
    }
    assert all(line[-1].get("stat") == "Sum" for line in _metric_lines(refused))


def test_the_dashboard_shows_conflicts_waiting_per_pair_with_the_limit(template: assertions.Template) -> None:
    conflicts = _widget(template, "Conflicts waiting for a person per pair")
    lines = _metric_lines(conflicts)
    assert _metrics(conflicts) == {
        ("Syncline", name, frozenset({("service", "syncline"), ("pair", pair)}))
        for name in ("ConflictsPending", "ConflictsEscalated")
        for pair in (PAIR, "stores-products")
    }
    escalated = [line for line in lines if line[1] == "ConflictsEscalated"]
    assert escalated and all(line[-1].get("yAxis") == "right" for line in escalated)
    assert conflicts["annotations"]["horizontal"][0]["value"] == 40


def test_the_dashboard_shows_two_way_writes_echoes_and_conflicts_per_pair(template: assertions.Template) -> None:
    two_way = _widget(template, "Two-way stores-products")
    assert _metrics(two_way) == {
        ("Syncline", name, frozenset({("service", "syncline"), ("Pair", "stores-products")}))
        for name in ("Writes", "Echoes", "Conflicts")
    }
    assert all(line[-1].get("stat") == "Sum" for line in _metric_lines(two_way))


def test_the_app_alarms_on_every_queue_and_function_of_the_topology(synthesized: Any) -> None:
    """Composed into the stack: a lag and a DLQ alarm per work queue, errors and throttles per function."""
    alarms = synthesized.of_type("AWS::CloudWatch::Alarm").values()
    per_metric: dict[str, int] = {}
    for alarm in alarms:
        properties = alarm["Properties"]
        # A metric-math alarm (conflicts waiting) is counted by the metrics it combines.
        names = properties.get("MetricName") or "+".join(
            sorted(m["MetricStat"]["Metric"]["MetricName"] for m in properties["Metrics"] if "MetricStat" in m)
        )
        per_metric[names] = per_metric.get(names, 0) + 1
    queues, functions = len(synthesized.topology.queues), len(synthesized.topology.functions)
    pairs = len(synthesized.config.pairs)
    expected = {
        "ApproximateAgeOfOldestMessage": queues,
        "ApproximateNumberOfMessagesVisible": 2 * queues,  # the DLQ's depth and the queue's backlog
        "Errors": functions,
        "Throttles": functions,
        "HealthLevel": 1,
        "ConsistencyRatio": pairs,
        "ConflictsEscalated+ConflictsPending": pairs,
    }
    assert {name: per_metric.get(name, 0) for name in expected} == expected
    # The webhook alarm appears once the stack tells the construct it has a webhook API.
    assert set(per_metric) - set(expected) <= {"WebhookRefused500"}


def test_each_pair_alarms_below_the_consistency_promise(synthesized: Any) -> None:
    (ratio,) = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ConsistencyRatio"
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
