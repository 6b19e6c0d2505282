"""Notification rules: which canonical events alert whom, through which channels, saying what.

A rule names an event type (``OrderReceived``, ``OrderStatusChanged``, ``ShipmentCreated``, ``StockUpdated``
or any other in ``syncline.canonical.events.EVENT_TYPES``), conditions on the event's data (all must
hold), channel names and a message template with ``str.format`` placeholders over the event data, e.g.::

    name: low-stock
    event: StockUpdated
    when: [{field: available, below: 5}]
    channels: [ops-slack]
    message: "{sku} at {location}: only {available} left"

Besides the data's fields a template may use ``event_type``, ``event_id``, ``event_key``,
``source_system``, ``occurred_at`` and ``trace_id``; nested fields read as ``{shipping_address.city}`` or
``{lines[0][sku]}``. Every placeholder and condition field is checked against the event type's model
when the rules are loaded, so a typo fails the deployment with the rule, the name and the known fields,
not the first alert at 3 a.m.

Events are delivered at least once, so ``Notifier.handle`` claims ``{rule}#{event id}#{channel}`` in a
dedupe store before sending: a redelivered event does not alert twice, and when one channel fails only
that channel is tried again on the retry.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syncline.connectors.alerts import Alert, AlertChannel, SecretResolver, Severity

if TYPE_CHECKING:
    from syncline.canonical.events import CanonicalEvent
    from syncline.config import AlertChannelConfig

ENVELOPE_FIELDS = ("event_type", "event_id", "event_key", "source_system", "occurred_at", "trace_id")
OPERATORS = ("equals", "in_", "below", "below_field", "present")
_MISSING = object()


class RuleError(ValueError):
    """A rule that cannot work: the message names the rule and what is wrong with it."""


class Condition(BaseModel):
    """One test on a field of the event data (a dotted path). Exactly one operator: ``equals``, ``in``,
    ``below`` (a number), ``below_field`` (another field, e.g. a reorder point) or ``present``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    field: str = Field(min_length=1)
    equals: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    below: Decimal | None = None
    below_field: str | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [name for name in OPERATORS if name in self.model_fields_set]
        if len(given) != 1:
            names = ", ".join("in" if name == "in_" else name for name in OPERATORS)
            raise ValueError(f"condition on {self.field!r} needs exactly one of {names}")
        return self

    def holds(self, data: Mapping[str, Any]) -> bool:
        value = resolve(data, self.field)
        if "present" in self.model_fields_set:
            return (value is not _MISSING and value not in (None, "")) is self.present
        if "equals" in self.model_fields_set:
            return value is not _MISSING and _same(value, self.equals)
        if value is _MISSING or value is None:
            return False
        if self.in_ is not None:
            return any(_same(value, option) for option in self.in_)
        limit = self.below if self.below is not None else resolve(data, self.below_field or "")
        number, bound = _decimal(value), _decimal(limit)
        return number is not None and bound is not None and number < bound


class NotificationRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="unique; part of the dedupe key")
    event: str = Field(description="a canonical event type, e.g. OrderStatusChanged")
    when: list[Condition] = Field(default_factory=list, description="all must hold")
    channels: list[str] = Field(min_length=1)
    message: str = Field(min_length=1, max_length=3000)
    title: str | None = Field(None, max_length=150, description="a template too; the rule name by default")
    severity: Severity = "warning"
    dedupe_hours: int = Field(168, ge=1, le=24 * 90, description="how long a redelivered event is recognised")

    @field_validator("event")
    @classmethod
    def _known_event(cls, event: str) -> str:
        from syncline.canonical.events import EVENT_TYPES  # noqa: PLC0415 - only when rules are configured

        if event not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event!r}; known: {', '.join(sorted(EVENT_TYPES))}")
        return event

    @model_validator(mode="after")
    def _fields_exist(self) -> NotificationRule:
        model = data_model(self.event)
        problems = []
        for label, template in (("message", self.message), ("title", self.title)):
            if template is None:
                continue
            try:
                names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
            except ValueError as exc:
                problems.append(f"{label} template is not valid: {exc}")
                continue
            for name in names:
                if not name:
                    problems.append(f"{label} uses a positional placeholder {{}}: name a field instead")
                elif (problem := check_path(model, _dotted(name))) is not None:
                    problems.append(f"{label} placeholder {{{name}}}: {problem}")
        paths = [path for condition in self.when for path in (condition.field, condition.below_field) if path]
        problems.extend(
            f"condition field {path!r}: {problem}" for path in paths if (problem := check_path(model, path)) is not None
        )
        if problems:
            raise ValueError(f"rule {self.name!r} on {self.event}: " + "; ".join(problems))
        return self


class NotificationRules(BaseModel):
    """The ``notifications`` section of the configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[NotificationRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> NotificationRules:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
        return self


def load_rules(raw: Sequence[Mapping[str, Any]]) -> list[NotificationRule]:
    """Validate rules from configuration; raise ``RuleError`` listing every problem found."""
    try:
        return NotificationRules.model_validate({"rules": list(raw)}).rules
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()]
        raise RuleError("invalid notification rules:\n  " + "\n  ".join(lines)) from None


# --- paths over event data -----------------------------------------------------------------------------


def data_model(event_type: str) -> type[BaseModel]:
    from syncline.canonical.events import EVENT_TYPES  # noqa: PLC0415 - keeps configuration loading light

    model: type[BaseModel] = EVENT_TYPES[event_type].model_fields["data"].annotation  # type: ignore[assignment]
    return model


def _dotted(name: str) -> str:
    """``lines[0][sku]`` and ``shipping_address.city`` as one dotted path."""
    return name.replace("[", ".").replace("]", "")


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        return options[0] if len(options) == 1 else Any
    return annotation


def check_path(model: type[BaseModel], path: str) -> str | None:
    """Why ``path`` cannot exist on ``model``'s data, or None when it can."""
    parts = path.split(".")
    if len(parts) == 1 and parts[0] in ENVELOPE_FIELDS:
        return None
    current: Any = model
    for depth, part in enumerate(parts):
        target = _unwrap(current)
        where = ".".join(parts[:depth]) or model.__name__
        if isinstance(target, type) and issubclass(target, BaseModel):
            if part not in target.model_fields:
                known = sorted(target.model_fields) + (sorted(ENVELOPE_FIELDS) if depth == 0 else [])
                owner = target.__name__ if depth == 0 else f"{where} ({target.__name__})"
                return f"{part!r} is not a field of {owner}; known: {', '.join(known)}"
            current = target.model_fields[part].annotation
        elif get_origin(target) is list:
            if not part.isdigit():
                return f"{where} is a list: use an index, e.g. {where}[0]"
            current = get_args(target)[0]
        elif get_origin(target) is dict or target is Any:
            return None  # free-form keys: checked when rendered
        else:
            return f"{where} has no fields (it is a {getattr(target, '__name__', target)})"
    return None


def resolve(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or ``_MISSING``."""
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or value is _MISSING:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _same(value: Any, expected: Any) -> bool:
    numbers = (int, float, Decimal)
    if isinstance(value, numbers) and isinstance(expected, numbers) and not isinstance(value, bool):
        return _decimal(value) == _decimal(expected)
    return bool(value == expected)


class _Template(string.Formatter):
    """``str.format`` over nested data; an empty or absent value shows as ``-``."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        return resolve(kwargs, _dotted(field_name)), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is _MISSING or value is None:
            return "-"
        return str(super().format_field(value, format_spec))


_TEMPLATE = _Template()


def event_context(event: CanonicalEvent[Any]) -> dict[str, Any]:
    """What conditions and templates see: the data's fields and the envelope's."""
    return {
        **event.data.model_dump(),
        "event_type": event.event_type,
        "event_id": event.event_id,
        "event_key": event.key,
        "source_system": event.source_system,
        "occurred_at": event.occurred_at,
        "trace_id": event.trace_id,
    }


# --- dedupe and delivery ---------------------------------------------------------------------------------


class DedupeStore(Protocol):
    """Remembers which (rule, event, channel) alerts went out. ``claim`` returns a token, or None when the
    alert was sent already or another worker is sending it now (its lease has not expired)."""

    def claim(self, key: str, *, now: float, ttl_seconds: int) -> str | None: ...

    def complete(self, key: str, token: str, *, now: float) -> None: ...

    def release(self, key: str, token: str) -> None: ...


class InMemoryDedupe:
    """``DedupeStore`` for tests and the local runner."""

    def __init__(self, lease_seconds: float = 60.0) -> None:
        self.lease_seconds = lease_seconds
        self.items: dict[str, tuple[str, str, float, float]] = {}  # key -> (state, token, lease_until, expires_at)
        self._lock = threading.Lock()

    def claim(self, key: str, *, now: float, ttl_seconds: int) -> str | None:
        with self._lock:
            held = self.items.get(key)
            if held is not None and held[3] > now and not (held[0] == "pending" and held[2] <= now):
                return None
            token = secrets.token_hex(8)
            self.items[key] = ("pending", token, now + self.lease_seconds, now + ttl_seconds)
            return token

    def complete(self, key: str, token: str, *, now: float) -> None:
        with self._lock:
            held = self.items.get(key)
            if held is not None and held[1] == token:
                self.items[key] = ("sent", token, now, held[3])

    def release(self, key: str, token: str) -> None:
        with self._lock:
            if key in self.items and self.items[key][1] == token:
                del self.items[key]


@dataclass(frozen=True)
class Sent:
    rule: str
    channel: str
    event_id: str
    reference: str | None = None


@dataclass(frozen=True)
class Failure:
    rule: str
    channel: str
    error: str
    retryable: bool


class NotificationFailed(RuntimeError):
    """Some channels failed (and were released for the retry); ``sent`` went out and will not repeat."""

    def __init__(self, failures: list[Failure], sent: list[Sent]) -> None:
        self.failures, self.sent = failures, sent
        self.retryable = any(failure.retryable for failure in failures)
        summary = "; ".join(f"{f.rule} -> {f.channel}: {f.error}" for f in failures)
        super().__init__(f"{len(failures)} notification(s) failed: {summary}"[:1000])


def dedupe_key(rule: str, event_id: str, channel: str) -> str:
    return f"{rule}#{event_id}#{channel}"


class Notifier:
    """Evaluates the rules for an event and sends each matching rule's alert to its channels, once."""

    def __init__(
        self,
        rules: Sequence[NotificationRule],
        channels: Mapping[str, AlertChannel],
        dedupe: DedupeStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = sorted({f"{rule.name}: {name}" for rule in rules for name in rule.channels if name not in channels})
        if unknown:
            raise RuleError(
                f"rules name channels that are not configured ({', '.join(unknown)}); configured: {', '.join(sorted(channels))}"
            )
        self.rules, self.channels, self.dedupe, self.clock = list(rules), dict(channels), dedupe, clock

    def matching(self, event: CanonicalEvent[Any]) -> list[NotificationRule]:
        context = event_context(event)
        return [
            rule for rule in self.rules if rule.event == event.event_type and all(c.holds(context) for c in rule.when)
        ]

    def alert(self, rule: NotificationRule, event: CanonicalEvent[Any]) -> Alert:
        context = event_context(event)
        details = {"event": event.event_type, "key": event.key, "event_id": event.event_id, "rule": rule.name}
        if event.trace_id:
            details["trace_id"] = event.trace_id
        return Alert(
            summary=_render(rule, rule.message, context),
            title=_render(rule, rule.title, context) if rule.title else rule.name,
            severity=rule.severity,
            source=f"syncline/{event.source_system}",
            component=event.event_type,
            details=details,
            dedup_key=f"{rule.name}:{event.key}",  # repeats about one record group into one incident
        )

    def handle(self, event: CanonicalEvent[Any] | Mapping[str, Any]) -> list[Sent]:
        """Send what the event's matching rules ask for; return what was sent now (not earlier deliveries).

        Raises ``NotificationFailed`` after trying every channel when any failed, so the event is retried;
        the channels that succeeded are remembered and skipped then.
        """
        parsed = parse_event(event)
        sent: list[Sent] = []
        failures: list[Failure] = []
        for rule in self.matching(parsed):
            alert = self.alert(rule, parsed)
            for name in rule.channels:
                key = dedupe_key(rule.name, parsed.event_id, name)
                token = self.dedupe.claim(key, now=self.clock(), ttl_seconds=rule.dedupe_hours * 3600)
                if token is None:
                    continue  # sent already (a redelivery) or being sent by another worker
                try:
                    delivery = self.channels[name].send(alert)
                except Exception as exc:  # one channel failing must not keep the others from alerting
                    self.dedupe.release(key, token)
                    failures.append(Failure(rule.name, name, str(exc)[:300], bool(getattr(exc, "retryable", True))))
                    continue
                self.dedupe.complete(key, token, now=self.clock())
                sent.append(Sent(rule.name, name, parsed.event_id, delivery.reference))
        if failures:
            raise NotificationFailed(failures, sent)
        return sent


def parse_event(event: CanonicalEvent[Any] | Mapping[str, Any]) -> CanonicalEvent[Any]:
    from syncline.canonical.events import EVENT_TYPES, CanonicalEvent  # noqa: PLC0415

    if isinstance(event, CanonicalEvent):
        return event
    event_type = event.get("event_type")
    if event_type not in EVENT_TYPES:
        raise ValueError(f"not a canonical event type: {event_type!r}")
    parsed: CanonicalEvent[Any] = EVENT_TYPES[event_type].model_validate(event)
    return parsed


def _render(rule: NotificationRule, template: str, context: Mapping[str, Any]) -> str:
    try:
        return _TEMPLATE.vformat(template, (), context)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # e.g. a number format on a text field
        raise RuleError(f"rule {rule.name!r}: cannot render {template!r}: {exc}") from None


# --- channels from configuration ---------------------------------------------------------------------------

SECRET_FIELDS = {"slack": "url", "pagerduty": "routing_key"}


def secret_value(raw: str, field: str) -> str:
    """A channel secret holds the value itself, or a JSON object with it under ``field`` (``url`` for Slack,
    ``routing_key`` for PagerDuty). The value never appears in an error."""
    text = raw.strip()
    if not text.startswith("{"):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("the secret starts with '{' but is not valid JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get(field), str):
        raise ValueError(f"the secret is a JSON object without a string {field!r}")
    return str(value[field])


def _rehost(url: str, base: str) -> str:
    """``url`` with the scheme and host of ``base`` (a sandbox serving the service's own paths)."""
    target, host = urlsplit(url), urlsplit(base)
    return urlunsplit((host.scheme, host.netloc, target.path, target.query, target.fragment))


def channels_from_config(
    configured: Mapping[str, AlertChannelConfig],
    resolve: SecretResolver,
    *,
    endpoints: Mapping[str, str] | None = None,
    ses_client: Any = None,
) -> dict[str, AlertChannel]:
    """The ``[alert_channels]`` of the configuration as channels. ``resolve`` reads a secret by name at send
    time; ``endpoints`` (``SYNCLINE_ENDPOINTS``, keyed by ``topology.alert_channel_id``) point a channel at
    a sandbox: PagerDuty's base URL, the scheme and host of a Slack webhook URL."""
    from syncline.connectors.alerts import PagerDutyEvents, SesEmail, SlackWebhook  # noqa: PLC0415
    from syncline.topology import alert_channel_id  # noqa: PLC0415 - topology imports config, config this module

    endpoints = endpoints or {}
    channels: dict[str, AlertChannel] = {}
    for name, settings in configured.items():
        override = endpoints.get(alert_channel_id(name))
        if settings.kind == "slack":

            def slack_url(reference: str, override: str | None = override) -> str:
                url = secret_value(resolve(reference), SECRET_FIELDS["slack"])
                return _rehost(url, override) if override else url

            channels[name] = SlackWebhook(name, settings.secret, slack_url)
        elif settings.kind == "pagerduty":
            channels[name] = PagerDutyEvents(
                name,
                settings.secret,
                lambda reference: secret_value(resolve(reference), SECRET_FIELDS["pagerduty"]),
                base_url=override or settings.base_url,
            )
        else:
            channels[name] = SesEmail(
                name,
                settings.sender,
                settings.recipients,
                client=ses_client,
                configuration_set=settings.configuration_set,
                subject_prefix=settings.subject_prefix,
            )
    return channels
