"""Scheduled conflict sweeper: recheck every open conflict with its pair's rules (closing what they settle
now) and escalate, once, those pending longer than ``[review] escalate_after_hours`` (SNS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.review import Conflict
from syncline.twoway import Outcome, TwoWaySync


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    engines: dict[str, TwoWaySync] = {}

    def retry(conflict: Conflict) -> Outcome:
        if conflict.pair not in engines:
            engines[conflict.pair] = deps.twoway(conflict.pair, owner=context.aws_request_id)
        return engines[conflict.pair].sync(conflict.key)

    report = deps.conflict_review().sweep(retry)
    for name in ("checked", "settled", "superseded", "escalated", "still_open"):
        metrics.add_metric(
            name=f"Conflicts{name.title().replace('_', '')}", unit=MetricUnit.Count, value=getattr(report, name)
        )
    if report.errors:
        deps.reset_connections()
        logger.error("conflicts not rechecked", extra={"errors": report.errors[:10]})
    summary = {k: v for k, v in vars(report).items() if k != "errors"} | {"errors": len(report.errors)}
    logger.info("conflict sweep", extra=summary)
    return summary


initialised()
