"""Webhook ingress: ``POST /webhooks/{source}`` -> verify, deduplicate, publish ChangeNotices -> acknowledge.

One route on a Powertools ``Router``, served by two resolvers: ``APIGatewayRestResolver`` for REST API
(and HTTP API payload 1.0) events and ``APIGatewayHttpResolver`` for HTTP API payload 2.0 events, whose
shape differs (``rawPath``, ``requestContext.http``). The handler picks by the event's ``version``.
Refusals are ``IngressError``s mapped to HTTP in one place; logs name the source, status and reason,
never a header value, a secret or the body.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from syncline.webhooks.ingress import IngressError, MalformedRequest, Outcome, WebhookRequest

ROUTE = "/webhooks/<source>"
router = Router()  # type: ignore[no-untyped-call]


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


_ACK_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": ["accepted", "duplicate", "ignored", "challenge"]},
        "challenge": {"type": "string", "description": "Slack's url_verification handshake, echoed"},
        "delivery_ids": {"type": "array", "items": {"type": "string"}},
        "published": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
    },
}
_ERROR_SCHEMA = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
_RESPONSES: dict[int, Any] = {
    status: {"description": description, "content": {"application/json": {"schema": schema}}}
    for status, description, schema in (
        (200, "Authentic, and already published (duplicate) or of a topic Syncline ignores", _ACK_SCHEMA),
        (202, "Authentic and new: its ChangeNotices are on the bus", _ACK_SCHEMA),
        (400, "Malformed signature headers, timestamp or body", _ERROR_SCHEMA),
        (401, "Missing, wrong or stale signature", _ERROR_SCHEMA),
        (404, "No webhook source of that name", _ERROR_SCHEMA),
        (409, "The same delivery is being processed by another request; retry", _ERROR_SCHEMA),
        (413, "Body larger than the source's max_body_bytes", _ERROR_SCHEMA),
        (415, "Content-Type the source does not send", _ERROR_SCHEMA),
        (500, "The source's signing secret is missing or unusable (our side); retry", _ERROR_SCHEMA),
        (503, "Recording or publishing failed; nothing was acknowledged; retry", _ERROR_SCHEMA),
    )
}


@router.post(
    ROUTE,
    summary="Receive a signed webhook",
    description="Verify the sender's signature over the raw body, record the delivery id (48 h), publish "
    "ChangeNotices to the bus and acknowledge. The signature scheme and secret come from the source's "
    "configuration in syncline.toml.",
    responses=_RESPONSES,
    operation_id="receiveWebhook",
    tags=["webhooks"],
)
def receive(source: str) -> Response[str]:
    raw = router.current_event.raw_event
    request = WebhookRequest(
        source=source,
        headers=raw.get("headers") or {},
        body=_raw_body(raw),
        method=router.current_event.http_method,
        url=_received_url(raw, _public_url(source)),
        request_id=(raw.get("requestContext") or {}).get("requestId"),
    )
    outcome = dependencies().webhook_ingress().receive(request)
    _report(source, outcome)
    return _json(outcome.http_status, outcome.body())


@router.exception_handler(IngressError)  # type: ignore[untyped-decorator]
def refused(error: IngressError) -> Response[str]:
    source = str((router.current_event.raw_event.get("pathParameters") or {}).get("source", ""))[:64]
    fields = {"source": source, "status": error.status, "reason": error.reason}
    if error.status >= 500:
        logger.error("webhook not taken; the sender will retry", extra=fields)
    else:
        logger.warning("webhook refused", extra=fields)
    metrics.add_metric(name=f"WebhookRefused{error.status}", unit=MetricUnit.Count, value=1)
    response = _json(error.status, {"message": error.message})
    if error.status in {409, 503}:
        response.headers["Retry-After"] = "1"
    return response


# debug=False: Powertools' debug mode prints whole events, signatures included.
rest = APIGatewayRestResolver(debug=False)
http = APIGatewayHttpResolver(debug=False)
rest.include_router(router)
http.include_router(router)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", log_event=False, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resolver = http if event.get("version") == "2.0" else rest
    return resolver.resolve(event, context)


def _report(source: str, outcome: Outcome) -> None:
    metrics.add_metric(name=f"Webhook{outcome.status.capitalize()}", unit=MetricUnit.Count, value=1)
    if outcome.published:
        metrics.add_metric(name="NoticesPublished", unit=MetricUnit.Count, value=outcome.published)
    logger.info(
        f"webhook {outcome.status}",
        extra={
            "source": source,
            "status": outcome.http_status,
            "topic": outcome.topic,
            "delivery_ids": list(outcome.delivery_ids),
            "published": outcome.published,
            "duplicates": outcome.duplicates,
        },
    )


def _raw_body(event: dict[str, Any]) -> bytes:
    """The exact bytes received: API Gateway base64-encodes bodies it treats as binary."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest("isBase64Encoded body is not base64") from None


