"""The stock band each level was last seen in (``SB#{pair}#{key}``), for business alerts on crossings only."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from syncline.canonical.events import StockBand as Band

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_LIMIT, BATCH_WRITE_LIMIT = 100, 25


class DynamoStockBands:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def get_many(self, pair: str, keys: Sequence[str]) -> dict[str, Band]:
        found: dict[str, Band] = {}
        prefix = f"SB#{pair}#"
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: Any = {
                self._table: {
                    "Keys": [{"pk": {"S": prefix + key}} for key in keys[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self._table, []):
                    found[item["pk"]["S"].removeprefix(prefix)] = item["band"]["S"]  # type: ignore[assignment]
                request = answer.get("UnprocessedKeys") or None
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
        return found

    def put_many(self, pair: str, bands: Mapping[str, Band]) -> None:
        puts = [
            {"PutRequest": {"Item": {"pk": {"S": f"SB#{pair}#{key}"}, "band": {"S": band}}}}
            for key, band in bands.items()
        ]
        for start in range(0, len(puts), BATCH_WRITE_LIMIT):
            request: Any = {self._table: puts[start : start + BATCH_WRITE_LIMIT]}
            for attempt in range(8):
                request = self._client.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("DynamoDB left stock bands unwritten after retries")
