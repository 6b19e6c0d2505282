"""Publishing ChangeNotices to the EventBridge bus, batched: many notices per event, 10 events per call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any

from syncline.models import NOTICE_DETAIL_TYPE, NOTICE_SOURCE_PREFIX, ChangeNotice, NoticeBatch

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

    from syncline.canonical.events import CanonicalEvent

PUT_EVENTS_LIMIT = 10
MAX_EVENT_BYTES = 240_000  # EventBridge's limit is 256 KB per entry; keep headroom for the envelope


class EventBridgePublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str, notices_per_event: int = 100) -> None:
        self._client, self._bus, self._per_event = client, bus_name, notices_per_event

    def publish(self, notices: Sequence[ChangeNotice]) -> None:
        entries = list(self._entries(notices))
        for start in range(0, len(entries), PUT_EVENTS_LIMIT):
            self._put(entries[start : start + PUT_EVENTS_LIMIT])

    def _entries(self, notices: Sequence[ChangeNotice]) -> Any:
        ordered = sorted(notices, key=lambda n: (n.source_system, n.entity))
        for (source, entity), group in groupby(ordered, key=lambda n: (n.source_system, n.entity)):
            items = list(group)
            for start in range(0, len(items), self._per_event):
                yield from self._sized(source, entity, items[start : start + self._per_event])

    def _sized(self, source: str, entity: str, notices: list[ChangeNotice]) -> Any:
        detail = NoticeBatch(source_system=source, entity=entity, notices=notices).model_dump_json()
        if len(detail) > MAX_EVENT_BYTES and len(notices) > 1:
            half = len(notices) // 2
            yield from self._sized(source, entity, notices[:half])
            yield from self._sized(source, entity, notices[half:])
            return
        yield {
            "EventBusName": self._bus,
            "Source": f"{NOTICE_SOURCE_PREFIX}{source}",
            "DetailType": NOTICE_DETAIL_TYPE,
            "Detail": detail,
            **({"TraceHeader": notices[0].trace_id} if notices[0].trace_id else {}),
        }

    def publish_event(self, event: CanonicalEvent[Any]) -> None:
        """One canonical event (e.g. StockLevelCrossed) on the bus: source ``syncline.<system>``, detail-type
        the event type, detail the versioned JSON (schemas/v1); rules route it to alerting or consumers."""
        self._put(
            [
                {
                    "EventBusName": self._bus,
                    "Source": f"{NOTICE_SOURCE_PREFIX}{event.source_system}",
                    "DetailType": event.event_type,
                    "Detail": event.model_dump_json(),
                    **({"TraceHeader": event.trace_id} if event.trace_id else {}),
                }
            ]
        )

    def _put(self, entries: list[PutEventsRequestEntryTypeDef]) -> None:
        for attempt in range(5):
            response = self._client.put_events(Entries=entries)
            if not response.get("FailedEntryCount"):
                return
            entries = [e for e, r in zip(entries, response["Entries"], strict=True) if r.get("ErrorCode")]
            time.sleep(min(0.1 * 2**attempt, 2.0))
        raise RuntimeError(f"EventBridge rejected {len(entries)} event(s) after retries")
