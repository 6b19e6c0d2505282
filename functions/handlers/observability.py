"""The one Logger and Metrics every handler shares (service and namespace from Powertools env).

The X-Ray tracer lives in ``handlers.tracing``: loading the X-Ray SDK costs about 100 ms of cold start
(it builds its own botocore clients at import), which the webhook function, whose whole job is to
answer within milliseconds, does not pay. Lambda active tracing still records its invocations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger(service="syncline")
metrics = Metrics(namespace="Syncline", service="syncline")

MAX_VALUES = 100  # values of one metric in one EMF document (CloudWatch's limit)
MAX_NAME = 255  # characters of a metric name, as add_metric checks it


def publish_values(name: str, unit: MetricUnit, values: Sequence[float]) -> None:
    """Publish up to 100 values of one metric (per-record latencies) as one EMF document now.

    The document is the one Powertools prints when a metric reaches 100 values (``serialize_metric_set``:
    same namespace, dimensions and timestamp as the handler's other metrics). Adding the values one by one
    with ``metrics.add_metric`` costs time quadratic in their number: each call formats the metric's whole
    list of values for a debug message, logged or not (about 1.5 ms of a worker's batch of 100).
    """
    if len(values) > MAX_VALUES:
        raise ValueError(f"{len(values)} values of {name}: one EMF document holds at most {MAX_VALUES}")
    if not 1 <= len(name) <= MAX_NAME or name in metrics.dimension_set or name in metrics.metadata_set:
        raise ValueError(f"metric name {name!r}: 1 to {MAX_NAME} characters, and not a dimension or metadata key")
    if not values or is_metrics_disabled():
        return
    metric = {"Unit": unit.value, "StorageResolution": 60, "Value": [float(value) for value in values]}
    document = metrics.serialize_metric_set(metrics={name: metric})
    print(json.dumps(document, separators=(",", ":")))  # noqa: T201 - EMF goes to stdout, as Powertools prints it
