"""``[alert_channels]`` and ``[[notifications]]``: validated at load with the line and field of a mistake,
turned into the notifier's queue, rule and function, and into channels at run time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handlers import notifier as notifier_handler
from syncline.config import DEFAULT_PATH, ConfigError, load_config
from syncline.connectors.alerts import PagerDutyEvents, SesEmail, SlackWebhook
from syncline.notify import Failure, NotificationFailed, channels_from_config, secret_value
from syncline.topology import alert_channel_id, build_topology

CHANNELS = """
[alert_channels.ops-slack]
kind = "slack"
secret = "syncline/alerts/ops-slack"

[alert_channels.on-call]
kind = "pagerduty"
secret = "syncline/alerts/pagerduty"

[alert_channels.buyers]
kind = "ses"
sender = "alerts@example.com"
recipients = ["buyers@example.com"]
"""

RULE = """
[[notifications]]
name = "low-stock"
event = "StockLevelCrossed"
when = [{ field = "kind", equals = "below_reorder_point" }]
channels = ["ops-slack", "buyers"]
message = "{sku} at {location}: {available} left"
"""


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text() + text)
    return load_config(path)


def test_channels_and_rules_load(tmp_path: Path) -> None:
    config = _load(tmp_path, CHANNELS + RULE)
    assert config.alert_channels["ops-slack"].kind == "slack"
    assert [rule.name for rule in config.notifications] == ["low-stock"]
    assert load_config(DEFAULT_PATH).notifications == []


def test_a_rule_naming_an_undeclared_channel_fails_with_its_line_and_field(tmp_path: Path) -> None:
    text = CHANNELS + RULE.replace('["ops-slack", "buyers"]', '["ops-slack", "ops-slak"]')
    line = (DEFAULT_PATH.read_text() + text).splitlines().index('channels = ["ops-slack", "ops-slak"]') + 1
    with pytest.raises(
        ConfigError, match=rf"line {line}: notifications\.0\.channels\.1: rule 'low-stock': channel 'ops-slak'"
    ):
        _load(tmp_path, text)


def test_a_bad_placeholder_and_a_secret_value_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"notifications\.0: .*placeholder \{skew\}"):
        _load(tmp_path, CHANNELS + RULE.replace("{sku} at", "{skew} at"))
    with pytest.raises(ConfigError, match=r"alert_channels\.ops-slack\.url: Extra inputs are not permitted"):
        _load(tmp_path, CHANNELS.replace('kind = "slack"', 'kind = "slack"\nurl = "https://hooks.slack.com/x"'))
    with pytest.raises(ConfigError, match=r"alert_channels\.buyers\.recipients\.0: 'buyers' is not an e-mail"):
        _load(tmp_path, CHANNELS.replace('["buyers@example.com"]', '["buyers"]') + RULE)
    with pytest.raises(ConfigError, match=r"notifications\.1\.name: rule name 'low-stock' is used"):
        _load(tmp_path, CHANNELS + RULE + RULE)


def test_the_topology_routes_the_rules_events_to_the_notifier(tmp_path: Path) -> None:
    assert "notifier" not in {f.id for f in build_topology(load_config(DEFAULT_PATH)).functions}
    topology = build_topology(_load(tmp_path, CHANNELS + RULE))
    function = topology.function("notifier")
    assert function.handler == "handlers.notifier.handler"
    assert function.table_access == "readwrite"
    assert function.secrets == (alert_channel_id("ops-slack"),)  # only the channels rules use; SES has none
    assert function.sends_email_as == "alerts@example.com"
    queue = topology.queue("notify")
    assert (queue.name, queue.consumer) == ("syncline-notify", "notifier")
    [rule] = [r for r in topology.rules if r.queue == "notify"]
    assert rule.pattern == {"detail-type": ["StockLevelCrossed"]}


def test_channels_are_built_with_endpoints_and_secret_values() -> None:
    config = load_config(DEFAULT_PATH).model_copy()
    channels_config = {
        "ops-slack": {"kind": "slack", "secret": "s"},
        "on-call": {"kind": "pagerduty", "secret": "p"},
        "buyers": {"kind": "ses", "sender": "a@example.com", "recipients": ["b@example.com"]},
    }
    configured = type(config).model_validate({**config.model_dump(), "alert_channels": channels_config}).alert_channels
    channels = channels_from_config(
        configured, lambda name: "{}", endpoints={alert_channel_id("on-call"): "http://127.0.0.1:9"}
    )
    assert isinstance(channels["ops-slack"], SlackWebhook)
    assert isinstance(channels["buyers"], SesEmail)
    pagerduty = channels["on-call"]
    assert isinstance(pagerduty, PagerDutyEvents) and pagerduty._http.base_url == "http://127.0.0.1:9"
    assert secret_value("https://hooks.slack.com/x", "url") == "https://hooks.slack.com/x"
    assert secret_value(json.dumps({"routing_key": "k" * 32}), "routing_key") == "k" * 32
    with pytest.raises(ValueError, match="without a string 'url'") as caught:
        secret_value(json.dumps({"webhook": "https://hooks.slack.com/secret"}), "url")
    assert "hooks.slack.com" not in str(caught.value)


def _record(body: Any) -> SQSRecord:
    return SQSRecord({"messageId": "m-1", "body": body if isinstance(body, str) else json.dumps(body)})


class _Failing:
    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable

    def handle(self, event: Any) -> list[Any]:
        raise NotificationFailed([Failure("low-stock", "ops-slack", "HTTP 503", self.retryable)], [])


CROSSING = {
    "detail-type": "StockLevelCrossed",
    "detail": {
        "event_type": "StockLevelCrossed",
        "event_id": "e-1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "source_system": "sage300",
        "key": "BOLT-1|main",
        "data": {
            "kind": "below_reorder_point",
            "pair": "p",
            "sku": "BOLT-1",
            "location": "main",
            "previous_band": "ok",
            "band": "low",
            "available": "4",
            "reorder_point": "5",
            "source_version": 1,
            "changed_at": "2026-01-01T00:00:00Z",
        },
    },
}


def test_the_handler_retries_transient_failures_and_drops_permanent_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifier_handler, "notifier", lambda: _Failing(retryable=True))
    with pytest.raises(notifier_handler.RetryLater):
        notifier_handler.deliver(_record(CROSSING))
    monkeypatch.setattr(notifier_handler, "notifier", lambda: _Failing(retryable=False))
    notifier_handler.deliver(_record(CROSSING))  # logged, not retried
    notifier_handler.deliver(_record("not json"))
    notifier_handler.deliver(_record({"detail": {"event_type": "Nope"}}))
