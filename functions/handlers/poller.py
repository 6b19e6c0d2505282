"""Scheduled ERP poller: EventBridge schedule -> change detection -> ChangeNotices on the bus."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.poller import poll


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = EventBridgeEvent(event)
    deps = dependencies()
    source = deps.settings.source
    if not source:
        raise RuntimeError("SYNCLINE_SOURCE is not set for the poller")
    try:
        reports = poll(
            source=source,
            scanner=deps.erp_reader(source),
            checkpoints=deps.checkpoints(),
            publisher=deps.publisher(),
            limits=deps.poll_limits(source),
            trace_id=scheduled.get_id,
        )
    except Exception:
        deps.reset_connections()
        raise
    for report in reports:
        metrics.add_metric(name="RowsScanned", unit=MetricUnit.Count, value=report.scanned)
        metrics.add_metric(name="NoticesPublished", unit=MetricUnit.Count, value=report.emitted)
        logger.info("poll finished", extra={"report": vars(report)})
    return {"streams": [vars(report) for report in reports]}


initialised()
