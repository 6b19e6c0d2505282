"""The local moto server keeps HTTP/1.1 connections open, as AWS does, and never mixes two requests up."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import urllib3.connection

from syncline.local.moto_keepalive import _FAILED, _marking_failures
from syncline.local.moto_server import LOCAL_CREDENTIALS, LOCAL_REGION


def _connection(services: tuple[Any, Any]) -> http.client.HTTPConnection:
    moto, _ = services
    address = urlsplit(moto.endpoint)
    return http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)


def test_requests_share_a_connection_even_when_the_application_leaves_the_body_unread(
    services: tuple[Any, Any],
) -> None:
    connection = _connection(services)
    connection.request("POST", "/moto-api/data.json", body=b"x" * 100_000)  # a body no route reads
    first = connection.getresponse()
    assert first.status == 200
    assert first.getheader("Connection") is None
    first.read()
    sock = connection.sock
    connection.request("GET", "/moto-api/data.json")
    second = connection.getresponse()
    assert second.status == 200
    second.read()
    assert connection.sock is sock  # the same socket: nothing of the first body was taken for a request line
    connection.close()


def test_a_chunked_request_closes_its_connection(services: tuple[Any, Any]) -> None:
    connection = _connection(services)
    connection.request("POST", "/moto-api/data.json", body=iter([b"abc", b"def"]), encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Connection") == "close"
    response.read()
    connection.close()


def test_boto3_calls_reuse_one_connection(services: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    moto, _ = services
    opened: list[object] = []
    original = urllib3.connection.HTTPConnection.connect

    def counting(self: Any) -> None:  # every TCP connect, a reconnect of a pooled connection included
        opened.append(self)
        original(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", counting)
    sqs = boto3.client(
        "sqs",
        region_name=LOCAL_REGION,
        endpoint_url=moto.endpoint,
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )
    url = sqs.create_queue(QueueName="keepalive")["QueueUrl"]
    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=f"message {n}")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    assert len(opened) == 1


def test_a_request_refused_before_the_application_closes_the_connection(services: tuple[Any, Any]) -> None:
    connection = _connection(services)
    connection.request("GET", "/moto-api/data.json")  # keep-alive
    connection.getresponse().read()
    connection.putrequest("GET", "/" + "x" * 70_000)  # a request line over http.server's 64 KiB: 414
    connection.endheaders()
    refused = connection.getresponse()
    assert refused.status == 414
    assert refused.getheader("Connection") == "close"
    connection.close()


def test_a_failing_application_is_marked_so_its_connection_closes() -> None:
    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def failing(environ: dict[str, Any], start_response: Any) -> Any:
        raise RuntimeError("moto bug")

    environ: dict[str, Any] = {}
    with pytest.raises(RuntimeError):
        _marking_failures(failing)(environ, None)
    assert environ[_FAILED] is True

    fine: dict[str, Any] = {}
    assert _marking_failures(lambda environ, start_response: Body([b"ok"]))(fine, None) == [b"ok"]
    assert _FAILED not in fine
    assert closed == [True]
