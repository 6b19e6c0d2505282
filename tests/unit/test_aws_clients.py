"""boto3 clients: request checks against the service model are off in Lambda and on in the test suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError

from syncline.adapters import aws

MALFORMED = {"TableName": "t", "Item": {"pk": {"S": 1}}}  # a number where the model wants a string


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    yield
    aws.reset_clients()


class Sending(Exception):
    """Raised where the request would go on the wire (no network in unit tests)."""


def _stop_at_sending(client: Any) -> None:
    def stop(request: Any, **kwargs: Any) -> None:
        raise Sending

    client.meta.events.register("before-send", stop)


def test_the_suite_checks_every_request_before_sending_it() -> None:
    client = aws.dynamodb()
    _stop_at_sending(client)
    with pytest.raises(ParamValidationError, match=r"Item\.pk\.S"):
        client.put_item(**MALFORMED)


def test_functions_leave_the_check_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(aws.ENV_PARAMETER_VALIDATION)
    client = aws.dynamodb()
    _stop_at_sending(client)
    with pytest.raises(Sending):  # sent unchecked: AWS answers a malformed request with a ValidationException
        client.put_item(**MALFORMED)
