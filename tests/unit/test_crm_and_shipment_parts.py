"""The pure parts of HubSpot contacts <-> OMS customers and OMS shipments -> Shopify fulfilments: the contact
shape both sides compare, the outbox's canonical entities, the fulfilment plan, the topology each pair gets, and
HubSpot echoes dropped at the webhook ingress."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.canonical.entities import Shipment
from syncline.config import ConfigError, SynclineConfig
from syncline.connectors.shopify import plan_fulfillment
from syncline.contacts import contact_key, contact_values
from syncline.models import ChangeNotice
from syncline.outbox import canonical_notice, drain_outbox
from syncline.shipments import shipment_created
from syncline.topology import build_topology
from syncline.webhooks import sign
from syncline.webhooks.ingress import Ingress, WebhookRequest, echo_filters
from syncline.webhooks.sources import IngressConfig, WebhookSource

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# -- contacts ----------------------------------------------------------------------------------------------


def test_contacts_compare_in_one_shape_whichever_system_they_come_from() -> None:
    from_hubspot = {
        "contact_id": "501",
        "email": "Ada@Example.com ",
        "first_name": "Ada",
        "last_name": "",
        "phone": None,
        "account_id": "77",  # HubSpot's company id: not synced
        "address": {"line1": "1 Main St", "city": "London", "country": None},
    }
    from_oms = {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": None,
        "lifecycle_stage": None,
        "address": {"line1": "1 Main St", "city": "London", "line2": "", "country": "GB"},  # country: the OMS's own
        "marketing_opt_in": True,
    }
    assert (
        contact_values(from_hubspot)
        == contact_values(from_oms)
        == {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": None,
            "phone": None,
            "lifecycle_stage": None,
            "address": {"line1": "1 Main St", "city": "London"},
        }
    )


@pytest.mark.parametrize(("email", "key"), [(" Bob@X.org", "bob@x.org"), ("", None), (None, None), ("  ", None)])
def test_the_contact_key_is_the_trimmed_lower_cased_email(email: str | None, key: str | None) -> None:
    assert contact_key(email) == key


def test_an_empty_address_is_none() -> None:
    assert contact_values({"address": {"line2": "x", "country": "GB"}})["address"] is None


# -- the outbox ----------------------------------------------------------------------------------------------


def notice(entity: str, key: str = "C-1") -> ChangeNotice:
    return ChangeNotice(source_system="oms", entity=entity, key=key, observed_at=NOW)


def test_outbox_notices_carry_canonical_entities() -> None:
    assert canonical_notice(notice("customer")).entity == "contact"
    assert canonical_notice(notice("shipment")).entity == "shipment"
    assert canonical_notice(notice("order")).entity == "order"


def test_draining_publishes_what_the_outbox_hands_over_translated() -> None:
    published: list[ChangeNotice] = []

    class Bus:
        def publish(self, notices: Any) -> None:
            published.extend(notices)

    def drain(publish: Callable[[list[ChangeNotice]], None]) -> int:
        publish([notice("customer"), notice("shipment", "SH-1")])
        return 2

    result = drain_outbox(drain, Bus())
    assert result == 2
    assert [(n.entity, n.key) for n in published] == [("contact", "C-1"), ("shipment", "SH-1")]


# -- the fulfilment plan --------------------------------------------------------------------------------------


def shipment(lines: list[tuple[str, int]], **fields: Any) -> Shipment:
    return Shipment.model_validate(
        {
            "shipment_id": "SH-1",
            "order_id": "gid://shopify/Order/9007199254740993",
            "updated_at": NOW,
            "carrier": "UPS",
            "tracking_number": "1Z1",
            "lines": [{"sku": sku, "quantity": Decimal(quantity)} for sku, quantity in lines],
        }
        | fields
    )


def state(lines: list[tuple[str, int]], *, status: str = "UNFULFILLED", tracking: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "displayFulfillmentStatus": status,
        "fulfillmentOrders": {
            "nodes": [
                {
                    "id": "FO-closed",
                    "status": "CLOSED",
                    "lineItems": {"nodes": [{"id": "L0", "sku": "A", "remainingQuantity": 5}]},
                },
                {
                    "id": "FO-1",
                    "status": "OPEN",
                    "lineItems": {
                        "nodes": [
                            {"id": f"L{i}", "sku": sku, "remainingQuantity": left}
                            for i, (sku, left) in enumerate(lines, 1)
                        ]
                    },
                },
            ]
        },
        "fulfillments": [{"id": "F-1", "trackingInfo": [{"number": number}]} for number in tracking],
    }


def test_a_shipment_takes_what_its_skus_still_have_to_ship_from_open_fulfilment_orders() -> None:
    plan = plan_fulfillment(state([("A", 2), ("B", 1), ("C", 4)]), shipment([("A", 3), ("C", 1)]))
    assert plan.skip is None
    assert plan.fulfillment == {
        "lineItemsByFulfillmentOrder": [
            {
                "fulfillmentOrderId": "FO-1",
                "fulfillmentOrderLineItems": [{"id": "L1", "quantity": 2}, {"id": "L3", "quantity": 1}],
            }
        ],
        "notifyCustomer": False,
        "trackingInfo": {"company": "UPS", "number": "1Z1"},
    }


@pytest.mark.parametrize(
    ("order", "parcel", "reason"),
    [
        (state([("A", 2)], status="FULFILLED"), shipment([("A", 1)]), "order already fulfilled"),
        (state([("A", 2)], tracking=["1Z1"]), shipment([("A", 1)]), "shipment already recorded"),
        (state([("A", 0)]), shipment([("A", 1)]), "nothing of the shipment is left"),
        (state([("A", 2)]), shipment([("Z", 1)]), "nothing of the shipment is left"),
        (state([("A", 2)]), shipment([("A", 1)], status="pending"), "shipment is pending"),
    ],
)
def test_nothing_is_fulfilled_twice_or_before_it_ships(order: dict[str, Any], parcel: Shipment, reason: str) -> None:
    plan = plan_fulfillment(order, parcel)
    assert plan.skip is not None and plan.skip.startswith(reason)
    assert plan.fulfillment == {}


def test_a_shipment_event_id_names_the_pair_and_the_shipment_and_fits_the_envelope() -> None:
    parcel = shipment([("A", 1)], shipped_at=NOW)
    event = shipment_created("oms-shipments", parcel, source_system="oms")
    assert (event.event_type, event.event_id, event.key, event.occurred_at) == (
        "ShipmentCreated",
        "ShipmentCreated:oms-shipments:SH-1",
        "SH-1",
        NOW,
    )
    assert event.data == parcel
    long = shipment_created("p" * 300, parcel, source_system="oms")
    assert long.event_id.startswith("ShipmentCreated:") and len(long.event_id) <= 255
    assert long.event_id == shipment_created("p" * 300, parcel, source_system="oms").event_id
    assert long.event_id != shipment_created("q" * 300, parcel, source_system="oms").event_id


# -- topology -------------------------------------------------------------------------------------------------

SYSTEMS = {
    "crm": {"kind": "hubspot", "secret": "s/crm", "app_id": "42"},
    "oms": {"kind": "oms", "secret": "s/oms"},
    "store": {"kind": "shopify", "secret": "s/store", "shop": "store.myshopify.com"},
}


def config(*pairs: dict[str, Any], **extra: Any) -> SynclineConfig:
    return SynclineConfig.model_validate({"systems": SYSTEMS, "pairs": list(pairs), **extra})


CONTACTS = {"name": "crm-customers", "source": "crm", "target": "oms", "entity": "contact", "direction": "two_way"}
SHIPMENTS = {"name": "oms-shipments", "source": "oms", "target": "store", "entity": "shipment"}
ORDERS = {"name": "orders", "source": "store", "target": "oms", "entity": "order"}


def test_an_oms_taking_part_as_a_source_gets_one_scheduled_drainer() -> None:
    topology = build_topology(config(CONTACTS, SHIPMENTS))
    drainer = topology.function("outbox_drainer_oms")
    assert (drainer.handler, drainer.reserved_concurrency, drainer.publishes_notices, drainer.secrets) == (
        "handlers.outbox_drainer.handler",
        1,
        True,
        ("oms",),
    )
    assert drainer.environment == {"SYNCLINE_SOURCE": "oms"}
    assert [(s.function, s.rate_seconds) for s in topology.schedules if s.id == "drain_outbox_oms"] == [
        ("outbox_drainer_oms", 60)
    ]
    worker = topology.function("sync_store_shipment")
    assert worker.handler == "handlers.shipment_worker.handler" and worker.secrets == ("oms", "store")
    rule = next(r for r in topology.rules if r.queue == "sync_store_shipment")
    assert rule.pattern["source"] == ["syncline.oms"] and rule.pattern["detail"] == {"entity": ["shipment"]}
    twoway = next(r for r in topology.rules if r.queue == "twoway_crm_customers")
    assert twoway.pattern["source"] == ["syncline.crm", "syncline.oms"]
    assert twoway.pattern["detail"] == {"entity": ["contact"]}


def test_an_oms_that_is_only_a_target_gets_no_drainer() -> None:
    topology = build_topology(config(ORDERS))
    assert not [f for f in topology.functions if f.id.startswith("outbox_drainer")]


def test_the_order_worker_may_put_its_order_events_on_the_bus() -> None:
    topology = build_topology(config(ORDERS))
    assert topology.function("sync_oms_order").publishes_notices  # OrderReceived, OrderStatusChanged


def test_the_shipment_worker_may_put_shipment_created_on_the_bus() -> None:
    topology = build_topology(config(SHIPMENTS))
    assert topology.function("sync_store_shipment").publishes_notices  # ShipmentCreated


def test_two_way_hubspot_or_oms_serves_contacts_only() -> None:
    with pytest.raises(ConfigError, match="two-way hubspot serves contact, not deal"):
        build_topology(config(CONTACTS | {"entity": "deal"}))


# -- HubSpot echoes at the ingress ------------------------------------------------------------------------------


def test_hubspot_events_of_our_own_app_are_dropped_at_the_ingress() -> None:
    url = "https://hooks.example.com/webhooks/crm-hooks"
    hooks = {
        "scheme": "hubspot",
        "secret": "s/hooks",
        "system": "crm",
        "topics": {"contact.propertyChange": {"entity": "contact", "key": ["objectId"]}},
    }
    settings = config(CONTACTS, webhooks={"crm-hooks": hooks})
    published: list[ChangeNotice] = []

    class Deliveries:
        def claim(self, *args: Any, **kwargs: Any) -> Any:
            from syncline.ports import DeliveryClaim

            return DeliveryClaim.CLAIMED

        def complete(self, *args: Any, **kwargs: Any) -> None: ...

        def release(self, *args: Any, **kwargs: Any) -> None: ...

    class Bus:
        def publish(self, notices: Any) -> None:
            published.extend(notices)

    sources: dict[str, WebhookSource] = dict(settings.webhooks)
    ingress = Ingress(
        sources,
        lambda s: ["hook-secret"],
        Deliveries(),
        Bus(),
        echoes=echo_filters(IngressConfig.model_validate(settings.model_dump())),
    )
    base = {"subscriptionType": "contact.propertyChange", "occurredAt": 1795443326000}
    events = [
        base | {"eventId": 1, "objectId": 501, "changeSource": "INTEGRATION", "sourceId": "42"},  # ours
        base | {"eventId": 2, "objectId": 502, "changeSource": "CRM_UI", "sourceId": "userId:7"},  # a person's
        base | {"eventId": 3, "objectId": 503, "changeSource": "INTEGRATION", "sourceId": "99"},  # another app's
    ]
    body = json.dumps(events).encode()
    headers = {"Content-Type": "application/json"} | sign("hubspot", "hook-secret", body, timestamp=1795443326, url=url)
    ingress.clock = lambda: 1795443326.0
    ingress.receive(WebhookRequest(source="crm-hooks", headers=headers, body=body, url=url))
    assert [n.key for n in published] == ["502", "503"]
