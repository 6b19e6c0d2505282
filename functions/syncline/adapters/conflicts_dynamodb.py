"""The conflict review list in the single table: ``CF#{id}`` items, listed by status through the ``by-status``
index (status, created_at), oldest first. Every change after the first put is conditioned on the revision."""

from __future__ import annotations

import json
from datetime import UTC
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure
from syncline.review import Conflict, Status
from syncline.topology import CONFLICT_STATUS_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoConflictStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def add(self, conflict: Conflict) -> bool:
        try:
            self._client.put_item(
                TableName=self._table, Item=_item(conflict), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, conflict_id: str) -> Conflict | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"CF#{conflict_id}"}}, ConsistentRead=True
        ).get("Item")
        return Conflict.from_dict(json.loads(item["body"]["S"])) if item else None

    def list(self, status: Status, *, limit: int = 100) -> list[Conflict]:
        found: list[Conflict] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": CONFLICT_STATUS_INDEX.name,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": CONFLICT_STATUS_INDEX.partition_key},
            "ExpressionAttributeValues": {":status": {"S": status}},
            "ScanIndexForward": True,  # oldest first
        }
        while len(found) < limit:
            page = self._client.query(**query, Limit=limit - len(found))
            found += [Conflict.from_dict(json.loads(item["body"]["S"])) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def save(self, conflict: Conflict, *, expected_revision: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(conflict),
                ConditionExpression="revision = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_revision)}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True


def _item(conflict: Conflict) -> dict[str, Any]:
    return {
        "pk": {"S": f"CF#{conflict.id}"},
        CONFLICT_STATUS_INDEX.partition_key: {"S": conflict.status},
        # ISO 8601 in UTC sorts as time: the index lists oldest first.
        CONFLICT_STATUS_INDEX.sort_key: {"S": conflict.created_at.astimezone(UTC).isoformat()},
        "pair": {"S": conflict.pair},
        "record_key": {"S": conflict.key},
        "revision": {"N": str(conflict.revision)},
        "body": {"S": json.dumps(conflict.to_dict(), default=str, separators=(",", ":"))},
    }
