"""Lambda, emulated in-process: handlers invoked with real-shaped events by the triggers AWS would use.

- ``LocalFunction`` runs a handler with its own environment and a Lambda context; its logs and EMF
  metrics go to a log file, as they would go to CloudWatch Logs.
- ``SqsEventSource`` is the SQS event source mapping: receive up to ``batch_size`` messages, invoke,
  delete what succeeded, leave ``batchItemFailures`` (or everything, if the invocation failed) to
  come back after the visibility timeout, and let the queue's redrive policy move them to the DLQ.
- ``scheduled_event`` / ``api_gateway_event`` build the EventBridge and API Gateway (REST v1) shapes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from syncline.local.moto_server import LOCAL_ACCOUNT, LOCAL_REGION
from syncline.topology import FunctionSpec

_ENV_LOCK = threading.RLock()


@dataclass
class LocalContext:
    """The attributes of ``LambdaContext`` that handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    response: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


class LocalFunction:
    """One Lambda function: handler + environment, invoked one at a time (like one execution environment)."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], log_file: Path) -> None:
        self.spec = spec
        self.environment = dict(environment)
        self.log_file = log_file
        self.invocations = 0
        self.errors = 0

    @property
    def name(self) -> str:
        return f"syncline-{self.spec.id}"

    def handler(self) -> Callable[[dict[str, Any], Any], Any]:
        module_name, _, attribute = self.spec.handler.rpartition(".")
        handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module_name), attribute)
        return handler

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """Run the handler; an exception is captured as the invocation's error, as Lambda reports it."""
        result = Invocation()
        context = LocalContext(self.name, self.spec.timeout_seconds, self.spec.memory_mb)
        started = time.perf_counter()
        with _ENV_LOCK, self._environment(), self._logs() as log:
            try:
                result.response = self.handler()(event, context)
            except (Exception, SystemExit) as exc:
                result.error = exc
                log.write(
                    json.dumps(
                        {
                            "level": "ERROR",
                            "function": self.name,
                            "error": repr(exc),
                            "traceback": traceback.format_exc(),
                        }
                    )
                    + "\n"
                )
        result.seconds = time.perf_counter() - started
        self.invocations += 1
        self.errors += result.error is not None
        return result

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        saved = {name: os.environ.get(name) for name in self.environment}
        os.environ.update(self.environment)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @contextlib.contextmanager
    def _logs(self) -> Iterator[TextIO]:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as log:
            from handlers.observability import logger  # noqa: PLC0415 - after the environment is set

            handler = logger.registered_handler
            # Swap the stream without StreamHandler.setStream, which flushes the old stream (that may be closed).
            previous = getattr(handler, "stream", None)
            if previous is not None:
                handler.stream = log  # type: ignore[attr-defined]
            try:
                with contextlib.redirect_stdout(log):
                    yield log
            finally:
                if previous is not None:
                    handler.stream = previous  # type: ignore[attr-defined]


def scheduled_event(rule_arn: str, now: datetime | None = None) -> dict[str, Any]:
    """An EventBridge "Scheduled Event", as a rate() rule delivers it."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": moment,
        "region": LOCAL_REGION,
        "resources": [rule_arn],
        "detail": {},
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event an SQS event source mapping passes to Lambda for received messages."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attributes.get("SenderId", LOCAL_ACCOUNT),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": LOCAL_REGION,
            }
        )
    return {"Records": records}


@dataclass
class PollOutcome:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    invocation_error: str | None = None


class SqsEventSource:
    """The SQS event source mapping of one queue -> one function."""

    def __init__(
        self,
        sqs: Any,
        function: LocalFunction,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int,
        retry_after_seconds: int = 1,
    ) -> None:
        self._sqs, self.function, self.queue_url, self.queue_arn = sqs, function, queue_url, queue_arn
        self.batch_size = batch_size
        # Locally a failed message comes back after this instead of the full visibility timeout
        # (minutes in AWS), so retries and the move to the DLQ happen within a test's time.
        self.retry_after_seconds = retry_after_seconds

    def poll_once(self, wait_seconds: int = 0) -> PollOutcome:
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        outcome = PollOutcome(received=len(messages))
        if not messages:
            return outcome
        invocation = self.function.invoke(sqs_event(messages, self.queue_arn))
        if invocation.error is not None:
            failed_ids = {m["MessageId"] for m in messages}
            outcome.invocation_error = repr(invocation.error)
        else:
            response = invocation.response or {}
            failed_ids = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        for start in range(0, len(succeeded), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(succeeded[start : start + 10])
                ],
            )
        for message in messages:
            if message["MessageId"] in failed_ids:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self.retry_after_seconds,
                )
        outcome.succeeded, outcome.failed = len(succeeded), len(failed_ids)
        return outcome

    def drain(
        self, *, idle_rounds: int = 1, max_seconds: float = 120.0, on_poll: Callable[[PollOutcome], None] | None = None
    ) -> list[PollOutcome]:
        """Poll until the queue looks empty ``idle_rounds`` times in a row (waiting out retries)."""
        outcomes: list[PollOutcome] = []
        idle = 0
        deadline = time.monotonic() + max_seconds
        while idle < idle_rounds and time.monotonic() < deadline:
            outcome = self.poll_once()
            outcomes.append(outcome)
            if on_poll:
                on_poll(outcome)
            if outcome.received:
                idle = 0
            else:
                idle += 1
                if idle < idle_rounds:
                    time.sleep(self.retry_after_seconds / 2)
        return outcomes

    def depth(self) -> tuple[int, int]:
        """(visible, in flight) messages, as CloudWatch's ApproximateNumberOfMessages* report them."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def api_gateway_event(
    method: str,
    path: str,
    resource: str,
    path_parameters: dict[str, str],
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API (v1) proxy-integration event; a body that is not UTF-8 arrives base64-encoded."""
    import base64  # noqa: PLC0415

    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": path,  # the path the client called (no stage prefix: the local gateway serves at the root)
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def api_gateway_v2_event(
    method: str,
    path: str,
    route_key: str,
    path_parameters: dict[str, str],
    headers: Mapping[str, str],
    body: bytes,
    raw_query: str = "",
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event; header names lower-cased, as HTTP APIs deliver them."""
    import base64  # noqa: PLC0415

    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    lowered = {name.lower(): value for name, value in headers.items()}
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "queryStringParameters": None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }
