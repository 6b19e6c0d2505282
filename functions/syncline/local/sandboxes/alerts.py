"""A sandbox for the alert channels: Slack incoming webhooks and the PagerDuty Events API v2.

Slack (``POST /services/T…/B…/secret``): ``200 ok`` (text), ``400 invalid_payload`` for a body that is
not JSON or has neither ``text`` nor ``blocks``, ``404 no_service`` for a webhook that does not exist
(revoked or mistyped), like Slack. PagerDuty (``POST /v2/enqueue``): ``202 {status, message, dedup_key}``,
or ``400 {status: "invalid event", message, errors: [...]}``. Accepted messages are recorded for tests,
and incidents are tracked by dedup key (triggered → acknowledged → resolved). Faults come from
``base.Faults`` (``sandbox.faults.add("status", times=2, status=503)``).
"""

from __future__ import annotations

import json
import secrets
from typing import Any, ClassVar

from syncline.local.sandboxes.base import Reply, Request, Sandbox, route

PAGERDUTY_SEVERITIES = frozenset({"critical", "error", "warning", "info"})
PAGERDUTY_ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
_TEXT = {"Content-Type": "text/html"}  # what Slack sends with its plain-text answers


def _slack(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), dict(_TEXT))


class AlertsSandbox(Sandbox):
    service: ClassVar[str] = "alerts"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, seed: int | None = None) -> None:
        super().__init__(host, port, seed=seed)
        self.slack_hooks: set[str] = set()
        self.slack_messages: list[dict[str, Any]] = []
        self.pagerduty_events: list[dict[str, Any]] = []
        self.incidents: dict[str, str] = {}  # dedup_key -> triggered | acknowledged | resolved

    # --- Slack ----------------------------------------------------------------------------------------

    def slack_webhook(self) -> str:
        """A new incoming-webhook URL (its path is the credential, as with Slack)."""
        path = f"/services/T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}/{secrets.token_urlsafe(18)}"
        with self.lock:
            self.slack_hooks.add(path)
        return f"{self.url}{path}"

    def revoke_slack_webhook(self, url: str) -> None:
        with self.lock:
            self.slack_hooks.discard(url.removeprefix(self.url))

    @route("POST", r"/services/[^/]+/[^/]+/[^/]+")
    def slack_post(self, request: Request) -> Reply:
        with self.lock:
            if request.path not in self.slack_hooks:
                return _slack(404, "no_service")
        try:
            message = request.json()
        except (ValueError, UnicodeDecodeError):
            return _slack(400, "invalid_payload")
        if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
            return _slack(400, "invalid_payload")
        if "blocks" in message and not isinstance(message["blocks"], list):
            return _slack(400, "invalid_blocks")
        with self.lock:
            self.slack_messages.append(message)
        return _slack(200, "ok")

    # --- PagerDuty ------------------------------------------------------------------------------------

    def routing_key(self) -> str:
        """A 32-character integration key, the shape PagerDuty checks."""
        return secrets.token_hex(16)

    @route("POST", r"/v2/enqueue")
    def pagerduty_enqueue(self, request: Request) -> Reply:
        try:
            event = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return Reply(
                400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["Invalid JSON"]}
            )
        errors = self._pagerduty_errors(event)
        if errors:
            return Reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
        dedup_key = event.get("dedup_key") or secrets.token_hex(16)
        action = event["event_action"]
        with self.lock:
            self.pagerduty_events.append({**event, "dedup_key": dedup_key})
            current = self.incidents.get(dedup_key)
            if action == "trigger" and current in {None, "resolved"}:
                self.incidents[dedup_key] = "triggered"
            elif action == "acknowledge" and current == "triggered":
                self.incidents[dedup_key] = "acknowledged"
            elif action == "resolve" and current in {"triggered", "acknowledged"}:
                self.incidents[dedup_key] = "resolved"
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    @staticmethod
    def _pagerduty_errors(event: Any) -> list[str]:
        if not isinstance(event, dict):
            return ["Event object must be a JSON object"]
        errors = []
        key = event.get("routing_key")
        if not isinstance(key, str) or len(key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        action = event.get("event_action")
        if action not in PAGERDUTY_ACTIONS:
            errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in {"acknowledge", "resolve"} and not dedup_key:
            errors.append("'dedup_key' is missing and is required for acknowledge and resolve events")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                return [*errors, "'payload' is missing or invalid"]
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary:
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in PAGERDUTY_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
        return errors

    def rate_limited(self) -> Reply:
        return Reply(429, {"status": "throttle event", "message": "Requests for this service are arriving too quickly"})
