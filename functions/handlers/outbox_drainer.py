"""Scheduled OMS outbox drainer (``SYNCLINE_SOURCE``: the OMS system): its outbox -> ChangeNotices on the bus,
Syncline's own writes dropped as echoes, each row acknowledged only once its notice is published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.outbox import BATCH_SIZE, MAX_BATCHES, drain_outbox


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from syncline.connectors.oms_pg import OmsOutbox, RejectedRow  # noqa: PLC0415 - psycopg only where used

    deps = dependencies()
    source = deps.settings.source
    if not source:
        raise RuntimeError("SYNCLINE_SOURCE is not set for the outbox drainer")
    outbox = OmsOutbox(deps.connection(source, read_only=False).get, source_system=source)

    def rejected(rows: Sequence[RejectedRow]) -> None:
        # No notice can carry these rows (an empty or oversized key): acknowledged, so they are logged here.
        logger.error("outbox rows no notice can carry", extra={"rows": [asdict(row) for row in rows]})

    try:
        result = drain_outbox(
            lambda publish: outbox.drain(publish, batch_size=BATCH_SIZE, max_batches=MAX_BATCHES, reject=rejected),
            deps.publisher(),
        )
    except Exception:
        deps.reset_connections()
        raise
    metrics.add_dimension(name="System", value=source)
    metrics.add_metric(name="NoticesPublished", unit=MetricUnit.Count, value=result.published)
    metrics.add_metric(name="Echoes", unit=MetricUnit.Count, value=result.echoes)
    metrics.add_metric(name="OutboxRowsRejected", unit=MetricUnit.Count, value=result.rejected)
    logger.info("outbox drained", extra={"system": source, "result": asdict(result)})
    return asdict(result)


initialised()
