"""Two-way sync state in the single table: agreed bases, echo expectations and per-key leases.

- ``ST#{pair}#{key}``: the base (values, time of the change, version, version seen per system), put
  only if the stored version is the one read (optimistic concurrency);
- ``EC#{system}#{key}``: fingerprint (and version, once known) of what Syncline last wrote there;
- ``LK#{key}``: a short lease, taken if absent, expired or already ours; released only by its owner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure
from syncline.config import SynclineConfig
from syncline.twoway import Base, Echo, RecordSystem, TwoWaySync, shared_fields

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ECHO_TTL_SECONDS = 7 * 86400


class DynamoBaseStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def get(self, pair: str, key: str) -> Base | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"ST#{pair}#{key}"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Base(
            values=json.loads(item["values"]["S"]),
            changed_at=datetime.fromisoformat(item["changed_at"]["S"]),
            version=int(item["version"]["N"]),
            seen={system: int(v["N"]) for system, v in item.get("seen", {}).get("M", {}).items()},
        )

    def put(self, pair: str, key: str, base: Base, *, expected_version: int) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"ST#{pair}#{key}"},
                    "values": {"S": json.dumps(dict(base.values), sort_keys=True, default=str)},
                    "changed_at": {"S": base.changed_at.isoformat()},
                    "version": {"N": str(base.version)},
                    "seen": {"M": {system: {"N": str(v)} for system, v in base.seen.items()}},
                },
                ConditionExpression="attribute_not_exists(pk) OR version = :expected"
                if expected_version == 0
                else "version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True


class DynamoEchoStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def expected(self, system: str, key: str) -> Echo | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"EC#{system}#{key}"}}, ConsistentRead=True
        ).get("Item")
        if not item or int(item["expires_at"]["N"]) < time.time():  # TTL deletion lags: check expiry in code
            return None
        prior = item.get("prior", {}).get("M")
        return _echo(item, _echo(prior, None) if prior else None)

    def expect(self, system: str, key: str, echo: Echo) -> None:
        item: dict[str, Any] = {
            "pk": {"S": f"EC#{system}#{key}"},
            "expires_at": {"N": str(int(time.time()) + ECHO_TTL_SECONDS)},
            **_echo_attributes(echo),
        }
        if echo.prior is not None:
            item["prior"] = {"M": _echo_attributes(echo.prior)}
        self._client.put_item(TableName=self._table, Item=item)


def _echo(item: Mapping[str, Any], prior: Echo | None) -> Echo:
    return Echo(
        item["fingerprint"]["S"],
        int(item["version"]["N"]) if "version" in item else None,
        datetime.fromisoformat(item["origin"]["S"]) if "origin" in item else None,
        prior,
    )


def _echo_attributes(echo: Echo) -> dict[str, Any]:
    item: dict[str, Any] = {"fingerprint": {"S": echo.fingerprint}}
    if echo.version is not None:
        item["version"] = {"N": str(echo.version)}
    if echo.origin is not None:
        item["origin"] = {"S": echo.origin.isoformat()}
    return item


class DynamoLeaseStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def acquire(self, key: str, owner: str, *, seconds: float) -> bool:
        now = time.time()
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"LK#{key}"},
                    "owner": {"S": owner},
                    "lease_until": {"N": f"{now + seconds:.3f}"},
                    "expires_at": {"N": str(int(now + seconds) + 3600)},  # TTL tidies abandoned leases
                },
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def release(self, key: str, owner: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"LK#{key}"}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):  # someone else holds it now (ours expired): leave theirs alone
                raise


def dynamo_twoway(
    config: SynclineConfig,
    pair_name: str,
    systems: Callable[[str], RecordSystem],
    client: DynamoDBClient,
    table: str,
    owner: str,
) -> TwoWaySync:
    """The engine for one two-way pair: both systems, the pair's policy, bases/echoes/leases in the table."""
    pair = config.pair(pair_name)
    if pair.direction != "two_way":
        raise LookupError(f"pair {pair_name!r} is {pair.direction}, not two_way")
    return TwoWaySync(
        pair.name,
        shared_fields([systems(pair.source), systems(pair.target)]),
        pair.record_policy(),
        DynamoBaseStore(client, table),
        DynamoEchoStore(client, table),
        DynamoLeaseStore(client, table),
        owner,
        lambda: datetime.now(UTC),
    )
