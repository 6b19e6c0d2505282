"""The Syncline stack: a thin composition of one construct per capability, driven by the topology."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, CfnOutput, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import FUNCTIONS_DIR
from infra.bundling import IGNORED, MARKER
from infra.constructs import pascal
from infra.constructs.monitoring import Monitoring
from infra.constructs.notice_bus import NoticeBus
from infra.constructs.schedules import Schedules
from infra.constructs.state_table import StateTable
from infra.constructs.sync_queue import SyncQueue
from infra.constructs.webhook_api import WebhookApi, import_webhook_secrets
from infra.function_builder import FunctionBuilder, import_alert_secrets, import_secrets
from syncline.config import SynclineConfig
from syncline.topology import Topology


class SynclineStack(Stack):
    """State table, notice bus, one queue + worker per target, the ERP poller and its schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: SynclineConfig,
        topology: Topology,
        code_dir: Path,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description="Syncline: keeps the ERP, stores and databases in agreement",
        )
        self.state = StateTable(self, "State", spec=topology.table)
        self.notices = NoticeBus(self, "Notices", bus_name=topology.bus_name)
        self.queues = {
            spec.id: SyncQueue(
                self,
                f"{pascal(spec.id)}Queue",
                spec=spec,
                visibility_timeout_seconds=topology.visibility_timeout(spec),
            )
            for spec in topology.queues
        }
        for event_source in topology.partner_buses:
            self.notices.add_partner_bus(event_source)
        for rule in topology.rules:
            self.notices.route(rule, self.queues[rule.queue])

        # Conflicts that waited too long are published here (subscribe e-mail, Chatbot/Slack or PagerDuty).
        # A key of its own, so the sweeper's grant names exactly that key (an alias would need key/*).
        self.escalation_topic = (
            sns.Topic(
                self,
                "EscalationTopic",
                topic_name=topology.escalation_topic.name,
                display_name=topology.escalation_topic.description[:100],
                master_key=kms.Key(
                    self,
                    "EscalationTopicKey",
                    enable_key_rotation=True,
                    description=f"{topology.app}: encrypts the conflict escalation topic",
                ),
                enforce_ssl=True,
            )
            if topology.escalation_topic
            else None
        )
        if self.escalation_topic is not None:
            CfnOutput(self, "EscalationTopicArn", value=self.escalation_topic.topic_arn)

        builder = FunctionBuilder(
            self,
            code=lambda_.Code.from_asset(str(code_dir), exclude=[*IGNORED, MARKER]),
            table=self.state.table,
            bus=self.notices.bus,
            dead_letter_queues={queue_id: queue.dead_letter_queue for queue_id, queue in self.queues.items()},
            queues={queue_id: queue.queue for queue_id, queue in self.queues.items()},
            secrets={
                **import_secrets(self, config.systems),
                **import_webhook_secrets(self, config.webhooks),
                **import_alert_secrets(self, config.alert_channels),
            },
            network=config.network,
            table_indexed=bool(topology.table.indexes),
            escalation_topic=self.escalation_topic,
        )
        self.functions = {spec.id: builder.build(spec) for spec in topology.functions}
        for queue in self.queues.values():
            queue.feed(self.functions[queue.spec.consumer])
        self.schedules = Schedules(self, "Schedules", specs=topology.schedules, functions=self.functions)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            app=topology.app,
            queues=self.queues,
            functions=self.functions,
            pairs=[pair.name for pair in config.pairs],
            monitoring=config.monitoring,
            queue_pairs={spec.id: spec.pairs for spec in topology.queues},
            two_way_pairs=[pair.name for pair in config.pairs if pair.direction == "two_way"],
            webhooks=bool(topology.routes),
        )
        self.webhook_api = (
            WebhookApi(
                self,
                "WebhookApi",
                name=f"{topology.app}-webhooks",
                routes=topology.routes,
                functions=self.functions,
                web_acl_arn=config.deploy.web_acl_arn,
            )
            if topology.routes
            else None
        )
        if self.webhook_api is not None:
            CfnOutput(self, "WebhookUrl", value=f"{self.webhook_api.url}webhooks/{{source}}")

        if code_dir.resolve() == FUNCTIONS_DIR.resolve():
            Annotations.of(self).add_warning_v2(
                "syncline:UnbundledCode",
                "The Lambda code asset is functions/ without its dependencies (no current build/lambda): "
                "fine to synthesise and test, broken if deployed. Run `make bundle` first.",
            )
