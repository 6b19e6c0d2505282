"""Operations monitoring: a CloudWatch dashboard and alarms to two SNS topics (degraded, unhealthy).

From metrics that exist without any extra code: the sync worker's EMF metrics (namespace
``Syncline``, dimension ``service``: SyncLatency, Notices, Synced, Skipped, DeadLettered,
FailedMessages), SQS's queue metrics and Lambda's. The levels follow ``syncline status``:

- **unhealthy** (page someone): a work queue's oldest message is older than the lag limit, i.e.
  changes wait and nothing takes them.
- **degraded** (look today): a message in a DLQ, a function error or throttle.

Subscribe e-mail, Slack (AWS Chatbot) or PagerDuty to the topics; their ARNs are stack outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs import pascal
from infra.constructs.sync_queue import SyncQueue

NAMESPACE = "Syncline"
SERVICE = {"service": "syncline"}
DEFAULT_MAX_LAG_SECONDS = 300
CONSISTENCY_TARGET = 0.9995  # the "99.95 % consistent" promise, per pair


class Monitoring(Construct):
    """Dashboard ``{app}-operations`` and the alarms behind it; see the module docstring."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app: str,
        queues: Mapping[str, SyncQueue],
        functions: Mapping[str, lambda_.IFunction],
        pairs: Sequence[str] = (),
        max_lag_seconds: int = DEFAULT_MAX_LAG_SECONDS,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch can publish to an encrypted topic only with a customer-managed key it may use.
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description=f"{app}: encrypts the alarm topics")
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topics = {
            level: sns.Topic(
                self, f"{level.capitalize()}Topic", topic_name=f"{app}-{level}", master_key=key, enforce_ssl=True
            )
            for level in ("degraded", "unhealthy")
        }
        for level, topic in self.topics.items():
            CfnOutput(self, f"{level.capitalize()}TopicArn", value=topic.topic_arn)

        self.alarms: list[cloudwatch.Alarm] = []
        one_minute, five_minutes = Duration.minutes(1), Duration.minutes(5)
        for queue_id, queue in queues.items():
            name = pascal(queue_id)
            self._alarm(
                f"{name}Lag",
                "unhealthy",
                queue.queue.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum"),
                threshold=max_lag_seconds,
                evaluation_periods=3,
                description=f"{queue.spec.name}: changes have waited over {max_lag_seconds} s; the worker is not "
                "keeping up or not running. `syncline status`, then the worker's logs.",
            )
            self._alarm(
                f"{name}DeadLetters",
                "degraded",
                queue.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=one_minute, statistic="Maximum"
                ),
                threshold=0,
                description=f"{queue.spec.dlq_name} holds messages that could not sync. "
                "`syncline dlq list`, fix the cause, `syncline dlq redrive` (docs/OPERATIONS.md).",
            )
        for function_id, function in functions.items():
            name = pascal(function_id)
            self._alarm(
                f"{name}Errors",
                "degraded",
                function.metric_errors(period=five_minutes, statistic="Sum"),
                threshold=0,
                description=f"The {function_id} function failed invocations; see its log group.",
            )
            self._alarm(
                f"{name}Throttles",
                "degraded",
                function.metric_throttles(period=five_minutes, statistic="Sum"),
                threshold=0,
                description=f"The {function_id} function was throttled (reserved concurrency or account limit).",
            )

        self._alarm(
            "Unhealthy",
            "unhealthy",
            _engine("HealthLevel", "Maximum", label=None),
            threshold=1,
            description="The monitor function's health report says unhealthy (lag or failures per hour over their "
            "limits). `syncline status` shows the reasons.",
        )

        for pair in pairs:
            self._alarm(
                f"{pascal(pair)}Consistency",
                "degraded",
                _consistency(pair, label=None),
                threshold=CONSISTENCY_TARGET,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=f"{pair}: the scheduled reconcile found under {CONSISTENCY_TARGET:.2%} of records in "
                f"agreement. `syncline reconcile {pair} --dry-run` lists them; `--apply` repairs.",
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{app}-operations")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sync latency (ms): notice observed -> target committed",
                left=[_engine("SyncLatency", "p50"), _engine("SyncLatency", "p99")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Throughput (records per 5 min)",
                left=[_engine("Notices"), _engine("Synced"), _engine("Skipped")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Errors: dead-lettered records, failed messages",
                left=[_engine("DeadLettered"), _engine("FailedMessages")],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lag: oldest waiting change (s) per queue",
                left=[
                    q.queue.metric_approximate_age_of_oldest_message(label=q.spec.name, statistic="Maximum")
                    for q in queues.values()
                ],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=max_lag_seconds, label="unhealthy")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Backlog (messages waiting) per queue",
                left=[
                    q.queue.metric_approximate_number_of_messages_visible(label=q.spec.name, statistic="Maximum")
                    for q in queues.values()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="DLQ depth and oldest age (s)",
                left=[
                    q.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        label=q.spec.dlq_name, statistic="Maximum"
                    )
                    for q in queues.values()
                ],
                right=[
                    q.dead_letter_queue.metric_approximate_age_of_oldest_message(
                        label=f"{q.spec.dlq_name} age", statistic="Maximum"
                    )
                    for q in queues.values()
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors and throttles",
                left=[f.metric_errors(label=f"{fid} errors", statistic="Sum") for fid, f in functions.items()],
                right=[f.metric_throttles(label=f"{fid} throttles", statistic="Sum") for fid, f in functions.items()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms)",
                left=[f.metric_duration(label=fid, statistic="p99") for fid, f in functions.items()],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Health level (0 healthy, 1 degraded, 2 unhealthy) and lag per pair (s), from the monitor",
                left=[_engine("HealthLevel", "Maximum")],
                right=[
                    cloudwatch.Metric(
                        namespace=NAMESPACE,
                        metric_name="LagSeconds",
                        dimensions_map={**SERVICE, "pair": pair},
                        statistic="Maximum",
                        period=Duration.minutes(5),
                        label=pair,
                    )
                    for pair in pairs
                ],
                width=24,
            ),
        )
        if pairs:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Consistency per pair (records in agreement / compared), from the scheduled reconcile",
                    left=[_consistency(pair, label=pair) for pair in pairs],
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=CONSISTENCY_TARGET, label="target")],
                    width=24,
                ),
            )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24),
        )

    def _alarm(
        self,
        construct_id: str,
        level: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            construct_id,
            alarm_description=f"[{level}] {description}",
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = actions.SnsAction(self.topics[level])
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)


def _consistency(pair: str, label: str | None) -> cloudwatch.Metric:
    """The reconciler's ConsistencyRatio for one pair (published every 6 h, so a 6 h period)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name="ConsistencyRatio",
        dimensions_map={**SERVICE, "pair": pair},
        statistic="Minimum",
        period=Duration.hours(6),
        label=label,
    )


def _engine(name: str, statistic: str = "Sum", label: str | None = "") -> cloudwatch.Metric:
    """A metric the handlers publish (EMF); ``label=None`` for an alarm (a label makes it metric math)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=SERVICE,
        statistic=statistic,
        period=Duration.minutes(5),
        label=None if label is None else label or (f"{name} {statistic}" if statistic != "Sum" else name),
    )
