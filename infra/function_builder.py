"""The one place a Syncline Lambda function is defined: same defaults for all, grants from the spec only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from aws_cdk import Acknowledgment, CfnElement, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs import pascal
from syncline.config import AlertChannelConfig, NetworkConfig, System
from syncline.settings import ENV_BUS, ENV_DLQ_URL, ENV_ESCALATION_TOPIC, ENV_TABLE
from syncline.topology import FunctionSpec, alert_channel_id

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "syncline",
    "POWERTOOLS_METRICS_NAMESPACE": "Syncline",
    # Matches the function's application log level below; Lambda drops records under that level anyway.
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
# What Lambda needs to manage a VPC function's network interfaces: AWSLambdaVPCAccessExecutionRole
# without its account-wide logs:* actions. The interfaces' ids are unknown in advance and Describe*
# takes no resource, so Lambda's documentation requires these on every resource.
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def import_secrets(scope: Construct, systems: Mapping[str, System]) -> dict[str, secretsmanager.ISecret]:
    """Reference (never create) each system's connection secret, by the name or full ARN in the config."""
    secrets: dict[str, secretsmanager.ISecret] = {}
    for name, system in systems.items():
        construct_id = f"{pascal(name)}Secret"
        secrets[name] = (
            secretsmanager.Secret.from_secret_complete_arn(scope, construct_id, system.secret)
            if system.secret.startswith("arn:")
            else secretsmanager.Secret.from_secret_name_v2(scope, construct_id, system.secret)
        )
    return secrets


def import_alert_secrets(
    scope: Construct, channels: Mapping[str, AlertChannelConfig]
) -> dict[str, secretsmanager.ISecret]:
    """Reference (never create) each Slack / PagerDuty channel's secret, keyed as its FunctionSpec names it."""
    secrets: dict[str, secretsmanager.ISecret] = {}
    for name, channel in channels.items():
        if channel.kind == "ses":
            continue  # addresses are configuration; SES is granted through sends_email_as
        construct_id = f"Alert{pascal(''.join(c if c.isalnum() else '_' for c in name))}Secret"
        secrets[alert_channel_id(name)] = (
            secretsmanager.Secret.from_secret_complete_arn(scope, construct_id, channel.secret)
            if channel.secret.startswith("arn:")
            else secretsmanager.Secret.from_secret_name_v2(scope, construct_id, channel.secret)
        )
    return secrets


