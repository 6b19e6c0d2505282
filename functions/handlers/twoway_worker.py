"""SQS-triggered two-way worker for one pair (``SYNCLINE_PAIR``): notices from either system -> both read,
resolved by the pair's policy, written where they differ; unresolved records -> the conflict review list."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.systems import UnknownRecord
from syncline.twoway_batch import PermanentFailure, TwoWayBatchResult, sync_twoway_batch

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(RuntimeError):
    """The record is busy or hit a transient failure; SQS delivers it again (then to the DLQ)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    pair_name = deps.settings.pair
    if not pair_name:
        raise RuntimeError("SYNCLINE_PAIR is not set for the two-way worker")
    pair = deps.config.pair(pair_name)
    result = sync_twoway_batch(
        [(record["messageId"], record["body"]) for record in event.get("Records", [])],
        pair=pair.name,
        entity=pair.entity,
        sync=deps.twoway(pair.name, owner=context.aws_request_id),
        review=deps.conflict_review(),
        dead_letters=deps.dead_letters(),
        record_key=deps.systems().record_key,
        is_permanent=is_permanent,
    )
    if result.failures:
        deps.reset_connections()
    _report(pair.name, result)

    def verdict(record: SQSRecord) -> None:
        if record.message_id in result.failed_messages:
            raise RetryLater("; ".join(result.failures[:3]) or "record busy: another worker holds it")

    return dict(process_partial_response(event=event, record_handler=verdict, processor=processor, context=context))


def is_permanent(exc: Exception) -> bool:
    """Failures no retry can fix: an unknown record, or a system that refused the request itself (4xx)."""
    return isinstance(exc, (PermanentFailure, UnknownRecord)) or getattr(exc, "retryable", None) is False


def _report(pair: str, result: TwoWayBatchResult) -> None:
    metrics.add_dimension(name="Pair", value=pair)
    metrics.add_metric(name="Notices", unit=MetricUnit.Count, value=result.notices)
    metrics.add_metric(name="Synced", unit=MetricUnit.Count, value=result.settled)
    metrics.add_metric(name="Writes", unit=MetricUnit.Count, value=result.writes)
    metrics.add_metric(name="Echoes", unit=MetricUnit.Count, value=result.echoes)
    metrics.add_metric(name="Conflicts", unit=MetricUnit.Count, value=len(result.conflicts))
    metrics.add_metric(name="ConflictsSettled", unit=MetricUnit.Count, value=result.settled_by_policy)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(result.dead_letters))
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=len(result.failed_messages))
    for letter in result.dead_letters:
        logger.warning("dead-lettered", extra={"reason": letter.reason, "letter": letter.model_dump(mode="json")})
    if result.conflicts:
        logger.warning("conflicts for review", extra={"pair": pair, "conflicts": result.conflicts})
    if result.failures:
        logger.error("records not synced, SQS will redeliver", extra={"failures": result.failures[:10]})
    logger.info(
        "two-way batch",
        extra={
            "pair": pair,
            "notices": result.notices,
            "records": result.records,
            "settled": result.settled,
            "writes": result.writes,
            "echoes": result.echoes,
            "busy": result.busy,
            "settled_by_policy": result.settled_by_policy,
            "conflicts": len(result.conflicts),
            "dead_lettered": len(result.dead_letters),
        },
    )


initialised()
