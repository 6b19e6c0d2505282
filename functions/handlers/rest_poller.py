"""Scheduled REST poller (``SYNCLINE_SOURCE``: a ``rest`` system in a two-way pair): its records listed, the ones
whose content changed since the last run published as ChangeNotices."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.rest_poll import poll_records


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    source = deps.settings.source
    if not source:
        raise RuntimeError("SYNCLINE_SOURCE is not set for the REST poller")
    connector = deps.systems().rest(source)
    entities = sorted(
        {p.entity for p in deps.config.pairs if p.direction == "two_way" and source in (p.source, p.target)}
    )
    results: dict[str, Any] = {}
    for entity in entities:
        result = poll_records(
            connector.records(entity),
            system=source,
            entity=entity,
            key_field=connector.entity(entity).key_field,
            state=deps.state(),
            publisher=deps.publisher(),
            clock=lambda: datetime.now(UTC),
        )
        results[entity] = asdict(result)
        metrics.add_metric(name="NoticesPublished", unit=MetricUnit.Count, value=result.changed)
    metrics.add_dimension(name="System", value=source)
    logger.info("records polled", extra={"system": source, "results": results})
    return results


initialised()
