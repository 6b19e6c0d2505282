"""Outbound alert channels behind one ``AlertChannel`` protocol: a Slack incoming webhook, e-mail through
Amazon SES (v2 API) and PagerDuty Events API v2.

Slack and PagerDuty go through ``HttpApi``, so 429 / 5xx / timeouts are retried with backoff and any other
4xx (a malformed message, a revoked webhook) fails at once with ``ApiError``. SES failures are raised as
``ApiError`` too, so a caller handles every channel the same way. A webhook URL or a routing key is a
credential: it is fetched from the secret resolver at send time (so a rotation applies without a
restart), kept out of ``repr`` and never logged or put in an error message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from syncline.connectors.errors import ApiError

if TYPE_CHECKING:
    from syncline.connectors.http import HttpApi

logger = logging.getLogger(__name__)

Severity = Literal["critical", "error", "warning", "info"]
EventAction = Literal["trigger", "acknowledge", "resolve"]
SecretResolver = Callable[[str], str]
"""Returns the secret value for a reference (a Secrets Manager / SSM name); the value is never logged."""

PAGERDUTY_URL = "https://events.pagerduty.com"
SUMMARY_LIMIT = 1024  # PagerDuty's limit on payload.summary
_SEVERITY_EMOJI = {
    "critical": ":rotating_light:",
    "error": ":red_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}


@dataclass(frozen=True)
class Alert:
    """One message for a person. ``dedup_key`` groups repeats into one PagerDuty incident and is required to
    acknowledge or resolve one; ``details`` are shown as fields (Slack), lines (e-mail) or custom details."""

    summary: str
    severity: Severity = "warning"
    title: str | None = None
    source: str = "syncline"
    component: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    dedup_key: str | None = None
    action: EventAction = "trigger"


@dataclass(frozen=True)
class Delivery:
    """A message a channel accepted; ``reference`` is the service's id for it (SES message id, PagerDuty
    dedup key), when it gives one."""

    channel: str
    reference: str | None = None


class AlertChannel(Protocol):
    name: str

    def send(self, alert: Alert) -> Delivery:
        """Deliver the alert or raise ``ApiError`` (``retryable`` says whether trying later may help)."""


class _RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO; a Slack webhook URL is a credential, so it is masked there."""

    def __init__(self) -> None:
        super().__init__("syncline.alerts")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            masked = message
            for secret in self.secrets:
                masked = masked.replace(secret, "[redacted]")
            if masked != message:
                record.msg, record.args = masked, ()
        return True


_REDACT = _RedactSecrets()
logging.getLogger("httpx").addFilter(_REDACT)


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert) -> dict[str, Any]:
    """``text`` (notifications and clients without blocks) plus Block Kit blocks."""
    heading = f"{_SEVERITY_EMOJI[alert.severity]} {alert.title or alert.severity.upper()}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": heading[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(alert.summary)[:3000]}},
    ]
    if alert.details:
        fields = [
            {"type": "mrkdwn", "text": f"*{_escape(str(name))}*\n{_escape(str(value))}"[:2000]}
            for name, value in list(alert.details.items())[:10]  # Slack allows ten fields per section
        ]
        blocks.append({"type": "section", "fields": fields})
    context = " · ".join(part for part in (alert.source, alert.component) if part)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]})
    return {"text": f"[{alert.severity}] {alert.summary}"[:4000], "blocks": blocks}


def _http(service: str, base_url: str) -> HttpApi:
    from syncline.connectors.http import HttpApi  # noqa: PLC0415 - httpx only where a channel is built

    return HttpApi(service, base_url)


class SlackWebhook:
    """A Slack incoming webhook. Slack answers ``ok`` (200) or a short error text such as
    ``invalid_payload`` (400), ``no_service`` (404) or ``channel_is_archived`` (410)."""

    def __init__(self, name: str, webhook_secret: str, resolve: SecretResolver, *, http: HttpApi | None = None) -> None:
        self.name = name
        self._secret, self._resolve = webhook_secret, resolve
        self._http = http or _http("slack", "")

    def __repr__(self) -> str:
        return f"SlackWebhook({self.name!r})"

    def send(self, alert: Alert) -> Delivery:
        url = self._resolve(self._secret)
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{self.name}: secret {self._secret!r} does not hold a webhook URL")  # value not shown
        _REDACT.secrets.add(url)
        self._http.post(url, json=slack_message(alert))
        logger.info("alert sent", extra={"channel": self.name, "severity": alert.severity})
        return Delivery(self.name)


