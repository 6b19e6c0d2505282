"""The SQS-triggered one-way record workers (orders, shipments): a batch of notices -> each record read fresh
from its source -> the target; partial failures reported to SQS, permanent ones dead-lettered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.dependencies import Dependencies, dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.config import Pair
from syncline.records import RecordBatchResult, RecordSync

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(RuntimeError):
    """A transient failure; SQS delivers the message again (then to the DLQ)."""


def record_handler(
    entity: str, build: Callable[[Dependencies, Pair], RecordSync[Any]]
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The handler of the one-way worker for ``entity`` into ``SYNCLINE_TARGET``; ``build`` wires its sync."""

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        deps = dependencies()
        target = deps.settings.target
        if not target:
            raise RuntimeError(f"SYNCLINE_TARGET is not set for the {entity} worker")
        pair = deps.config.one_way_pair(target, entity)
        result = build(deps, pair)([(record["messageId"], record["body"]) for record in event.get("Records", [])])
        if result.failures:
            deps.reset_connections()
        _report(entity, pair.name, result)

        def verdict(record: SQSRecord) -> None:
            if record.message_id in result.failed_messages:
                raise RetryLater("; ".join(result.failures[:3]) or "transient failure")

        return dict(process_partial_response(event=event, record_handler=verdict, processor=processor, context=context))

    return handler


def _report(entity: str, pair: str, result: RecordBatchResult) -> None:
    metrics.add_dimension(name="Pair", value=pair)
    metrics.add_metric(name="Notices", unit=MetricUnit.Count, value=result.notices)
    metrics.add_metric(name="Written", unit=MetricUnit.Count, value=len(result.written))
    metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=len(result.skipped))
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(result.dead_letters))
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=len(result.failed_messages))
    for letter in result.dead_letters:
        logger.warning("dead-lettered", extra={"reason": letter.reason, "letter": letter.model_dump(mode="json")})
    if result.failures:
        logger.error(f"{entity}s not synced, SQS will redeliver", extra={"failures": result.failures[:10]})
    logger.info(
        f"{entity} batch",
        extra={
            "pair": pair,
            "notices": result.notices,
            "fetched": result.fetched,
            "written": len(result.written),
            "skipped": result.skipped,
            "not_in_source": result.not_in_source,
        },
    )