class FunctionBuilder:
    """Builds every function the topology declares with one set of defaults.

    python3.12 on ARM64, JSON logs into a log group with retention, X-Ray active tracing, Powertools
    settings, and an execution role of its own holding exactly what the ``FunctionSpec`` declares:
    table read or read-write, PutEvents on the bus, SendMessage to one DLQ, reading the secrets of the
    systems it names. With a ``network``, the functions reading a secret of its systems run in its
    subnets and may manage their network interfaces; the others stay outside any VPC.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        code: lambda_.Code,
        table: dynamodb.ITable,
        bus: events.IEventBus,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        secrets: Mapping[str, secretsmanager.ISecret],
        queues: Mapping[str, sqs.IQueue] | None = None,
        network: NetworkConfig | None = None,
        table_indexed: bool = False,
        escalation_topic: sns.ITopic | None = None,
    ) -> None:
        self._scope = scope
        self._code = code
        self._table = table
        # CDK grants table access together with the table's indexes (``<table ARN>/index/*``).
        self._table_indexed = table_indexed
        self._bus = bus
        self._dead_letter_queues = dead_letter_queues
        self._queues = queues or {}
        self._secrets = secrets
        self._network = network
        self._escalation_topic = escalation_topic

    def build(self, spec: FunctionSpec) -> lambda_.Function:
        """Create the function (with its role and log group) under a construct named after ``spec.id``."""
        scope = Construct(self._scope, pascal(spec.id))
        log_group = logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)
        # A role of our own instead of the default one with AWSLambdaBasicExecutionRole, whose log
        # permissions apply to every log group in the account: this one may write to its own group only.
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of the Syncline {spec.id} function",
        )
        log_group.grant_write(role)
        network = self._network if self._network and not set(self._network.systems).isdisjoint(spec.secrets) else None
        if network:
            # Before the function exists: Lambda checks these when it creates a function in a VPC.
            role.add_to_principal_policy(iam.PolicyStatement(actions=list(VPC_ACCESS_ACTIONS), resources=["*"]))
        function = lambda_.Function(
            scope,
            "Function",
            code=self._code,
            handler=spec.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            description=spec.description,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment=self._environment(spec),
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
        )
        if network:
            # The subnets and groups exist already and are referenced by id: no Vpc.from_lookup (an AWS
            # call at synthesis) and no Vpc import, whose availability zones the config cannot know.
            cfn_function = cast(lambda_.CfnFunction, function.node.default_child)
            cfn_function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
                subnet_ids=network.subnet_ids, security_group_ids=network.security_group_ids
            )
        self._grant(spec, function)
        self._acknowledge(function, role, in_vpc=network is not None, on_indexes=spec.table_access is not None)
        return function

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        # Names and references only: credentials are read from Secrets Manager at run time.
        environment = {
            **POWERTOOLS_ENVIRONMENT,
            # Every function's Settings requires the table name, whatever its access.
            ENV_TABLE: self._table.table_name,
            **spec.environment,
        }
        if spec.publishes_notices:
            environment[ENV_BUS] = self._bus.event_bus_name
        if spec.dead_letters_to:
            environment[ENV_DLQ_URL] = self._dead_letter_queues[spec.dead_letters_to].queue_url
        if spec.escalates and self._escalation_topic is not None:
            environment[ENV_ESCALATION_TOPIC] = self._escalation_topic.topic_arn
        return environment

    def _grant(self, spec: FunctionSpec, function: lambda_.Function) -> None:
        if spec.table_access == "read":
            self._table.grant_read_data(function)
        elif spec.table_access == "readwrite":
            self._table.grant_read_write_data(function)
        if spec.publishes_notices:
            self._bus.grant_put_events_to(function)
        if spec.dead_letters_to:
            self._dead_letter_queues[spec.dead_letters_to].grant_send_messages(function)
        if spec.escalates and self._escalation_topic is not None:
            self._escalation_topic.grant_publish(function)
            Validations.of(function.role or function).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                    reason="Publishing to the KMS-encrypted escalation topic: CDK grants kms:GenerateDataKey* "
                    "(GenerateDataKey and GenerateDataKeyWithoutPlaintext) on that topic's own key only.",
                )
            )
        if spec.inspects_queues:
            # Depths of every queue; DLQs also read without consuming (receive, then release visibility).
            for queue in self._queues.values():
                queue.grant(function, "sqs:GetQueueUrl", "sqs:GetQueueAttributes")
            for queue in self._dead_letter_queues.values():
                queue.grant(
                    function,
                    "sqs:GetQueueUrl",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                    "sqs:ChangeMessageVisibility",
                )
        if spec.sends_email_as:
            # SES authorises a send against the verified identity: the address, or its domain.
            stack = Stack.of(function)
            domain = spec.sends_email_as.rpartition("@")[2]
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["ses:SendEmail"],
                    resources=[
                        stack.format_arn(service="ses", resource="identity", resource_name=name)
                        for name in (spec.sends_email_as, domain)
                    ],
                )
            )
        for system in spec.secrets:
            # grant_read knows the ARN forms: a secret imported by name is matched with the "-??????"
            # suffix Secrets Manager appends. It grants GetSecretValue and DescribeSecret, nothing else.
            self._secrets[system].grant_read(function)

    def _acknowledge(self, function: lambda_.Function, role: iam.Role, *, in_vpc: bool, on_indexes: bool) -> None:
        """cdk-nag findings that are the price of the defaults above, with the reason for each."""
        Validations.of(function.node.default_child or function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to python3.12: the bundled wheels (pydantic-core, pymssql, psycopg) are "
                "built for it; the runtime moves with requirements.txt, deliberately.",
            )
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
                "CDK adds them for active tracing. "
                + (
                    "In a VPC, also the network-interface actions of AWSLambdaVPCAccessExecutionRole, which "
                    "Lambda's documentation requires on every resource. "
                    if in_vpc
                    else ""
                )
                + "Every other statement names its resource.",
            )
        )
        if on_indexes and self._table_indexed:
            table = cast(CfnElement, self._table.node.default_child)
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{Stack.of(table).get_logical_id(table)}.Arn>/index/*]",
                    reason="The state table's own global secondary indexes (the conflict list by status): CDK "
                    "grants table access with <table ARN>/index/*, which covers this table's indexes and no "
                    "other resource.",
                )
            )
