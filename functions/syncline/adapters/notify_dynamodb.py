"""Notification dedupe records ``NT#{rule}#{event id}#{channel}`` in the single table (``notify.DedupeStore``).

The same claim / complete / release cycle as webhook deliveries: an alert is claimed (``pending`` with a
short lease) before it is sent and marked ``sent`` after, so a redelivered event finds ``sent`` and does
not alert again, a failed send releases the claim for the retry, and a worker that died mid-send leaves a
lease that expires. Records carry ``expires_at`` (TTL); TTL deletion lags in AWS and does not happen in
moto, so the claim treats an expired record as absent.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LEASE_SECONDS = 60  # longer than a channel's retries take: a live claim is never taken over
MAX_KEY_LENGTH = 400  # event ids are sender-chosen: longer keys are stored as their hash
PENDING, SENT = "pending", "sent"


def notification_pk(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return f"NT#{key}"


class DynamoNotificationDedupe:
    def __init__(self, client: DynamoDBClient, table: str, *, lease_seconds: int = LEASE_SECONDS) -> None:
        self._client, self._table, self._lease = client, table, lease_seconds

    def claim(self, key: str, *, now: float, ttl_seconds: int) -> str | None:
        moment, token = int(now), secrets.token_hex(8)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": notification_pk(key)},
                    "state": {"S": PENDING},
                    "token": {"S": token},
                    "lease_until": {"N": str(moment + self._lease)},
                    "claimed_at": {"N": str(moment)},
                    "expires_at": {"N": str(moment + ttl_seconds)},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at <= :now OR (#state = :pending AND lease_until <= :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":now": {"N": str(moment)}, ":pending": {"S": PENDING}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return token

    def complete(self, key: str, token: str, *, now: float) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": notification_pk(key)}},
                UpdateExpression="SET #state = :sent, sent_at = :now REMOVE lease_until",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#state": "state", "#token": "token"},
                ExpressionAttributeValues={
                    ":sent": {"S": SENT},
                    ":now": {"N": str(int(now))},
                    ":token": {"S": token},
                },
            )
        except ClientError as exc:
            # Our lease lapsed and another worker took the alert over: it records the outcome.
            if not is_condition_failure(exc):
                raise

    def release(self, key: str, token: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": notification_pk(key)}},
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
