"""The shipment worker's sync against the Shopify sandbox over real HTTP: one ShipmentCreated (carrier and tracking
number) per fulfilment it creates; none for a duplicate notice, a redelivery, a replay or an order already
fulfilled; published just before the fulfilment is created, so a failure between the two, or an answer lost after
the store wrote it, never leaves a fulfilment without its event, and a retry re-publishes the same id."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncline.canonical.entities import Shipment, ShipmentLine
from syncline.canonical.events import CanonicalEvent, ShipmentCreated
from syncline.connectors.http import RetryPolicy
from syncline.connectors.shopify import ShopifyAdmin, ShopifyFulfillments
from syncline.local.sandboxes.shopify import ShopifySandbox
from syncline.models import ChangeNotice, NoticeBatch
from syncline.shipments import shipment_sync
from tests.fakes import ListDeadLetters

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PAIR = "oms-shipments"


@pytest.fixture
def store() -> Iterator[ShopifySandbox]:
    sandbox = ShopifySandbox().start()
    try:
        sandbox.add_location("Warehouse")
        sandbox.add_product("Trail shoe", [{"sku": "SKU-1", "price": "10.00"}, {"sku": "SKU-2", "price": "5.00"}])
        yield sandbox
    finally:
        sandbox.stop()


def _admin(sandbox: ShopifySandbox) -> ShopifyAdmin:
    return ShopifyAdmin(
        sandbox.shop,
        access_token=lambda: sandbox.access_token,
        base_url=sandbox.url,
        retry=RetryPolicy(sleep=lambda _: None),
        sleep=lambda _: None,
    )


def _order(sandbox: ShopifySandbox) -> str:
    variant = {data["sku"]: gid for gid, data in sandbox.variants.items()}
    return sandbox.add_order([(variant["SKU-1"], 2), (variant["SKU-2"], 1)])


def _shipment(shipment_id: str, order_id: str, lines: list[tuple[str, int]], tracking: str) -> Shipment:
    return Shipment(
        shipment_id=shipment_id,
        order_id=order_id,
        carrier="UPS",
        tracking_number=tracking,
        lines=[ShipmentLine(sku=sku, quantity=Decimal(quantity)) for sku, quantity in lines],
        shipped_at=T0,
        updated_at=T0,
    )


def _message(message_id: str, *shipment_ids: str) -> list[tuple[str, str]]:
    notices = [ChangeNotice(source_system="oms", entity="shipment", key=key, observed_at=T0) for key in shipment_ids]
    detail = NoticeBatch(source_system="oms", entity="shipment", notices=notices).model_dump(mode="json")
    return [(message_id, json.dumps({"detail": detail}))]


def _worker(
    target: Any, shipments: dict[str, Shipment], publish: Callable[[CanonicalEvent[Any]], object]
) -> Callable[[list[tuple[str, str]]], Any]:
    return shipment_sync(PAIR, shipments.get, target, ListDeadLetters(), source_system="oms", publish=publish)


class AnswerLost:
    """The store applies the next fulfilmentCreate, then the worker dies before it hears back (a timeout, a
    killed Lambda): the crash between the store's write and anything after it."""

    def __init__(self, admin: ShopifyAdmin) -> None:
        self.admin, self.armed = admin, True

    def graphql(self, name: str, query: str, variables: dict[str, Any]) -> Any:
        answer = self.admin.graphql(name, query, variables)
        if name == "FulfillmentCreate" and self.armed:
            self.armed = False
            raise TimeoutError("the worker died after the store wrote the fulfilment")
        return answer


