"""Dead letters written straight to a DLQ, with their reason as message attributes for quick filtering."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from syncline.models import DeadLetter, UnparsableMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SEND_BATCH_LIMIT = 10
# What SQS accepts in a message attribute (the body is JSON, where such characters are escaped).
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class SqsDeadLetterSink:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client, self._url = client, queue_url

    def send(self, letters: Sequence[DeadLetter | UnparsableMessage]) -> None:
        entries = [_entry(str(i), letter) for i, letter in enumerate(letters)]
        for start in range(0, len(entries), SEND_BATCH_LIMIT):
            batch = entries[start : start + SEND_BATCH_LIMIT]
            for attempt in range(5):
                response = self._client.send_message_batch(QueueUrl=self._url, Entries=batch)
                failed = {f["Id"] for f in response.get("Failed", [])}
                batch = [e for e in batch if e["Id"] in failed]
                if not batch:
                    break
                time.sleep(min(0.1 * 2**attempt, 2.0))
            else:
                raise RuntimeError(f"SQS refused {len(batch)} dead letter(s) after retries")


def _entry(entry_id: str, letter: DeadLetter | UnparsableMessage) -> Any:
    attributes = {
        "reason": letter.reason[:256],
        "pair": letter.pair,
        "stage": letter.stage if isinstance(letter, DeadLetter) else "parse",
    }
    if isinstance(letter, DeadLetter):
        attributes["source"] = letter.notice.source_system
        attributes["entity"] = letter.notice.entity
        attributes["key"] = letter.notice.key
    return {
        "Id": entry_id,
        "MessageBody": letter.model_dump_json(),
        "MessageAttributes": {
            f"syncline-{name}": {"DataType": "String", "StringValue": _NOT_SQS_TEXT.sub("\ufffd", value)}
            for name, value in attributes.items()
        },
    }
