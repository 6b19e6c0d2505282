"""Operations monitoring: a CloudWatch dashboard and alarms to two SNS topics (degraded, unhealthy).

From metrics that exist without any extra code: the sync worker's EMF metrics (namespace
``Syncline``, dimension ``service``: SyncLatency, Notices, Synced, Skipped, DeadLettered,
FailedMessages), the two-way worker's (dimension ``Pair``: Writes, Echoes, Conflicts), the webhook
function's (WebhookAccepted, WebhookDuplicate, WebhookIgnored, WebhookRefused<status>), the
monitor's (HealthLevel; LagSeconds, ConflictsPending, ConflictsEscalated per ``pair``), the
reconciler's (ConsistencyRatio per ``pair``), SQS's queue metrics and Lambda's. The levels follow
``syncline status``, with the limits of ``[monitoring]`` (a queue shared by pairs takes the
strictest of theirs):

- **unhealthy** (page someone): a work queue's oldest message is older than the lag limit, i.e.
  changes wait and nothing takes them; the monitor's report says unhealthy.
- **degraded** (look today): more messages in a DLQ than ``max_dlq``, a backlog above
  ``max_backlog`` for 15 minutes, more conflicts waiting for a person than
  ``max_pending_conflicts``, a pair below the consistency target, a function error or throttle,
  the webhook function answering 500 (a source's signing secret is missing or unreadable).

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
from syncline.monitoring_config import MonitoringConfig, Thresholds

NAMESPACE = "Syncline"
SERVICE = {"service": "syncline"}
DEFAULT_MAX_LAG_SECONDS = 300
CONSISTENCY_TARGET = 0.9995  # the "99.95 % consistent" promise, per pair
BACKLOG_MINUTES = 15  # a backlog over its limit for this long degrades (a burst that drains is normal)
# What the webhook function answers, as metrics: Webhook<outcome status> and WebhookRefused<HTTP status>.
WEBHOOK_OUTCOMES = ("Accepted", "Duplicate", "Ignored")
WEBHOOK_REFUSED = (400, 401, 404, 409, 413, 415, 500, 503)


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
        max_lag_seconds: float | None = None,
        monitoring: MonitoringConfig | None = None,
        queue_pairs: Mapping[str, Sequence[str]] | None = None,
        two_way_pairs: Sequence[str] = (),
        webhooks: bool = False,
    ) -> None:
        """``monitoring`` gives the limits (defaults and per pair); ``queue_pairs`` which pairs each queue
        serves (a queue is held to the strictest of their limits); ``max_lag_seconds`` overrides every lag
        limit. ``two_way_pairs`` and ``webhooks`` add those widgets."""
        super().__init__(scope, construct_id)
        monitoring = monitoring or MonitoringConfig()

        def queue_limits(queue_id: str) -> Thresholds:
            served = [monitoring.thresholds(pair) for pair in (queue_pairs or {}).get(queue_id, ())]
            limits = Thresholds.strictest(served) if served else monitoring.defaults
            return limits.model_copy(update={"max_lag_seconds": max_lag_seconds}) if max_lag_seconds else limits

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
        lag_limits: list[float] = []
        for queue_id, queue in queues.items():
            name = pascal(queue_id)
            limits = queue_limits(queue_id)
            lag_limits.append(limits.max_lag_seconds)
            self._alarm(
                f"{name}Lag",
                "unhealthy",
                queue.queue.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum"),
                threshold=limits.max_lag_seconds,
                evaluation_periods=3,
                description=f"{queue.spec.name}: changes have waited over {limits.max_lag_seconds:g} s; the worker "
                "is not keeping up or not running. `syncline status`, then the worker's logs.",
            )
            self._alarm(
                f"{name}DeadLetters",
                "degraded",
                queue.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=one_minute, statistic="Maximum"
                ),
                threshold=limits.max_dlq,
                description=f"{queue.spec.dlq_name} holds messages that could not sync. "
                "`syncline dlq list`, fix the cause, `syncline dlq redrive` (docs/OPERATIONS.md).",
            )
            self._alarm(
                f"{name}Backlog",
                "degraded",
                queue.queue.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Minimum"),
                threshold=limits.max_backlog,
                evaluation_periods=BACKLOG_MINUTES // 5,
                description=f"{queue.spec.name}: over {limits.max_backlog} messages waiting for "
                f"{BACKLOG_MINUTES} minutes. `syncline status`; the worker may be throttled or a target slow.",
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
            limit = monitoring.thresholds(pair).max_pending_conflicts
            self._alarm(
                f"{pascal(pair)}Conflicts",
                "degraded",
                _conflicts_waiting(pair),
                threshold=limit,
                description=f"{pair}: over {limit} conflict(s) wait for a person (pending and escalated). "
                f"`syncline conflicts list --pair {pair}`, then `syncline conflicts resolve`.",
            )
            self._alarm(
                f"{pascal(pair)}Consistency",
                "degraded",
                _consistency(pair, label=None),
                threshold=CONSISTENCY_TARGET,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=f"{pair}: the scheduled reconcile found under {CONSISTENCY_TARGET:.2%} of records in "
                f"agreement. `syncline reconcile {pair} --dry-run` lists them; `--apply` repairs.",
            )

        if webhooks:
            self._alarm(
                "WebhookMisconfigured",
                "degraded",
                _engine("WebhookRefused500", label=None),
                threshold=0,
                description="The webhook function answered 500: a source's signing secret is missing or unreadable, "
                "so every delivery of that source is refused (senders retry, then give up). Its log names the source.",
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
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=min(lag_limits, default=DEFAULT_MAX_LAG_SECONDS), label="unhealthy"
                    )
                ],
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
                right=[_per_pair("LagSeconds", pair, label=pair) for pair in pairs],
                width=24,
            ),
        )
        if pairs:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Conflicts waiting for a person per pair (pending, escalated), from the monitor",
                    left=[_per_pair("ConflictsPending", pair, label=f"{pair} pending") for pair in pairs],
                    right=[_per_pair("ConflictsEscalated", pair, label=f"{pair} escalated") for pair in pairs],
                    left_annotations=[
                        cloudwatch.HorizontalAnnotation(value=monitoring.max_pending_conflicts, label="degraded")
                    ],
                    width=24,
                ),
            )
        if two_way_pairs:
            self.dashboard.add_widgets(
                *(
                    cloudwatch.GraphWidget(
                        title=f"Two-way {pair}: writes, echoes dropped, new conflicts (per 5 min)",
                        left=[_two_way(name, pair) for name in ("Writes", "Echoes", "Conflicts")],
                        width=12,
                    )
                    for pair in two_way_pairs
                )
            )
        if webhooks:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Webhooks: accepted, duplicate, ignored (per 5 min)",
                    left=[_engine(f"Webhook{outcome}") for outcome in WEBHOOK_OUTCOMES],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Webhooks refused, by HTTP status (per 5 min)",
                    left=[_engine(f"WebhookRefused{status}", label=f"refused {status}") for status in WEBHOOK_REFUSED],
                    width=12,
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
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
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


def _per_pair(name: str, pair: str, *, label: str | None, statistic: str = "Maximum") -> cloudwatch.Metric:
    """A metric the monitor publishes per ``pair`` (every five minutes)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={**SERVICE, "pair": pair},
        statistic=statistic,
        period=Duration.minutes(5),
        label=label,
    )


def _conflicts_waiting(pair: str) -> cloudwatch.MathExpression:
    """Pending + escalated conflicts of ``pair``: the figure ``max_pending_conflicts`` limits."""
    return cloudwatch.MathExpression(
        expression="pending + escalated",
        using_metrics={
            "pending": _per_pair("ConflictsPending", pair, label=None),
            "escalated": _per_pair("ConflictsEscalated", pair, label=None),
        },
        label=f"{pair} conflicts waiting",
        period=Duration.minutes(5),
    )


def _two_way(name: str, pair: str) -> cloudwatch.Metric:
    """The two-way worker's metrics carry the dimension ``Pair`` (its handler adds it)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={**SERVICE, "Pair": pair},
        statistic="Sum",
        period=Duration.minutes(5),
        label=name,
    )


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