class PagerDutyEvents:
    """PagerDuty Events API v2 (``POST /v2/enqueue``): trigger, acknowledge or resolve an incident."""

    def __init__(
        self,
        name: str,
        routing_key_secret: str,
        resolve: SecretResolver,
        *,
        http: HttpApi | None = None,
        base_url: str = PAGERDUTY_URL,
    ) -> None:
        self.name = name
        self._secret, self._resolve = routing_key_secret, resolve
        self._http = http or _http("pagerduty", base_url)

    def __repr__(self) -> str:
        return f"PagerDutyEvents({self.name!r})"

    def event(self, alert: Alert) -> dict[str, Any]:
        """The event body without the routing key (added at send time)."""
        if alert.action != "trigger" and not alert.dedup_key:
            raise ValueError(f"{self.name}: {alert.action} needs the dedup_key of the incident")
        body: dict[str, Any] = {"event_action": alert.action}
        if alert.dedup_key:
            body["dedup_key"] = alert.dedup_key[:255]
        if alert.action == "trigger":
            payload: dict[str, Any] = {
                "summary": alert.summary[:SUMMARY_LIMIT],
                "severity": alert.severity,
                "source": alert.source,
            }
            if alert.component:
                payload["component"] = alert.component
            if alert.details:
                payload["custom_details"] = dict(alert.details)
            body["payload"] = payload
        return body

    def send(self, alert: Alert) -> Delivery:
        body = {"routing_key": self._resolve(self._secret), **self.event(alert)}
        answer = self._http.json("POST", "/v2/enqueue", json=body)
        reference = answer.get("dedup_key") if isinstance(answer, dict) else None
        logger.info("alert sent", extra={"channel": self.name, "action": alert.action, "dedup_key": reference})
        return Delivery(self.name, reference)


class SesEmail:
    """E-mail through Amazon SES (``sesv2`` ``SendEmail``) from a verified sender. Addresses are
    configuration, not secrets; boto3's standard retry mode retries throttling and 5xx."""

    def __init__(
        self,
        name: str,
        sender: str,
        recipients: list[str],
        *,
        client: Any = None,
        configuration_set: str | None = None,
        subject_prefix: str = "[Syncline]",
    ) -> None:
        if not recipients:
            raise ValueError(f"{name}: an e-mail channel needs at least one recipient")
        self.name, self.sender, self.recipients = name, sender, list(recipients)
        self.configuration_set, self.subject_prefix = configuration_set, subject_prefix
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from syncline.adapters import aws  # noqa: PLC0415 - boto3 only when e-mail is used

            self._client = aws.client("sesv2")  # the shared client defaults (standard retries, timeouts)
        return self._client

    def message(self, alert: Alert) -> dict[str, Any]:
        subject = f"{self.subject_prefix} {alert.severity.upper()}: {alert.title or alert.summary}".strip()
        lines = [alert.summary, ""]
        lines += [f"{name}: {value}" for name, value in alert.details.items()]
        lines += ["", " · ".join(part for part in (alert.source, alert.component) if part)]
        request: dict[str, Any] = {
            "FromEmailAddress": self.sender,
            "Destination": {"ToAddresses": self.recipients},
            "Content": {
                "Simple": {
                    "Subject": {"Data": " ".join(subject.split())[:200], "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": "\n".join(lines).strip(), "Charset": "UTF-8"}},
                }
            },
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    def send(self, alert: Alert) -> Delivery:
        try:
            answer = self.client.send_email(**self.message(alert))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) or None
            code = str(error.get("Code", "ClientError"))
            retryable = (status or 0) >= 500 or code in {
                "TooManyRequestsException",
                "Throttling",
                "LimitExceededException",
            }
            raise ApiError("ses", status, f"{code}: {error.get('Message', '')}", retryable=retryable) from None
        except BotoCoreError as exc:  # no response at all (endpoint unreachable, read timeout)
            raise ApiError("ses", None, type(exc).__name__, retryable=True) from None
        logger.info("alert sent", extra={"channel": self.name, "severity": alert.severity})
        return Delivery(self.name, str(answer.get("MessageId") or "") or None)
