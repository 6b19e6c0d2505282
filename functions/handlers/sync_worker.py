"""SQS-triggered sync worker: a batch of ChangeNotices -> fresh ERP rows -> the target, partial failures reported."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import Dependencies, dependencies
from handlers.observability import MAX_VALUES, logger, metrics, publish_values
from handlers.tracing import tracer
from syncline.sync import ENTITY, BatchResult, sync_inventory_batch

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(RuntimeError):
    """The record's sync hit a transient failure; SQS delivers it again (then to the DLQ)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    target = deps.settings.target
    if not target:
        raise RuntimeError("SYNCLINE_TARGET is not set for the sync worker")
    pair = deps.pair_into(target, ENTITY)
    records = event.get("Records", [])
    result = sync_inventory_batch(
        [(record["messageId"], record["body"]) for record in records],
        pair=pair,
        source=deps.erp_reader(pair.source),
        state=deps.state(),
        target=deps.inventory_target(target),
        stock_alerts=deps.stock_alerts(pair.name),
        dead_letters=deps.dead_letters(),
    )
    return finish_batch(deps, result, pair.name, ENTITY, event, context)


def finish_batch(
    deps: Dependencies, result: BatchResult, pair: str, entity: str, event: dict[str, Any], context: LambdaContext
) -> dict[str, Any]:
    """The end of an ERP batch (inventory or prices): drop connections after a failure, report the batch, and
    tell SQS which messages to deliver again."""
    if result.failure:
        deps.reset_connections()
    report_batch(result, pair, entity)

    def verdict(record: SQSRecord) -> None:
        if record.message_id in result.failed_messages:
            raise RetryLater(result.failure or "transient failure")

    return dict(process_partial_response(event=event, record_handler=verdict, processor=processor, context=context))


def report_batch(result: BatchResult, pair: str, entity: str) -> None:
    """Metrics and logs of one ERP batch (inventory or prices); the demo reads "batch synced" per pair."""
    traces = sorted({record.trace_id for record in result.synced if record.trace_id})
    if traces:
        logger.set_correlation_id(traces[0])
    publish_values("SyncLatency", MetricUnit.Milliseconds, _latency_sample(result))
    metrics.add_metric(name="Notices", unit=MetricUnit.Count, value=result.notices)
    metrics.add_metric(name="Synced", unit=MetricUnit.Count, value=len(result.synced))
    metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=result.skipped_unchanged + result.skipped_stale)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(result.dead_letters))
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=len(result.failed_messages))
    for letter in result.dead_letters:
        logger.warning("dead-lettered", extra={"reason": letter.reason, "letter": letter.model_dump(mode="json")})
    if result.failure:
        logger.error("batch partly failed, SQS will redeliver", extra={"failure": result.failure})
    if result.alert_failure:
        logger.warning("stock alerts not published (the sync committed)", extra={"failure": result.alert_failure})
    logger.info(
        "batch synced",
        extra={
            "notices": result.notices,
            "synced": len(result.synced),
            "skipped_unchanged": result.skipped_unchanged,
            "skipped_stale": result.skipped_stale,
            "trace_ids": traces,
            "pair": pair,
            "entity": entity,
        },
    )


def _latency_sample(result: BatchResult, limit: int = MAX_VALUES) -> list[float]:
    """Per-record latencies in ms; above EMF's 100 values per metric, evenly spaced quantiles of them."""
    latencies = sorted(round(record.latency_seconds * 1000, 1) for record in result.synced)
    if len(latencies) <= limit:
        return latencies
    return [latencies[round(i * (len(latencies) - 1) / (limit - 1))] for i in range(limit)]


initialised()
