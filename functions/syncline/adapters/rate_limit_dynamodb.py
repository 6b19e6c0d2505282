"""Shared rate-limit buckets in the single table: ``RL#{account}`` holds one bucket's points, the time they
were counted, the limits the server last reported, the points taken by calls not yet reconciled and a
revision. Every take and every reconcile is a put
conditioned on the revision read (``put_at_revision``), so concurrent invocations never spend the same
points twice; the loser re-reads and decides again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncline.adapters.aws import put_at_revision
from syncline.connectors.shopify_rate_limit import BucketState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BUCKET_TTL_SECONDS = 7 * 86400  # an idle shop's bucket is tidied away; it is rebuilt from the next response


class DynamoBucketStore:
    def __init__(self, client: DynamoDBClient, table: str, *, prefix: str = "RL#") -> None:
        self._client, self._table, self._prefix = client, table, prefix

    def load(self, shop: str) -> BucketState | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"{self._prefix}{shop}"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return BucketState(
            available=float(item["available"]["N"]),
            updated_at=float(item["updated_at"]["N"]),
            maximum=float(item["maximum"]["N"]),
            restore_rate=float(item["restore_rate"]["N"]),
            revision=int(item["revision"]["N"]),
            inflight=float(item.get("inflight", {}).get("N", "0")),
        )

    def save(self, shop: str, state: BucketState, *, expected_revision: int) -> bool:
        item = {
            "pk": {"S": f"{self._prefix}{shop}"},
            "available": {"N": f"{state.available:.6f}"},
            "updated_at": {"N": f"{state.updated_at:.6f}"},
            "maximum": {"N": f"{state.maximum:.6f}"},
            "restore_rate": {"N": f"{state.restore_rate:.6f}"},
            "revision": {"N": str(state.revision)},
            "inflight": {"N": f"{state.inflight:.6f}"},
            "expires_at": {"N": str(int(state.updated_at) + BUCKET_TTL_SECONDS)},
        }
        return put_at_revision(self._client, self._table, item, expected_revision)
