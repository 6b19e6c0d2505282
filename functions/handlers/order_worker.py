"""SQS-triggered order worker: order notices (e.g. Shopify orders/create) -> each order fetched fresh from its
source -> the target's guarded upsert (the OMS), publishing OrderReceived / OrderStatusChanged for each real
change; see ``handlers.record_worker`` and ``syncline.orders``."""

from __future__ import annotations

from handlers import initialised
from handlers.record_worker import record_handler
from syncline.orders import ENTITY, order_sync

handler = record_handler(
    ENTITY,
    lambda deps, pair: order_sync(
        pair.name,
        deps.systems().order_source(pair.source),
        deps.systems().order_target(pair.target),
        deps.dead_letters(),
        source_system=pair.source,
        publish=deps.publisher().publish_event,
    ),
)


initialised()
