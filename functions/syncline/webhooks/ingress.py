"""Webhook ingress, the engine: verify -> deduplicate -> publish ChangeNotices -> acknowledge.

Plain Python behind two ports (``DeliveryStore``, ``NoticePublisher``) and a secrets lookup, so the
same code runs under API Gateway, behind the local gateway and in unit tests. Every way a request
can be refused is a typed ``IngressError`` carrying its HTTP status; the handler maps them in one
place. Nothing here logs: the caller logs the outcome, so what reaches the logs is decided once
(never a secret, a signature or a body).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs

from pydantic import ValidationError

from syncline.models import KEY_SEPARATOR, ChangeNotice
from syncline.ports import DeliveryClaim, DeliveryStore, NoticePublisher
from syncline.webhooks.signatures import HmacScheme, MalformedSignatureHeader, Scheme, SignatureError, verify
from syncline.webhooks.sources import IngressConfig, WebhookSource

# Where each scheme's sender names the event type, unless the source configures otherwise.
_TOPIC_HEADERS: Final = {"shopify": "X-Shopify-Topic", "github": "X-GitHub-Event"}
_TOPIC_FIELDS: Final = {
    "standard-webhooks": "type",
    "svix": "type",
    "stripe": "type",
    "hubspot": "subscriptionType",
    "slack": "event.type",
}
WILDCARD_TOPIC: Final = "*"
_MAX_HEADER_ID: Final = 512


class IngressError(Exception):
    """A refused request: ``status`` and a public ``message`` for the sender, ``reason`` for the logs."""

    status: int = 400
    message: str = "bad request"

    def __init__(self, reason: str, *, message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if message is not None:
            self.message = message


class MalformedRequest(IngressError):
    status, message = 400, "malformed request"


class Unauthorized(IngressError):
    # Never says which part failed: a forger learns nothing from the answer.
    status, message = 401, "invalid signature"


class UnknownSource(IngressError):
    status, message = 404, "unknown webhook source"


class DeliveryInProgress(IngressError):
    status, message = 409, "delivery is being processed; retry later"


class PayloadTooLarge(IngressError):
    status, message = 413, "payload too large"


class UnsupportedMediaType(IngressError):
    status, message = 415, "unsupported media type"


class SourceMisconfigured(IngressError):
    """Our side is wrong (secret missing or unreadable): 5xx, so the sender keeps the delivery and retries."""

    status, message = 500, "webhook source is misconfigured"


class Unavailable(IngressError):
    """Recording or publishing failed: 5xx, so the sender retries; nothing was acknowledged."""

    status, message = 503, "temporarily unavailable; retry"


@dataclass(frozen=True)
class WebhookRequest:
    """One received request, as raw as the gateway gives it."""

    source: str
    headers: Mapping[str, str]
    body: bytes
    method: str = "POST"
    url: str = ""
    request_id: str | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass(frozen=True)
class Outcome:
    """What the ingress did with an authentic request."""

    status: str  # "accepted" | "duplicate" | "ignored" | "challenge"
    http_status: int
    topic: str | None = None
    delivery_ids: tuple[str, ...] = ()
    published: int = 0
    duplicates: int = 0
    in_progress: int = 0
    challenge: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.challenge is not None:
            return body | {"challenge": self.challenge}
        if self.delivery_ids:
            body["delivery_ids"] = list(self.delivery_ids)
        if self.status != "ignored":
            body |= {"published": self.published, "duplicates": self.duplicates}
        return body


@dataclass(frozen=True)
class _Event:
    delivery_id: str
    topic: str | None
    payload: Any
    triggered_at: datetime | None = None


SecretsLookup = Callable[[WebhookSource], Sequence[str]]


@dataclass
class Ingress:
    """The webhook ingress for a set of configured sources."""

    sources: Mapping[str, WebhookSource]
    secrets: SecretsLookup
    deliveries: DeliveryStore
    publisher: NoticePublisher
    clock: Callable[[], float] = time.time
    # Source name -> "is this event our own write coming back?" (``echo_filters``): such events publish nothing.
    echoes: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)
    _schemes: dict[str, Scheme | str] = field(default_factory=dict)

    def receive(self, request: WebhookRequest) -> Outcome:
        """Refuse (raise ``IngressError``) or acknowledge one request; publish its notices first."""
        source = self.sources.get(request.source)
        if source is None:
            raise UnknownSource(f"no webhook source named {request.source[:64]!r}")
        if len(request.body) > source.max_body_bytes:
            raise PayloadTooLarge(f"body of {len(request.body)} bytes exceeds {source.max_body_bytes}")
        media_type = _media_type(request.header("Content-Type"))
        if media_type not in source.content_types:
            raise UnsupportedMediaType(f"content type {media_type[:64]!r} is not one of {source.content_types}")
        now = self.clock()
        self._verify(request, source, now)
        payload = _parse(request.body, media_type)
        if source.scheme == "slack" and _field(payload, "type") == "url_verification":
            # Slack's one-time handshake when the Events API URL is saved: echo the (signed) challenge.
            return Outcome("challenge", 200, challenge=str(_field(payload, "challenge") or ""))
        events = list(_events(request, source, payload))
        is_echo = self.echoes.get(request.source)
        if is_echo is not None:
            events = [event for event in events if not is_echo(event.payload)]
        mapped = [
            (event, source.topics.get(event.topic or "") or source.topics.get(WILDCARD_TOPIC)) for event in events
        ]
        wanted = [(event, topic) for event, topic in mapped if topic is not None]
        if not wanted:
            return Outcome("ignored", 200, topic=events[0].topic if events else None)
        system = source.system or request.source
        try:
            notices = self._notices(request, system, wanted, now)
        except ValidationError as exc:  # e.g. a key holding a NUL or a lone surrogate
            first = exc.errors()[0]
            raise MalformedRequest(f"payload makes no valid notice: {first['loc'][0]}: {first['msg']}") from None
        return self._publish_once(request.source, notices, now, topic=wanted[0][0].topic)

    def _notices(
        self, request: WebhookRequest, system: str, wanted: Sequence[tuple[_Event, Any]], now: float
    ) -> dict[str, ChangeNotice]:
        return {
            event.delivery_id: ChangeNotice(
                source_system=system,
                entity=topic.entity,
                key=_key(event, topic.key),
                operation=topic.operation,
                observed_at=datetime.fromtimestamp(now, UTC),
                delivery_id=event.delivery_id,
                trace_id=request.request_id,
                triggered_at=event.triggered_at,
            )
            for event, topic in wanted
        }

    # -- steps ---------------------------------------------------------------------------------------
    def _verify(self, request: WebhookRequest, source: WebhookSource, now: float) -> None:
        try:
            secrets = list(self.secrets(source))
        except Exception as exc:
            raise SourceMisconfigured(
                f"cannot read the signing secret of {request.source!r}: {type(exc).__name__}"
            ) from None
        try:
            verify(
                self._scheme(request.source, source),
                secrets,
                request.headers,
                request.body,
                method=request.method,
                url=request.url,
                now=now,
                tolerance=source.tolerance_seconds,
            )
        except MalformedSignatureHeader as exc:
            raise MalformedRequest(str(exc)) from None
        except SignatureError as exc:
            raise Unauthorized(str(exc)) from None
        except ValueError as exc:  # the secret itself is unusable (empty, not base64)
            raise SourceMisconfigured(f"signing secret of {request.source!r} is unusable: {exc}") from None

    def _scheme(self, name: str, source: WebhookSource) -> Scheme | str:
        if name not in self._schemes:
            options = source.hmac
            self._schemes[name] = (
                HmacScheme(
                    header=options.header, algorithm=options.algorithm, encoding=options.encoding, prefix=options.prefix
                )
                if source.scheme == "hmac"
                else source.scheme
            )
        return self._schemes[name]

    def _publish_once(
        self, source: str, notices: Mapping[str, ChangeNotice], now: float, *, topic: str | None
    ) -> Outcome:
        token = uuid.uuid4().hex
        claimed: list[str] = []
        duplicates = in_progress = 0
        try:
            for delivery_id in notices:
                claim = self.deliveries.claim(source, delivery_id, token, now=now)
                if claim is DeliveryClaim.CLAIMED:
                    claimed.append(delivery_id)
                elif claim is DeliveryClaim.DUPLICATE:
                    duplicates += 1
                else:
                    in_progress += 1
            if claimed:
                self.publisher.publish([notices[delivery_id] for delivery_id in claimed])
        except Exception as exc:
            # Not acknowledged, so the sender retries; released, so that retry is not taken for a duplicate.
            self._release(source, claimed, token)
            raise Unavailable(f"could not record or publish: {type(exc).__name__}: {str(exc)[:200]}") from exc
        for delivery_id in claimed:
            # The notices are on the bus: a record left pending here only risks a harmless republish later.
            self._complete(source, delivery_id, token, now)
        ids = tuple(notices)
        if in_progress:
            raise DeliveryInProgress(f"{in_progress} of {len(ids)} deliveries held by another request")
        if not claimed:
            return Outcome("duplicate", 200, topic=topic, delivery_ids=ids, duplicates=duplicates)
        return Outcome("accepted", 202, topic=topic, delivery_ids=ids, published=len(claimed), duplicates=duplicates)

    def _release(self, source: str, delivery_ids: Sequence[str], token: str) -> None:
        for delivery_id in delivery_ids:
            try:
                self.deliveries.release(source, delivery_id, token)
            except Exception:  # noqa: S112 - the lease runs out on its own; the sender's retry then claims it
                continue

    def _complete(self, source: str, delivery_id: str, token: str, now: float) -> None:
        # See _publish_once: a failure here means at worst a duplicate notice, never a lost one.
        with contextlib.suppress(Exception):
            self.deliveries.complete(source, delivery_id, token, now=now)


def echo_filters(config: IngressConfig) -> dict[str, Callable[[Any], bool]]:
    """Per webhook source, how to recognise the echo of Syncline's own write: for a HubSpot source whose system
    is a HubSpot portal, an event whose ``changeSource``/``sourceId`` name the system's app
    (``connectors.hubspot.WebhookTranslator.is_echo``)."""
    filters: dict[str, Callable[[Any], bool]] = {}
    for name, source in config.webhooks.items():
        system = config.systems.get(source.system or name)
        if source.scheme == "hubspot" and system is not None and system.kind == "hubspot" and system.app_id:
            from syncline.connectors.hubspot import WebhookTranslator  # noqa: PLC0415 - httpx only where used

            filters[name] = _echo_of(WebhookTranslator(app_id=system.app_id).is_echo)
    return filters


def _echo_of(is_echo: Callable[[Mapping[str, Any]], bool]) -> Callable[[Any], bool]:
    return lambda event: isinstance(event, Mapping) and is_echo(event)


def parse_webhook_secret(value: str) -> list[str]:
    """A secret's value: the signing secret itself, or ``{"secrets": [...]}`` / ``[...]`` while rotating."""
    text = value.strip()
    parsed: Any = text
    if text[:1] in "[{":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("webhook secret looks like JSON but is not valid JSON") from None
    if isinstance(parsed, dict):
        parsed = parsed.get("secrets")
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list) or not parsed or not all(isinstance(s, str) and s for s in parsed):
        raise ValueError('webhook secret must be a string, a list of strings or {"secrets": [...]}')
    return parsed


