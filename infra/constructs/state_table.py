"""The single DynamoDB table holding Syncline's state (deliveries, state cache, locks, checkpoints...)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from syncline.topology import TableSpec


class StateTable(Construct):
    """On-demand table keyed by a string ``pk``, with TTL, point-in-time recovery and AWS-managed encryption.

    Its global secondary indexes are the ``TableSpec``'s (string keys, every attribute projected), as
    the local stack creates them.

    The table is retained and deletion-protected: it holds checkpoints and the state cache, which
    cannot be rebuilt without a full resync of every pair.
    """

    def __init__(self, scope: Construct, construct_id: str, *, spec: TableSpec) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=spec.name,
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )
