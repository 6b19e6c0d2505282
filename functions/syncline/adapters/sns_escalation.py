"""Conflict escalation through SNS: one message per conflict that waited too long (subscribe e-mail, AWS
Chatbot for Slack, or PagerDuty to the topic). The message names the record and the command to decide it;
it carries the fields in question, never a credential."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from syncline.review import Conflict

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class SnsEscalation:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client, self._topic = client, topic_arn

    def escalate(self, conflict: Conflict, *, age: timedelta) -> None:
        hours = age.total_seconds() / 3600
        subject = f"Syncline: conflict on {conflict.pair} {conflict.key} waiting {hours:.1f} h"
        text = (
            f"{conflict.pair}: {conflict.key} ({conflict.entity}) has waited {hours:.1f} h for a decision on "
            f"{', '.join(conflict.fields)}.\n"
            + "".join(
                f"  {side.system}: {json.dumps({name: side.values.get(name) for name in conflict.fields}, default=str)}\n"
                for side in conflict.sides
            )
            + f"Decide with: syncline conflicts show {conflict.id}\n"
            f"             syncline conflicts resolve {conflict.id} --take <system>|merged [--value field=value]\n"
        )
        self._client.publish(
            TopicArn=self._topic,
            Subject=subject[:100],  # SNS limit
            Message=text,
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "conflict-escalated"},
                "conflict_id": {"DataType": "String", "StringValue": conflict.id},
                "pair": {"DataType": "String", "StringValue": conflict.pair},
            },
        )
