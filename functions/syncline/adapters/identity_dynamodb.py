"""The identity map in the single table: ``ID#{entity}#{key}`` (ids per system) and ``IX#{entity}#{system}#{id}`` (reverse)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure
from syncline.identity import AlreadyMapped, Identity

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoIdentityStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def get(self, entity: str, key: str) -> Identity | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"ID#{entity}#{key}"}}, ConsistentRead=True
        ).get("Item")
        return _identity(entity, item) if item else None

    def key_of(self, entity: str, system: str, system_id: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"IX#{entity}#{system}#{system_id}"}}, ConsistentRead=True
        ).get("Item")
        return item["key"]["S"] if item else None

    def set(self, entity: str, key: str, system: str, system_id: str) -> None:
        # Reverse entry first, claimed only if free or already ours: an id never points at two keys.
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"pk": {"S": f"IX#{entity}#{system}#{system_id}"}, "key": {"S": key}},
                ConditionExpression="attribute_not_exists(pk) OR #key = :key",
                ExpressionAttributeNames={"#key": "key"},
                ExpressionAttributeValues={":key": {"S": key}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise AlreadyMapped(
                    f"{system} id {system_id} is mapped to {self.key_of(entity, system, system_id)}; unset it there first"
                ) from None
            raise
        previous = self.get(entity, key)
        if previous is None:
            self._client.put_item(
                TableName=self._table,
                Item={"pk": {"S": f"ID#{entity}#{key}"}, "key": {"S": key}, "ids": {"M": {system: {"S": system_id}}}},
            )
        else:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"ID#{entity}#{key}"}},
                UpdateExpression="SET ids.#system = :id",
                ExpressionAttributeNames={"#system": system},
                ExpressionAttributeValues={":id": {"S": system_id}},
            )
        if previous is not None and previous.ids.get(system) not in (None, system_id):
            self._client.delete_item(
                TableName=self._table, Key={"pk": {"S": f"IX#{entity}#{system}#{previous.ids[system]}"}}
            )

    def unset(self, entity: str, key: str, system: str) -> None:
        current = self.get(entity, key)
        if current is None or system not in current.ids:
            return
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"ID#{entity}#{key}"}},
            UpdateExpression="REMOVE ids.#system",
            ExpressionAttributeNames={"#system": system},
        )
        self._client.delete_item(
            TableName=self._table, Key={"pk": {"S": f"IX#{entity}#{system}#{current.ids[system]}"}}
        )

    def list(self, entity: str) -> Iterator[Identity]:
        """Every mapped key of ``entity`` (a scan: an operator's command, not a hot path)."""
        paginator = self._client.get_paginator("scan")
        prefix = f"ID#{entity}#"
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": prefix}},
        ):
            for item in sorted(page.get("Items", []), key=lambda i: i["pk"]["S"]):
                yield _identity(entity, item)


def _identity(entity: str, item: dict[str, Any]) -> Identity:
    return Identity(
        entity, item["key"]["S"], {system: v["S"] for system, v in item.get("ids", {}).get("M", {}).items()}
    )
