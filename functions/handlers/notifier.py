"""SQS-triggered notifier: canonical events the notification rules name (routed from the bus by the ``notify``
rule) -> ``Notifier.handle`` -> templated alerts on the configured channels, once per rule, event and channel.

Each SQS message is an EventBridge event whose ``detail`` is the canonical event. A channel that fails with
a retryable error (throttling, 5xx, no answer) makes the message a batch item failure: SQS delivers it again
(the channels that succeeded are remembered by the DynamoDB dedupe and skipped), then to the DLQ. A message
that can never be sent (not a canonical event, a template that cannot render, a channel refusing the message
for good) is logged and dropped: retrying it would only fill the DLQ with the same refusal.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from handlers import initialised
from handlers.dependencies import SECRET_MAX_AGE_SECONDS, dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.adapters import aws
from syncline.adapters.notify_dynamodb import DynamoNotificationDedupe
from syncline.canonical.events import CanonicalEvent
from syncline.notify import NotificationFailed, Notifier, RuleError, channels_from_config, parse_event
from syncline.settings import Settings
from syncline.systems import parse_endpoints

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(RuntimeError):
    """A channel failed transiently; SQS delivers the event again (then to the DLQ)."""


def _secret(reference: str) -> str:
    """A channel's secret by name, through the Powertools cache (a rotation applies within five minutes)."""
    value = parameters.get_secret(reference, max_age=SECRET_MAX_AGE_SECONDS)
    return value if isinstance(value, str) else str(value)


@cache
def _notifier_for(settings: Settings) -> Notifier:
    config = dependencies().config
    channels = channels_from_config(config.alert_channels, _secret, endpoints=parse_endpoints(settings.endpoints))
    dedupe = DynamoNotificationDedupe(aws.dynamodb(), settings.table_name)
    return Notifier(config.notifications, channels, dedupe)


def notifier() -> Notifier:
    """Built once per cold start (per settings, so the local stack can host several stacks in turn)."""
    return _notifier_for(dependencies().settings)


def canonical_event(body: str) -> CanonicalEvent[Any]:
    """The canonical event an SQS message carries: an EventBridge event with the event as its ``detail``."""
    envelope = json.loads(body)
    detail = envelope.get("detail") if isinstance(envelope, dict) else None
    if not isinstance(detail, dict):
        raise ValueError("the message is not an EventBridge event with a detail object")
    return parse_event(detail)


def deliver(record: SQSRecord) -> None:
    try:
        event = canonical_event(record.body)
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        metrics.add_metric(name="NotificationsDropped", unit=MetricUnit.Count, value=1)
        logger.error("not a canonical event, dropped", extra={"message_id": record.message_id, "error": str(exc)[:300]})
        return
    context = {"event_type": event.event_type, "event_id": event.event_id, "key": event.key}
    try:
        sent = notifier().handle(event)
    except NotificationFailed as exc:
        failures = [
            {"rule": f.rule, "channel": f.channel, "error": f.error, "retryable": f.retryable} for f in exc.failures
        ]
        metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=len(exc.sent))
        if exc.retryable:
            metrics.add_metric(name="NotificationsRetried", unit=MetricUnit.Count, value=1)
            logger.warning("notifications failed, SQS will redeliver", extra={**context, "failures": failures})
            raise RetryLater(str(exc)) from None
        metrics.add_metric(name="NotificationsDropped", unit=MetricUnit.Count, value=1)
        logger.error("notifications refused for good, dropped", extra={**context, "failures": failures})
        return
    except RuleError as exc:  # a template that cannot render this event's values
        metrics.add_metric(name="NotificationsDropped", unit=MetricUnit.Count, value=1)
        logger.error("notification rule cannot render, dropped", extra={**context, "error": str(exc)[:500]})
        return
    metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=len(sent))
    if sent:
        logger.info(
            "notifications sent", extra={**context, "sent": [{"rule": s.rule, "channel": s.channel} for s in sent]}
        )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=deliver, processor=processor, context=context))


def reset_notifier() -> None:
    """Forget the cached notifier (tests and the local stack, with a new configuration)."""
    _notifier_for.cache_clear()


initialised()
