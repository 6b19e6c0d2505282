"""boto3 clients with one set of defaults. ``AWS_ENDPOINT_URL`` (read by boto3) points them at moto locally."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

# botocore checks every request against the service model before sending it. The requests here are built
# by this package, never from a caller's input, and AWS checks them again on arrival; the client-side
# check of a worker's TransactWriteItems of 100 puts costs more CPU than building it (docs/PERFORMANCE.md).
# So it is off where the code runs for real, and the test suite turns it on (tests/conftest.py), so a
# malformed request still fails there with botocore's precise message even where moto is lenient.
ENV_PARAMETER_VALIDATION = "SYNCLINE_AWS_PARAMETER_VALIDATION"


def _validating() -> bool:
    return os.environ.get(ENV_PARAMETER_VALIDATION) == "1"


@cache
def _client(service: str, validate: bool) -> Any:
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=20,
        parameter_validation=validate,
    )
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb", _validating())
    return client


def events() -> EventBridgeClient:
    client: EventBridgeClient = _client("events", _validating())
    return client


def sqs() -> SQSClient:
    client: SQSClient = _client("sqs", _validating())
    return client


def client(service: str) -> Any:
    """A client of any other service with the same defaults (e.g. ``sesv2`` for the e-mail channel)."""
    return _client(service, _validating())


def sns() -> SNSClient:
    client: SNSClient = _client("sns", _validating())
    return client


def is_condition_failure(exc: ClientError) -> bool:
    """A conditional write refused because its condition did not hold (not an outage: never retried blindly)."""
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def put_at_revision(client: DynamoDBClient, table: str, item: dict[str, Any], expected_revision: int) -> bool:
    """Put ``item`` only if the stored item is still at ``expected_revision`` (0: never saved, so absent).

    Returns False when another writer moved it first: the caller decides what that means.
    """
    try:
        client.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR revision = :expected",
            ExpressionAttributeValues={":expected": {"N": str(expected_revision)}},
        )
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def reset_clients() -> None:
    """Forget cached clients (the local stack calls it when it points the process at a new endpoint)."""
    _client.cache_clear()
