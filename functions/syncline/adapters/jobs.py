"""Backfill job records (``JOB#{id}``) in the single DynamoDB table, advanced with conditional writes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncline.adapters.aws import put_at_revision
from syncline.ops.jobs import BackfillJob, JobMoved

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoJobStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client, self._table = client, table

    def load(self, job_id: str) -> BackfillJob | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"JOB#{job_id}"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        document = json.loads(item["job"]["S"])
        return BackfillJob(
            id=document["id"],
            pair=document["pair"],
            since=datetime.fromisoformat(document["since"]) if document["since"] else None,
            page_size=document["page_size"],
            status=document["status"],
            position=tuple(document["position"]) if document["position"] else None,
            read=document["read"],
            loaded=document["loaded"],
            rejected=document["rejected"],
            pages=document["pages"],
            rejects=tuple(tuple(r) for r in document["rejects"]),
            error=document["error"],
            started_at=datetime.fromisoformat(document["started_at"]),
            updated_at=datetime.fromisoformat(document["updated_at"]),
            revision=int(item["revision"]["N"]),
        )

    def save(self, job: BackfillJob, *, expected_revision: int) -> None:
        item: dict[str, Any] = {
            "pk": {"S": f"JOB#{job.id}"},
            "kind": {"S": "backfill"},
            "pair": {"S": job.pair},
            "status": {"S": job.status},
            "revision": {"N": str(job.revision)},
            "updated_at": {"S": job.updated_at.isoformat()},
            "job": {"S": json.dumps(job.as_dict())},
        }
        if not put_at_revision(self._client, self._table, item, expected_revision):
            raise JobMoved(f"job {job.id} was advanced by another run (revision {expected_revision})")
