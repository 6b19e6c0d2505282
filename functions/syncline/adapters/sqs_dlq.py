"""A dead-letter queue and its source queue over SQS, for ``syncline.ops.dlq``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from syncline.ops.dlq import MoveTask, MoveTaskUnsupported, RawMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MOVE_TASK_MAX_RATE = 500  # SQS's limit for MaxNumberOfMessagesPerSecond


class SqsDeadLetterQueue:
    def __init__(
        self,
        client: SQSClient,
        *,
        queue_id: str,
        dlq_url: str,
        dlq_arn: str,
        source_url: str,
        source_arn: str,
        wait_seconds: int = 1,
        move_client: SQSClient | None = None,
    ) -> None:
        self.queue_id = queue_id
        self._client = client
        # Without retries: an unsupported or refused move task falls back at once to moving one by one.
        self._move_client = move_client or client
        self._dlq_url, self._dlq_arn = dlq_url, dlq_arn
        self._source_url, self._source_arn = source_url, source_arn
        # Long polling asks every SQS host, so a short receive does not miss messages (AWS); 0 for moto.
        self._wait = wait_seconds

    def receive(self, max_messages: int, hold_seconds: int) -> list[RawMessage]:
        response = self._client.receive_message(
            QueueUrl=self._dlq_url,
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            VisibilityTimeout=hold_seconds,
            WaitTimeSeconds=self._wait,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        )
        return [_raw(message) for message in response.get("Messages", [])]

    def release(self, messages: Sequence[RawMessage]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self._client.change_message_visibility_batch(
                QueueUrl=self._dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": raw.handle, "VisibilityTimeout": 0} for i, raw in enumerate(chunk)
                ],
            )

    def send_back(self, message: RawMessage) -> None:
        attributes: Any = {
            name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
        }
        self._client.send_message(QueueUrl=self._source_url, MessageBody=message.body, MessageAttributes=attributes)

    def delete(self, message: RawMessage) -> None:
        self._client.delete_message(QueueUrl=self._dlq_url, ReceiptHandle=message.handle)

    def start_move_task(self, max_per_second: int | None) -> MoveTask:
        request: dict[str, Any] = {"SourceArn": self._dlq_arn, "DestinationArn": self._source_arn}
        if max_per_second:
            request["MaxNumberOfMessagesPerSecond"] = min(max_per_second, MOVE_TASK_MAX_RATE)
        depth = self.depth()
        try:
            response = self._move_client.start_message_move_task(**request)
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            raise MoveTaskUnsupported(f"StartMessageMoveTask: {code}") from None
        return MoveTask(response["TaskHandle"], depth)

    def depth(self) -> int:
        attributes = self._client.get_queue_attributes(
            QueueUrl=self._dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def purge(self) -> None:
        self._client.purge_queue(QueueUrl=self._dlq_url)


def _raw(message: Any) -> RawMessage:
    system = message.get("Attributes", {})
    sent_ms = int(system.get("SentTimestamp", "0"))
    return RawMessage(
        id=message["MessageId"],
        body=message["Body"],
        attributes={
            name: value["StringValue"]
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        },
        sent_at=datetime.fromtimestamp(sent_ms / 1000, UTC),
        receive_count=int(system.get("ApproximateReceiveCount", "0")),
        handle=message["ReceiptHandle"],
    )