def _public_url(source: str) -> str | None:
    configured = dependencies().ingress_config.webhooks.get(source)
    return configured.public_url if configured is not None else None


def _received_url(event: dict[str, Any], public_url: str | None = None) -> str:
    """The URL the sender called (HubSpot signs it): the configured public URL, else rebuilt from the event."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0":
        query = event.get("rawQueryString") or ""
        path = event.get("rawPath") or ""
    else:
        multi = event.get("multiValueQueryStringParameters") or {}
        query = urlencode([(name, value) for name, values in multi.items() for value in values or []])
        path = context.get("path") or event.get("path") or ""
    if public_url:
        base = public_url
    else:
        scheme = headers.get("x-forwarded-proto", "https")
        host = headers.get("host") or context.get("domainName") or ""
        base = f"{scheme}://{host}{path}"
    return f"{base}?{query}" if query else base


def openapi_json() -> str:
    """The endpoint's OpenAPI document, generated by Powertools from the route (docs/webhooks.openapi.json).

    The route reads the raw body itself (signatures cover exact bytes), so the request body and the
    signature headers are described here rather than inferred from typed parameters.
    """
    schema = json.loads(
        rest.get_openapi_json_schema(
            title="Syncline webhook ingress",
            version="1.0.0",
            description="Signed webhooks from SaaS senders, one configured source per path.",
        )
    )
    schema.pop("components", None)  # Powertools' validation-error models: this route does not validate, never 422
    operation = schema["paths"]["/webhooks/{source}"]["post"]
    operation["requestBody"] = {
        "required": True,
        "description": "The sender's payload, signed as received (JSON for most senders).",
        "content": {"application/json": {"schema": {}}},
    }
    operation["parameters"][0]["schema"].update({"pattern": "^[a-z0-9][a-z0-9-]{0,62}$", "maxLength": 63})
    operation["parameters"] += [
        {
            "name": name,
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": description,
        }
        for name, description in (
            ("X-Shopify-Hmac-Sha256", "shopify: base64 HMAC-SHA256 of the body"),
            ("X-Hub-Signature-256", "github: sha256=<hex HMAC-SHA256 of the body>"),
            ("webhook-id", "standard-webhooks / svix: message id (also the delivery id)"),
            ("webhook-timestamp", "standard-webhooks / svix: Unix seconds"),
            ("webhook-signature", "standard-webhooks / svix: space-separated v1,<base64> entries"),
            ("Stripe-Signature", "stripe: t=<ts>,v1=<hex>"),
            ("X-HubSpot-Signature-v3", "hubspot: base64 HMAC-SHA256 of method, URL, body and timestamp"),
            ("X-HubSpot-Request-Timestamp", "hubspot: Unix milliseconds"),
            ("X-Slack-Signature", "slack: v0=<hex>"),
            ("X-Slack-Request-Timestamp", "slack: Unix seconds"),
        )
    ]
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(openapi_json())


initialised()
