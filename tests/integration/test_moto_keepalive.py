"""The local moto server keeps HTTP/1.1 connections open, as AWS does, and never mixes two requests up."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import urllib3.connection

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
