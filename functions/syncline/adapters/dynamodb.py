"""Checkpoints and the state cache in the single DynamoDB table (typed ``pk`` prefixes, see DESIGN)."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from syncline.adapters.aws import is_condition_failure, put_at_revision
from syncline.ports import Checkpoint, CheckpointMoved, KnownState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_HASH = struct.Struct(">q")  # hash of (key, version) of a row the poller already emitted, grouped by minute
BATCH_GET_LIMIT = 100
TRANSACT_LIMIT = 100


class DynamoCheckpointStore:
    """``CP#{source}#{stream}``: the poller's position, advanced only from the revision it read."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def load(self, source: str, stream: str) -> Checkpoint:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": _checkpoint_pk(source, stream)}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return Checkpoint()
        return Checkpoint(
            position=tuple(json.loads(item["position"]["S"])),
            caught_up=item["caught_up"]["BOOL"],
            recent=frozenset(
                (int(minute), digest)
                for minute, packed in item.get("recent", {}).get("M", {}).items()
                for (digest,) in _HASH.iter_unpack(packed["B"])
            ),
            revision=int(item["revision"]["N"]),
            rescanned_at=float(item["rescanned_at"]["N"]) if "rescanned_at" in item else None,
        )

    def save(self, source: str, stream: str, checkpoint: Checkpoint, *, expected_revision: int) -> None:
        item: dict[str, Any] = {
            "pk": {"S": _checkpoint_pk(source, stream)},
            "position": {"S": json.dumps(list(checkpoint.position or ()))},
            "caught_up": {"BOOL": checkpoint.caught_up},
            "recent": {"M": _packed_by_minute(checkpoint.recent)},
            "revision": {"N": str(checkpoint.revision)},
            "updated_at": {"S": datetime.now(UTC).isoformat()},
        }
        if checkpoint.rescanned_at is not None:
            item["rescanned_at"] = {"N": repr(checkpoint.rescanned_at)}
        if not put_at_revision(self._client, self._table, item, expected_revision):
            raise CheckpointMoved(f"checkpoint {source}/{stream} moved past revision {expected_revision}")


class DynamoStateStore:
    """``ST#{pair}#{entity}#{key}``: content hash and source version of what the target last received.

    Two ways to commit, same condition (``version <= new``) per key:
    - ``transaction`` (default): TransactWriteItems of up to 100 puts. One request per 100 records,
      which is what keeps a worker's CPU low (boto3's per-request cost dominates, see PERFORMANCE.md);
      a key already at a newer version cancels the transaction and is dropped from the retry.
    - ``per_key``: one conditional PutItem per key, in parallel. The local stack uses it because moto
      copies the whole table for every transaction (~157 items/s measured, falling as the table grows).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        commit: Literal["transaction", "per_key"] = "transaction",
        concurrency: int = 8,
    ) -> None:
        self._client, self._table, self._commit, self._concurrency = client, table, commit, concurrency

    def get_many(self, pair: str, entity: str, keys: Sequence[str]) -> Mapping[str, KnownState]:
        found: dict[str, KnownState] = {}
        prefix = _state_prefix(pair, entity)
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{"pk": {"S": prefix + key}} for key in unique[start : start + BATCH_GET_LIMIT]],
                    "ProjectionExpression": "pk, content_hash, version",
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table, []):
                    key = item["pk"]["S"][len(prefix) :]
                    found[key] = KnownState(item["content_hash"]["S"], int(item["version"]["N"]))
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("DynamoDB kept returning unprocessed keys; throttled, retry the batch")
        return found

    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]:
        """Store each state unless a newer version is stored; return the keys written."""
        prefix = _state_prefix(pair, entity)
        now = datetime.now(UTC).isoformat()
        puts = {key: _conditional_put(self._table, prefix + key, state, now) for key, state in states.items()}
        if self._commit == "transaction":
            return self._commit_in_transactions(puts)
        return self._commit_per_key(puts)

    def _commit_in_transactions(self, puts: Mapping[str, Any]) -> set[str]:
        written: set[str] = set()
        keys = list(puts)
        for start in range(0, len(keys), TRANSACT_LIMIT):
            pending = keys[start : start + TRANSACT_LIMIT]
            for attempt in range(6):
                if not pending:
                    break
                try:
                    self._client.transact_write_items(TransactItems=[{"Put": puts[key]} for key in pending])
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "TransactionCanceledException":
                        raise
                    reasons = exc.response.get("CancellationReasons", [])
                    # Drop keys already stored at a newer version; retry the rest (conflicts, throttles).
                    stale = {
                        k for k, r in zip(pending, reasons, strict=False) if r.get("Code") == "ConditionalCheckFailed"
                    }
                    pending = [key for key in pending if key not in stale]
                    time.sleep(0 if stale else min(0.05 * 2**attempt, 1.0))
                else:
                    written.update(pending)
                    pending = []
            if pending:
                raise RuntimeError(f"state commit kept being cancelled for {len(pending)} keys; retry the batch")
        return written

    def _commit_per_key(self, puts: Mapping[str, Any]) -> set[str]:
        def put(key: str) -> str | None:
            try:
                self._client.put_item(**puts[key])
            except ClientError as exc:
                if is_condition_failure(exc):
                    return None
                raise
            return key

        if len(puts) <= 1:
            written = [put(key) for key in puts]
        else:
            with ThreadPoolExecutor(max_workers=min(self._concurrency, len(puts))) as pool:
                written = list(pool.map(put, puts))
        return {key for key in written if key is not None}

    def forget_many(self, pair: str, entity: str, keys: Sequence[str]) -> None:
        """Delete the state of keys whose record was deleted from the target (``syncline reconcile --apply``)."""
        prefix = _state_prefix(pair, entity)
        for key in keys:
            self._client.delete_item(TableName=self._table, Key={"pk": {"S": prefix + key}})


def _conditional_put(table: str, pk: str, state: KnownState, now: str) -> dict[str, Any]:
    return {
        "TableName": table,
        "Item": {
            "pk": {"S": pk},
            "content_hash": {"S": state.content_hash},
            "version": {"N": str(state.version)},
            "synced_at": {"S": now},
        },
        "ConditionExpression": "attribute_not_exists(pk) OR version <= :version",
        "ExpressionAttributeValues": {":version": {"N": str(state.version)}},
    }


def _packed_by_minute(markers: frozenset[tuple[int, int]]) -> dict[str, Any]:
    by_minute: dict[int, list[int]] = {}
    for minute, digest in markers:
        by_minute.setdefault(minute, []).append(digest)
    return {
        str(minute): {"B": b"".join(_HASH.pack(d) for d in sorted(digests))} for minute, digests in by_minute.items()
    }


def _checkpoint_pk(source: str, stream: str) -> str:
    return f"CP#{source}#{stream}"


def _state_prefix(pair: str, entity: str) -> str:
    return f"ST#{pair}#{entity}#"
