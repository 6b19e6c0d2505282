"""SQS-triggered Salesforce relay (``SYNCLINE_SOURCE``: the Salesforce system): Change Data Capture events from
the org's Event Relay partner bus -> ChangeNotices on the notice bus, Syncline's own writes dropped as echoes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.config import SalesforceSystem
from syncline.salesforce_cdc import relay_change_events


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    source = deps.settings.source
    system = deps.config.systems.get(source or "")
    if not isinstance(system, SalesforceSystem) or source is None:
        raise RuntimeError("SYNCLINE_SOURCE does not name a Salesforce system for the CDC relay")
    result = relay_change_events(
        [record["body"] for record in event.get("Records", [])],
        system=source,
        client=system.call_client,
        publisher=deps.publisher(),
        dead_letters=deps.dead_letters(),
    )
    metrics.add_dimension(name="System", value=source)
    metrics.add_metric(name="NoticesPublished", unit=MetricUnit.Count, value=len(result.notices))
    metrics.add_metric(name="Echoes", unit=MetricUnit.Count, value=result.echoes)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(result.unparsable))
    if result.needs_reconcile:
        logger.warning("change events without record ids: run a reconcile", extra={"objects": result.needs_reconcile})
    summary = {k: v for k, v in asdict(result).items() if k not in {"notices", "unparsable"}}
    logger.info("change events relayed", extra={"system": source, "notices": len(result.notices), **summary})
    return {"batchItemFailures": []}


initialised()
