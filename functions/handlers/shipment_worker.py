"""SQS-triggered shipment worker: OMS shipment notices -> each shipment read fresh from the OMS -> the store's
fulfilment of its order (once, with tracking), publishing ShipmentCreated for each fulfilment it creates; see
``handlers.record_worker`` and ``syncline.shipments``."""

from __future__ import annotations

from handlers import initialised
from handlers.record_worker import record_handler
from syncline.shipments import ENTITY, shipment_sync

handler = record_handler(
    ENTITY,
    lambda deps, pair: shipment_sync(
        pair.name,
        deps.systems().shipment_source(pair.source),
        deps.systems().fulfillment_target(pair.target),
        deps.dead_letters(),
        source_system=pair.source,
        publish=deps.publisher().publish_event,
    ),
)


initialised()
