"""Salesforce Change Data Capture, as Event Relay delivers it to EventBridge, into Syncline's ChangeNotices.

Event Relay puts each change event of a relayed channel on the org's partner event bus: ``source`` the partner
event source (``aws.partner/salesforce.com/<org id>/<channel id>``), ``detail-type`` the change event's name
(``ContactChangeEvent``) and ``detail`` holding the event's ``payload`` (its ``ChangeEventHeader`` and the changed
fields), with the ``schemaId`` and the event's ``id``. A rule on that bus sends them to a queue; the relay function
reads each one with ``syncline.connectors.salesforce.parse_change_event`` and publishes one notice per record id on
the notice bus. A change Syncline made itself (``changeOrigin`` naming our ``client``) is an echo and is dropped;
a message that is no change event is parked in the DLQ verbatim, with the reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncline.connectors.salesforce import ENTITIES, parse_change_event
from syncline.models import ChangeNotice, UnparsableMessage
from syncline.ports import DeadLetterSink, NoticePublisher


def event_relay_entry(message: Mapping[str, Any], event_source: str) -> dict[str, Any]:
    """The EventBridge entry Event Relay makes of a CDC message (CometD-shaped, as the sandbox records it)."""
    data = message.get("data") or {}
    payload = data.get("payload") or {}
    entity = str(payload.get("ChangeEventHeader", {}).get("entityName", ""))
    detail = {"payload": payload, "schemaId": data.get("schema"), "id": str(uuid.uuid4())}
    return {"Source": event_source, "DetailType": f"{entity}ChangeEvent", "Detail": json.dumps(detail)}


@dataclass
class RelayResult:
    events: int = 0
    notices: list[ChangeNotice] = field(default_factory=list)
    echoes: int = 0
    ignored: int = 0  # change events of objects no pair carries
    needs_reconcile: list[str] = field(default_factory=list)  # objects with wildcard record ids (a reconcile tells)
    unparsable: list[UnparsableMessage] = field(default_factory=list)


def relay_change_events(
    bodies: Sequence[str],
    *,
    system: str,
    client: str,
    publisher: NoticePublisher,
    dead_letters: DeadLetterSink,
    entities: Mapping[str, str] = ENTITIES,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RelayResult:
    """Publish the notices of a batch of relayed change events (queue message bodies: EventBridge events); raise
    when publishing fails, so the batch comes back."""
    result = RelayResult()
    now = clock()
    for body in bodies:
        try:
            envelope = json.loads(body)
            detail = envelope.get("detail") if isinstance(envelope, dict) else None
            if not isinstance(detail, dict):
                raise ValueError("not an EventBridge event with a detail")
            event = parse_change_event(detail, client=client)
        except (ValueError, RecursionError) as exc:
            result.unparsable.append(UnparsableMessage(body=body, reason=str(exc)[:500], pair=system, failed_at=now))
            continue
        result.events += 1
        if event.entity_name not in entities:
            result.ignored += 1
        elif event.echo:
            result.echoes += 1
        else:
            if event.wildcard:
                result.needs_reconcile.append(event.entity_name)
            result.notices.extend(event.notices(now, entities, source_system=system))
    if result.notices:
        publisher.publish(result.notices)
    if result.unparsable:
        dead_letters.send(result.unparsable)
    return result