# -- parsing -------------------------------------------------------------------------------------------
def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _parse(body: bytes, media_type: str) -> Any:
    try:
        if media_type == "application/x-www-form-urlencoded":
            form = {name: values[0] for name, values in parse_qs(body.decode("utf-8")).items()}
            # Slack's interactive payloads arrive as one form field holding JSON.
            return json.loads(form["payload"]) if "payload" in form else form
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError, over 4,300 digits
        raise MalformedRequest(f"body is not valid {media_type}: {type(exc).__name__}") from None


def _events(request: WebhookRequest, source: WebhookSource, payload: Any) -> Any:
    """The events in one request: one per request, except HubSpot's batches."""
    if source.scheme == "hubspot":
        if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
            raise MalformedRequest("HubSpot body is not a list of events")
        for item in payload:
            event_id = item.get("eventId")
            yield _Event(
                delivery_id=str(event_id) if _scalar(event_id) else _hash(json.dumps(item, sort_keys=True).encode()),
                topic=_topic(request, source, item),
                payload=item,
                triggered_at=_from_millis(item.get("occurredAt")),
            )
        return
    yield _Event(
        delivery_id=_delivery_id(request, source, payload),
        topic=_topic(request, source, payload),
        payload=payload,
        triggered_at=_triggered_at(request) if source.scheme == "shopify" else None,
    )


