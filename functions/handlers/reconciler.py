"""Scheduled reconcile: a full compare of every pair, its consistency ratio as EMF metrics, stored as ``RECONCILE#<pair>``.

Compare only, never repair: the schedule measures (the figure behind a "99.95 % consistent" promise)
and an operator decides on ``syncline reconcile PAIR --apply``. The compare is
``syncline.ops.reconcile.compare``, the one the CLI runs. A pair whose compare fails (ERP or
storefront unreachable) does not stop the others; the invocation fails afterwards so the function
error alarm sees it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.adapters import aws
from syncline.ops.reconcile import CompareReport, compare, reconcilable

REPORT_PREFIX = "RECONCILE#"


class ReconcileFailed(RuntimeError):
    """One or more pairs could not be compared (the others were, and their metrics are published)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    summaries, failures = [], []
    for declared in deps.config.pairs:
        if not reconcilable(deps.config, declared):
            continue
        try:
            report = compare(
                source=deps.erp_reader(declared.source),
                target=deps.storefront(declared.target),
                pair=deps.pair_into(declared.target, declared.entity),
            )
        except Exception as exc:
            deps.reset_connections()
            logger.exception(f"reconcile of {declared.name} failed", extra={"pair": declared.name})
            failures.append(f"{declared.name}: {exc}")
            continue
        summary = _summary(report)
        _publish(report)
        aws.dynamodb().put_item(
            TableName=deps.settings.table_name,
            Item={
                "pk": {"S": f"{REPORT_PREFIX}{report.pair}"},
                "consistency": {"N": str(summary["consistency"])},
                "generated_at": {"S": str(summary["finished_at"])},
                "report": {"S": json.dumps(summary)},
            },
        )
        log = logger.info if not report.discrepancies else logger.warning
        log(f"{report.pair}: consistency {report.consistency:.4%}", extra={"counts": summary["counts"]})
        summaries.append(summary)
    if failures:
        raise ReconcileFailed("; ".join(failures))
    return {"pairs": summaries}


def _summary(report: CompareReport) -> dict[str, Any]:
    """The report without its discrepancy list (that can be large; the CLI writes it in full)."""
    document = report.as_dict()
    document["discrepancy_examples"] = document.pop("discrepancies")[:20]
    return document


def _publish(report: CompareReport) -> None:
    _single("ConsistencyRatio", report.consistency, MetricUnit.NoUnit, pair=report.pair)
    _single("RecordsCompared", report.compared, MetricUnit.Count, pair=report.pair)
    _single("Unmappable", report.unmappable, MetricUnit.Count, pair=report.pair)
    for kind, count in report.counts().items():
        _single("Discrepancies", count, MetricUnit.Count, pair=report.pair, kind=kind)


def _single(name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
    with single_metric(
        name=name, unit=unit, value=value, namespace="Syncline", default_dimensions={"service": "syncline"}
    ) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension, value=dimension_value)


initialised()
