"""SQS-triggered price worker: a batch of price ChangeNotices -> fresh ERP prices -> the target, partial failures
reported (the shape of ``handlers.sync_worker``; the engine is ``syncline.prices``)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.sync_worker import finish_batch
from handlers.tracing import tracer
from syncline.prices import ENTITY, PricePair, sync_price_batch


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    target = deps.settings.target
    if not target:
        raise RuntimeError("SYNCLINE_TARGET is not set for the price worker")
    declared = deps.config.one_way_pair(target, ENTITY)
    pair = PricePair.of(declared, ZoneInfo(deps.config.systems[declared.source].timezone))
    result = sync_price_batch(
        [(record["messageId"], record["body"]) for record in event.get("Records", [])],
        pair=pair,
        source=deps.erp_reader(pair.source),
        state=deps.state(),
        target=deps.systems().price_target(target),
        dead_letters=deps.dead_letters(),
    )
    return finish_batch(deps, result, pair.name, ENTITY, event, context)


initialised()
