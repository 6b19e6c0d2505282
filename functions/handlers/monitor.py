"""Scheduled monitor: the ``syncline status`` health report as EMF metrics, stored as ``HEALTH#latest``.

The report is ``syncline.ops.health``'s; the figures come from the same gathering the CLI uses
(queue attributes, DLQs read without consuming, the poller's checkpoints, the conflict review list
by status) and the limits from ``[monitoring]`` (defaults and per pair), as ``syncline status`` uses
them. It skips the state-table scan behind "last sync" (too costly every five minutes on a large
table), so lag is measured from the newest change the poller detected while work waits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.ops.health import HealthReport, assess, conflict_figures, pair_thresholds
from syncline.ops.wiring import health_figures

LEVELS = {"healthy": 0, "degraded": 1, "unhealthy": 2}
REPORT_KEY = "HEALTH#latest"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    ops = deps.ops
    pairs, queues = health_figures(ops, scan_state=False)
    defaults, per_pair = pair_thresholds(ops.config.monitoring, [pair.pair for pair in pairs])
    conflicts = conflict_figures(ops.conflict_review().store)
    report = assess(pairs, queues, now=datetime.now(UTC), thresholds=defaults, per_pair=per_pair, conflicts=conflicts)
    _publish(report)
    document = report.as_dict()
    ops.dynamodb.put_item(
        TableName=deps.settings.table_name,
        Item={
            "pk": {"S": REPORT_KEY},
            "level": {"S": report.level},
            "generated_at": {"S": document["generated_at"]},
            "report": {"S": json.dumps(document)},
        },
    )
    log = logger.info if report.level == "healthy" else logger.warning
    log(f"syncline is {report.level}", extra={"reasons": report.reasons})
    return document


def _publish(report: HealthReport) -> None:
    metrics.add_metric(name="HealthLevel", unit=MetricUnit.Count, value=LEVELS[report.level])
    per_queue = {
        "Backlog": "backlog",
        "DlqDepth": "dlq",
        "DlqOldestAgeSeconds": "dlq_oldest_age_seconds",
        "FailuresLastHour": "errors_last_hour",
    }
    for queue in report.queues:
        for name, field in per_queue.items():
            _single(name, queue[field] or 0, "queue", queue["queue"])
    per_pair = {
        "LagSeconds": "lag_seconds",
        "ConflictsPending": "conflicts_pending",
        "ConflictsEscalated": "conflicts_escalated",
    }
    for pair in report.pairs:
        for name, field in per_pair.items():
            _single(name, pair[field], "pair", pair["pair"])


def _single(name: str, value: float, dimension: str, dimension_value: str) -> None:
    unit = MetricUnit.Seconds if name.endswith("Seconds") else MetricUnit.Count
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace="Syncline",
        default_dimensions={"service": "syncline"},
    ) as metric:
        metric.add_dimension(name=dimension, value=dimension_value)


initialised()
