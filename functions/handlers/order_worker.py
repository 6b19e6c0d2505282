"""SQS-triggered order worker: order notices (e.g. Shopify orders/create) -> each order fetched fresh from its
source -> the target's guarded upsert (the OMS); partial failures reported, permanent ones dead-lettered."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.orders import ENTITY, OrderBatchResult, sync_orders_batch

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(RuntimeError):
    """A transient failure; SQS delivers the message again (then to the DLQ)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    target = deps.settings.target
    if not target:
        raise RuntimeError("SYNCLINE_TARGET is not set for the order worker")
    pair = deps.config.one_way_pair(target, ENTITY)
    systems = deps.systems()
    result = sync_orders_batch(
        [(record["messageId"], record["body"]) for record in event.get("Records", [])],
        pair=pair.name,
        source=systems.order_source(pair.source),
        target=systems.order_target(target),
        dead_letters=deps.dead_letters(),
    )
    if result.failures:
        deps.reset_connections()
    _report(pair.name, result)

    def verdict(record: SQSRecord) -> None:
        if record.message_id in result.failed_messages:
            raise RetryLater("; ".join(result.failures[:3]) or "transient failure")

    return dict(process_partial_response(event=event, record_handler=verdict, processor=processor, context=context))


def _report(pair: str, result: OrderBatchResult) -> None:
    metrics.add_metric(name="OrderNotices", unit=MetricUnit.Count, value=result.notices)
    metrics.add_metric(name="OrdersWritten", unit=MetricUnit.Count, value=len(result.written))
    metrics.add_metric(name="OrdersSkipped", unit=MetricUnit.Count, value=len(result.skipped))
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(result.dead_letters))
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=len(result.failed_messages))
    for letter in result.dead_letters:
        logger.warning("dead-lettered", extra={"reason": letter.reason, "letter": letter.model_dump(mode="json")})
    if result.failures:
        logger.error("orders not synced, SQS will redeliver", extra={"failures": result.failures[:10]})
    logger.info(
        "order batch",
        extra={
            "pair": pair,
            "notices": result.notices,
            "fetched": result.fetched,
            "written": len(result.written),
            "skipped": result.skipped,
            "not_in_source": result.not_in_source,
        },
    )
