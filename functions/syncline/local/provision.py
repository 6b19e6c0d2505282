"""Create the topology's resources in the moto server, the way the CDK app creates them in AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from syncline.models import NOTICE_SOURCE_PREFIX
from syncline.settings import ENV_BUS, ENV_DLQ_URL, ENV_ESCALATION_TOPIC, ENV_TABLE
from syncline.topology import FunctionSpec, QueueSpec, Topology, notice_archive_name


def local_bus_name(bus: str) -> str:
    """A partner event bus as the moto server holds it. moto refuses rules on a bus whose name has a '/' (as every
    partner bus's has: aws.partner/salesforce.com/<org>/<channel>), so locally the slashes become dots; events
    still carry the partner source, and the rules match it exactly as deployed."""
    return bus.replace("/", ".")


@dataclass
class QueueResources:
    spec: QueueSpec
    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


@dataclass
class Resources:
    table: str
    bus: str
    queues: dict[str, QueueResources] = field(default_factory=dict)
    escalation_topic_arn: str | None = None

    def environment(self, function: FunctionSpec) -> dict[str, str]:
        """The function's environment: names and references only, as the CDK app sets them."""
        env = {ENV_TABLE: self.table, **function.environment}
        if function.publishes_notices:
            env[ENV_BUS] = self.bus
        if function.dead_letters_to:
            env[ENV_DLQ_URL] = self.queues[function.dead_letters_to].dlq_url
        if function.escalates and self.escalation_topic_arn:
            env[ENV_ESCALATION_TOPIC] = self.escalation_topic_arn
        return env


def provision(topology: Topology, secrets: dict[str, dict[str, Any]], region: str) -> Resources:
    """Table, bus, queues with DLQs and redrive policies, routing rules and connection secrets."""
    session = boto3.session.Session(region_name=region)
    dynamodb, events, sqs = session.client("dynamodb"), session.client("events"), session.client("sqs")
    secretsmanager = session.client("secretsmanager")

    table = topology.table
    key_attributes = dict.fromkeys(
        [table.partition_key, *(key for index in table.indexes for key in (index.partition_key, index.sort_key))]
    )
    indexes: list[dict[str, Any]] = [
        {
            "IndexName": index.name,
            "KeySchema": [
                {"AttributeName": index.partition_key, "KeyType": "HASH"},
                {"AttributeName": index.sort_key, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for index in table.indexes
    ]
    table_options: dict[str, Any] = {"GlobalSecondaryIndexes": indexes} if indexes else {}  # boto3 refuses []
    dynamodb.create_table(
        TableName=table.name,
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in key_attributes],
        KeySchema=[{"AttributeName": table.partition_key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        **table_options,
    )
    dynamodb.update_time_to_live(
        TableName=topology.table.name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": topology.table.ttl_attribute},
    )
    bus_arn = events.create_event_bus(Name=topology.bus_name)["EventBusArn"]
    # As deployed (infra/constructs/notice_bus.py): every notice is archived, so `syncline replay` works locally.
    events.create_archive(
        ArchiveName=notice_archive_name(topology.bus_name),
        EventSourceArn=bus_arn,
        EventPattern=json.dumps({"source": [{"prefix": NOTICE_SOURCE_PREFIX}]}),
        RetentionDays=30,
    )
    resources = Resources(table=topology.table.name, bus=topology.bus_name)
    for partner_bus in topology.partner_buses:  # in AWS: the partner event source's bus, associated on deploy
        events.create_event_bus(Name=local_bus_name(partner_bus))

    for spec in topology.queues:
        dlq_url = sqs.create_queue(
            QueueName=spec.dlq_name, Attributes={"MessageRetentionPeriod": str(spec.dlq_retention_days * 86400)}
        )["QueueUrl"]
        dlq_arn = _arn(sqs, dlq_url)
        url = sqs.create_queue(
            QueueName=spec.name,
            Attributes={
                "VisibilityTimeout": str(topology.visibility_timeout(spec)),
                "MessageRetentionPeriod": str(spec.retention_days * 86400),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
                ),
            },
        )["QueueUrl"]
        resources.queues[spec.id] = QueueResources(spec, url, _arn(sqs, url), dlq_url, dlq_arn)

    for rule in topology.rules:
        bus = local_bus_name(rule.bus) if rule.bus else topology.bus_name
        events.put_rule(Name=rule.name, EventBusName=bus, EventPattern=json.dumps(rule.pattern))
        events.put_targets(
            Rule=rule.name,
            EventBusName=bus,
            # As deployed: an event EventBridge cannot deliver goes to the queue's DLQ.
            Targets=[
                {
                    "Id": rule.queue,
                    "Arn": resources.queues[rule.queue].arn,
                    "DeadLetterConfig": {"Arn": resources.queues[rule.queue].dlq_arn},
                }
            ],
        )

    if topology.escalation_topic is not None:
        sns = session.client("sns")
        resources.escalation_topic_arn = sns.create_topic(Name=topology.escalation_topic.name)["TopicArn"]

    for name, value in secrets.items():
        secretsmanager.create_secret(Name=name, SecretString=json.dumps(value))
    return resources


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