def test_each_new_fulfilment_publishes_one_shipment_created_and_nothing_else_does(store: ShopifySandbox) -> None:
    order_id = _order(store)
    shipments = {"SH-1": _shipment("SH-1", order_id, [("SKU-1", 2)], "1Z-FIRST")}
    published: list[CanonicalEvent[Any]] = []
    sync = _worker(ShopifyFulfillments(_admin(store)), shipments, published.append)

    # A first parcel: fulfilled in the store, one event with the shipment's carrier and tracking.
    assert sync(_message("m-1", "SH-1")).written == ["SH-1"]
    [created] = published
    assert isinstance(created, ShipmentCreated)
    assert (created.event_id, created.key, created.source_system) == (f"ShipmentCreated:{PAIR}:SH-1", "SH-1", "oms")
    assert (created.data.carrier, created.data.tracking_number) == ("UPS", "1Z-FIRST")
    assert created.data == shipments["SH-1"]

    # A duplicate notice, a redelivery of the same message, a replay: the fulfilment exists, nothing new.
    duplicate = sync(_message("m-2", "SH-1"))
    redelivered = sync(_message("m-1", "SH-1"))
    assert (
        duplicate.skipped
        == redelivered.skipped
        == {"SH-1": "shipment already recorded (its tracking number is on a fulfilment)"}
    )
    assert len(published) == 1
    assert store.applied["fulfillmentCreate"] == 1

    # The rest ships: a second fulfilment, a second event; then a parcel for an order already fulfilled: none.
    shipments["SH-2"] = _shipment("SH-2", order_id, [("SKU-2", 1)], "1Z-SECOND")
    shipments["SH-3"] = _shipment("SH-3", order_id, [("SKU-2", 1)], "1Z-THIRD")
    outcome = sync(_message("m-3", "SH-2", "SH-3"))
    assert (outcome.written, outcome.skipped) == (["SH-2"], {"SH-3": "order already fulfilled"})
    assert [event.event_id for event in published] == [f"ShipmentCreated:{PAIR}:SH-1", f"ShipmentCreated:{PAIR}:SH-2"]
    assert store.applied["fulfillmentCreate"] == 2


def test_a_failure_between_publish_and_fulfil_publishes_the_same_id_again_and_fulfils_once(
    store: ShopifySandbox,
) -> None:
    order_id = _order(store)
    shipments = {"SH-1": _shipment("SH-1", order_id, [("SKU-1", 2)], "1Z-FIRST")}
    published: list[CanonicalEvent[Any]] = []

    def dies_after_put(event: CanonicalEvent[Any]) -> None:
        published.append(event)
        raise RuntimeError("the worker died after putting the event on the bus")

    failed = _worker(ShopifyFulfillments(_admin(store)), shipments, dies_after_put)(_message("m-1", "SH-1"))
    assert failed.failed_messages == {"m-1"}  # SQS delivers it again
    assert store.applied["fulfillmentCreate"] == 0  # nothing created after a failed publish

    retried = _worker(ShopifyFulfillments(_admin(store)), shipments, published.append)(_message("m-1", "SH-1"))
    assert retried.written == ["SH-1"]
    assert [event.event_id for event in published] == [f"ShipmentCreated:{PAIR}:SH-1"] * 2  # the notifier sends it once
    assert published[0] == published[1]
    assert store.applied["fulfillmentCreate"] == 1


def test_a_crash_after_the_store_wrote_the_fulfilment_leaves_its_event_published_once(store: ShopifySandbox) -> None:
    order_id = _order(store)
    shipments = {"SH-1": _shipment("SH-1", order_id, [("SKU-1", 2)], "1Z-FIRST")}
    published: list[CanonicalEvent[Any]] = []

    crashed = _worker(ShopifyFulfillments(AnswerLost(_admin(store))), shipments, published.append)  # type: ignore[arg-type]
    assert crashed(_message("m-1", "SH-1")).failed_messages == {"m-1"}
    assert store.applied["fulfillmentCreate"] == 1
    assert [event.event_id for event in published] == [f"ShipmentCreated:{PAIR}:SH-1"]  # before the store's write

    # The retry finds the fulfilment (its tracking number is on it): nothing to create, nothing more to announce.
    retried = _worker(ShopifyFulfillments(_admin(store)), shipments, published.append)(_message("m-1", "SH-1"))
    assert retried.skipped == {"SH-1": "shipment already recorded (its tracking number is on a fulfilment)"}
    assert len(published) == 1
    assert store.applied["fulfillmentCreate"] == 1


def test_without_a_bus_the_worker_fulfils_as_before(store: ShopifySandbox) -> None:
    order_id = _order(store)
    shipments = {"SH-1": _shipment("SH-1", order_id, [("SKU-1", 2)], "1Z-FIRST")}
    sync = shipment_sync(
        PAIR, shipments.get, ShopifyFulfillments(_admin(store)), ListDeadLetters(), source_system="oms"
    )
    assert sync(_message("m-1", "SH-1")).written == ["SH-1"]
    assert store.applied["fulfillmentCreate"] == 1
