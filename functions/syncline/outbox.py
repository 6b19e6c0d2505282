"""The OMS as a change source: its outbox drained onto the bus as ChangeNotices, Syncline's own writes dropped.

The OMS's triggers name records by their table's entity (``order``, ``shipment``, ``customer``); pairs speak of
canonical entities, so a customer is published as a ``contact`` (``OUTBOX_ENTITIES``). Publishing comes before
acknowledging (``OmsOutbox.drain``): a drainer that dies re-publishes at worst, and the workers treat notices as
hints, so a duplicate costs a read and no write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from syncline.models import ChangeNotice
from syncline.ports import NoticePublisher

# OMS entity -> the canonical entity its notices carry (the rest keep their name).
OUTBOX_ENTITIES: Final[Mapping[str, str]] = {"customer": "contact"}
BATCH_SIZE: Final = 100
MAX_BATCHES: Final = 100  # per run: 10,000 rows, well inside the function's timeout; the next run takes the rest


T = TypeVar("T")
Publish = Callable[[list[ChangeNotice]], None]


def canonical_notice(notice: ChangeNotice) -> ChangeNotice:
    """The notice as pairs read it: the OMS's entity name translated to the canonical one."""
    entity = OUTBOX_ENTITIES.get(notice.entity, notice.entity)
    return notice if entity == notice.entity else notice.model_copy(update={"entity": entity})


def drain_outbox(drain: Callable[[Publish], T], publisher: NoticePublisher) -> T:
    """Run ``drain`` (e.g. ``OmsOutbox.drain`` with its limits: it claims, calls ``publish`` with the notices that
    are not echoes, then acknowledges) with a ``publish`` that puts canonical notices on the bus."""

    def publish(notices: list[ChangeNotice]) -> None:
        publisher.publish([canonical_notice(notice) for notice in notices])

    return drain(publish)
