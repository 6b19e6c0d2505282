"""Scheduled daily digest: the day's syncs, failures, conflicts and consistency, e-mailed through SES.

The window is the 24 hours before the schedule's ``time`` (so a retried invocation covers the same
day). Without ``[monitoring.digest]`` sender and recipients the digest is built and logged, not sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.digest import DigestEmail, OpsDigestSource, build_digest, send_digest


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ops = dependencies().ops
    settings = ops.config.monitoring.digest
    digest = build_digest(
        OpsDigestSource(ops),
        [pair.name for pair in ops.config.pairs],
        until=_scheduled_time(event),
        top_errors=settings.top_errors,
        app=ops.config.app,
    )
    document = digest.as_dict()
    if not settings.enabled or settings.sender is None:
        logger.warning("daily digest built but not sent: [monitoring.digest] has no sender or recipients")
        return {"sent": False, "digest": document}
    delivery = send_digest(digest, DigestEmail("digest", settings.sender, settings.recipients))
    metrics.add_metric(name="DigestSent", unit=MetricUnit.Count, value=1)
    logger.info("daily digest sent", extra={"recipients": len(settings.recipients), "message_id": delivery.reference})
    return {"sent": True, "message_id": delivery.reference, "digest": document}


def _scheduled_time(event: dict[str, Any]) -> datetime:
    """The EventBridge schedule's ``time`` (UTC), or now when invoked by hand."""
    raw = event.get("time")
    if not isinstance(raw, str):
        return datetime.now(UTC)
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


initialised()
