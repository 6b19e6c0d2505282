"""The event bus carrying ChangeNotices, its replay archive, and the rules routing notices to queues."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.constructs import pascal
from infra.constructs.sync_queue import SyncQueue
from syncline.models import NOTICE_SOURCE_PREFIX
from syncline.topology import RuleSpec

# Long enough to replay notices after an outage that outlived the DLQs' 14 days.
ARCHIVE_RETENTION = Duration.days(30)


class NoticeBus(Construct):
    """A custom event bus whose Syncline notices are archived, so any window of them can be replayed."""

    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)
        self.archive = self.bus.archive(
            "Archive",
            archive_name=f"{bus_name}-notices",
            description="Every ChangeNotice published by Syncline, for replay",
            event_pattern=events.EventPattern(source=events.Match.prefix(NOTICE_SOURCE_PREFIX)),
            retention=ARCHIVE_RETENTION,
        )
        self.partner_buses: dict[str, events.EventBus] = {}

    def add_partner_bus(self, event_source: str) -> events.EventBus:
        """The bus of a SaaS partner event source (Salesforce Event Relay): named after the source (CDK names it
        so), which associates the pending partner event source with it on deploy."""
        bus = events.EventBus(self, f"PartnerBus{len(self.partner_buses) + 1}", event_source_name=event_source)
        self.partner_buses[event_source] = bus
        return bus

    def route(self, spec: RuleSpec, target: SyncQueue) -> events.Rule:
        """A rule delivering the notices matching ``spec.pattern`` to the target's queue.

        Events EventBridge fails to deliver go to the same queue's DLQ: they have the same body as a
        delivered one, so the ordinary redrive puts them back in line.
        """
        # RuleSpec.pattern uses EventBridge's JSON keys ("detail-type"); EventPattern wants snake_case.
        pattern = events.EventPattern(**{key.replace("-", "_"): value for key, value in spec.pattern.items()})
        return events.Rule(
            self,
            f"Route{pascal(spec.id)}",
            rule_name=spec.name,
            event_bus=self.partner_buses[spec.bus] if spec.bus else self.bus,
            event_pattern=pattern,
            targets=[targets.SqsQueue(target.queue, dead_letter_queue=target.dead_letter_queue)],
        )
