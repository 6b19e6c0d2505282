"""handlers.observability.publish_values: a batch's values in one EMF document, the one Powertools would print."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from handlers.observability import MAX_VALUES, metrics, publish_values


@pytest.fixture(autouse=True)
def _enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()


def _documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_the_document_is_the_one_powertools_prints_at_a_hundred_values(capsys: pytest.CaptureFixture[str]) -> None:
    values = [round(0.7 * i, 1) for i in range(MAX_VALUES)]
    for value in values:  # Powertools flushes a metric on its own when it reaches 100 values
        metrics.add_metric(name="SyncLatency", unit=MetricUnit.Milliseconds, value=value)
    (by_powertools,) = _documents(capsys.readouterr().out)

    publish_values("SyncLatency", MetricUnit.Milliseconds, values)
    (ours,) = _documents(capsys.readouterr().out)

    for document in (ours, by_powertools):
        document["_aws"].pop("Timestamp")
    assert ours == by_powertools
    assert ours["SyncLatency"] == values
    assert ours["_aws"] == {
        "CloudWatchMetrics": [
            {
                "Namespace": "Syncline",
                "Dimensions": [["service"]],
                "Metrics": [{"Name": "SyncLatency", "Unit": "Milliseconds"}],
            }
        ]
    }


def test_the_values_do_not_join_the_handlers_other_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.add_metric(name="Synced", unit=MetricUnit.Count, value=3)
    publish_values("SyncLatency", MetricUnit.Milliseconds, [12.5, 40.0])
    (document,) = _documents(capsys.readouterr().out)
    assert document["SyncLatency"] == [12.5, 40.0]
    assert "Synced" not in document
    assert metrics.metric_set == {"Synced": {"Unit": "Count", "StorageResolution": 60, "Value": [3.0]}}
    metrics.clear_metrics()


def test_nothing_is_printed_for_no_values_or_when_metrics_are_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_values("SyncLatency", MetricUnit.Milliseconds, [])
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    publish_values("SyncLatency", MetricUnit.Milliseconds, [1.0])
    assert capsys.readouterr().out == ""


def test_more_than_one_document_holds_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 100"):
        publish_values("SyncLatency", MetricUnit.Milliseconds, [1.0] * (MAX_VALUES + 1))


@pytest.mark.parametrize("name", ["", "x" * 256, "service"])
def test_a_name_add_metric_would_refuse_or_a_dimension_key_is_refused(name: str) -> None:
    metrics.add_dimension(name="service", value="syncline")  # what serialising adds when it is missing
    with pytest.raises(ValueError, match="metric name"):
        publish_values(name, MetricUnit.Milliseconds, [1.0])