def _delivery_id(request: WebhookRequest, source: WebhookSource, payload: Any) -> str:
    """The sender's id of this delivery, stable across its retries; a hash of the body where it has none."""
    scheme = source.scheme
    found: Any = None
    if scheme == "shopify":
        # One event may be delivered to several topic subscriptions under the same event id.
        event_id, topic = request.header("X-Shopify-Event-Id"), request.header("X-Shopify-Topic")
        found = f"{event_id}/{topic}" if event_id and topic else event_id or request.header("X-Shopify-Webhook-Id")
    elif scheme == "github":
        found = request.header("X-GitHub-Delivery")
    elif scheme == "standard-webhooks":
        found = request.header("webhook-id")
    elif scheme == "svix":
        found = request.header("svix-id") or request.header("webhook-id")
    elif scheme == "stripe":
        found = _field(payload, "id")
    elif scheme == "slack":
        found = _field(payload, "event_id")
    elif scheme == "hmac" and source.hmac.delivery_id_header:
        found = request.header(source.hmac.delivery_id_header)
    if _scalar(found) and str(found).strip():
        return str(found).strip()[:_MAX_HEADER_ID]
    return _hash(request.body)


def _topic(request: WebhookRequest, source: WebhookSource, payload: Any) -> str | None:
    header = source.topic_header or (None if source.topic_field else _TOPIC_HEADERS.get(source.scheme))
    if header:
        return request.header(header)
    path = source.topic_field or _TOPIC_FIELDS.get(source.scheme)
    value = _field(payload, path) if path else None
    if value is None and source.scheme == "slack":
        value = _field(payload, "type")
    return str(value) if _scalar(value) else None


def _key(event: _Event, paths: Sequence[str]) -> str:
    parts = []
    for path in paths:
        value = _field(event.payload, path)
        if not _scalar(value) or not str(value):
            raise MalformedRequest(f"topic {event.topic!r}: payload has no usable {path!r} for the notice key")
        parts.append(str(value))
    key = KEY_SEPARATOR.join(parts)
    if "\x00" in key:  # no system can look such a record up
        raise MalformedRequest(f"topic {event.topic!r}: notice key contains a NUL character")
    if len(key) > 512:
        raise MalformedRequest(f"topic {event.topic!r}: notice key longer than 512 characters")
    return key


def _field(payload: Any, path: str) -> Any:
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _scalar(value: Any) -> bool:
    # Integers are kept exact (Shopify ids exceed 2**53); booleans and floats make no key.
    return isinstance(value, str | int) and not isinstance(value, bool)


def _hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _triggered_at(request: WebhookRequest) -> datetime | None:
    raw = request.header("X-Shopify-Triggered-At")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise MalformedRequest("X-Shopify-Triggered-At is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _from_millis(value: Any) -> datetime | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
