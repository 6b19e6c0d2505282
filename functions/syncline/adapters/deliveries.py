"""Webhook delivery records ``DLV#{source}#{delivery id}`` in the single table: the dedupe behind the ingress.

A delivery is claimed (state ``pending`` with a short lease) before its notices are published and
completed (state ``published``) after, so:

- a retry of a published delivery finds ``published`` and is acknowledged as a duplicate;
- a retry after a failed publish finds nothing (the claim was released) and publishes;
- a retry after a crash between claim and publish finds an expired lease and publishes;
- a concurrent copy finds a live lease and is told to retry, rather than acknowledged and lost.

Records carry ``expires_at`` (TTL) 48 h out. TTL deletion lags in AWS and does not happen in moto,
so the claim's condition treats an expired record as absent.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure
from syncline.ports import DeliveryClaim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DELIVERY_TTL_SECONDS = 48 * 3600
LEASE_SECONDS = 60  # longer than the webhook function's timeout: a live claim is never taken over
MAX_ID_LENGTH = 200  # longer ids (sender-chosen) are stored as their hash, keeping keys small

PENDING = "pending"
PUBLISHED = "published"


def delivery_pk(source: str, delivery_id: str) -> str:
    if len(delivery_id) > MAX_ID_LENGTH:
        delivery_id = "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()
    return f"DLV#{source}#{delivery_id}"


class DynamoDeliveryStore:
    """``DeliveryStore`` over DynamoDB conditional writes."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        ttl_seconds: int = DELIVERY_TTL_SECONDS,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self._client, self._table = client, table
        self._ttl, self._lease = ttl_seconds, lease_seconds

    def claim(self, source: str, delivery_id: str, token: str, *, now: float) -> DeliveryClaim:
        moment = int(now)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": delivery_pk(source, delivery_id)},
                    "state": {"S": PENDING},
                    "token": {"S": token},
                    "lease_until": {"N": str(moment + self._lease)},
                    "received_at": {"N": str(moment)},
                    "expires_at": {"N": str(moment + self._ttl)},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at <= :now OR (#state = :pending AND lease_until <= :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":now": {"N": str(moment)}, ":pending": {"S": PENDING}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            held: dict[str, Any] = exc.response.get("Item", {})  # type: ignore[assignment]
            state = held.get("state", {}).get("S")
            return DeliveryClaim.IN_PROGRESS if state == PENDING else DeliveryClaim.DUPLICATE
        return DeliveryClaim.CLAIMED

    def complete(self, source: str, delivery_id: str, token: str, *, now: float) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": delivery_pk(source, delivery_id)}},
                UpdateExpression="SET #state = :published, published_at = :now REMOVE lease_until",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#state": "state", "#token": "token"},
                ExpressionAttributeValues={
                    ":published": {"S": PUBLISHED},
                    ":now": {"N": str(int(now))},
                    ":token": {"S": token},
                },
            )
        except ClientError as exc:
            # Our lease lapsed and another request took the delivery over; it completes it.
            if not is_condition_failure(exc):
                raise

    def release(self, source: str, delivery_id: str, token: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": delivery_pk(source, delivery_id)}},
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
