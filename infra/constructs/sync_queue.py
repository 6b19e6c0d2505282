"""A work queue feeding one sync worker, with its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from syncline.topology import QueueSpec


class SyncQueue(Construct):
    """Queue + DLQ as the topology describes them: encrypted, TLS-only, redriving after ``max_receive_count``.

    ``visibility_timeout_seconds`` comes from ``Topology.visibility_timeout`` (6x the consumer's timeout),
    so a slow batch is not handed to a second worker while the first still runs.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, spec: QueueSpec, visibility_timeout_seconds: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=spec.dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(spec.dlq_retention_days),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=spec.name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(visibility_timeout_seconds),
            retention_period=Duration.days(spec.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=spec.max_receive_count, queue=self.dead_letter_queue
            ),
        )

    def feed(self, consumer: lambda_.IFunction) -> None:
        """Attach the consumer with partial-batch responses: one bad message never retries its batch-mates."""
        consumer.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=self.spec.batch_size,
                max_batching_window=(
                    Duration.seconds(self.spec.max_batching_window_seconds)
                    if self.spec.max_batching_window_seconds
                    else None
                ),
                report_batch_item_failures=True,
            )
        )
