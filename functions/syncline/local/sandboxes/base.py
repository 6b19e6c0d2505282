"""What every sandbox shares: a threaded HTTP server with routes, a request log, faults on demand, OAuth2
client-credentials tokens that expire, and signed webhook deliveries.

A subclass declares routes with ``@route("GET", r"/admin/api/(?P<version>[^/]+)/graphql.json")`` on methods
taking a ``Request`` and returning a ``Reply``. Faults are injected by tests and the reliability suite:

    sandbox.faults.add("status", times=2, status=503)    # the next two requests get a 503
    sandbox.faults.add("rate_limit", probability=0.1)     # one request in ten gets a 429 with Retry-After
    sandbox.faults.add("drop", times=1)                   # the connection closes without a response
    sandbox.faults.add("latency", seconds=0.2, times=5)
    sandbox.tokens.expire_all()                           # every issued bearer token is now expired
"""

from __future__ import annotations

import base64
import binascii
import json
import queue
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from syncline.webhooks import sign


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    def basic(self) -> tuple[str, str] | None:
        """Client id and secret from an HTTP Basic ``Authorization`` header (RFC 6749 2.3.1), if one is sent."""
        value = self.headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(value[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote(client_id), unquote(secret)

    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


Handler = Callable[[Any, Request], Reply]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Declare a sandbox method as the handler of ``method`` on paths matching ``pattern`` (a full match)."""

    def register(handler: Handler) -> Handler:
        handler.__sandbox_route__ = (method, re.compile(pattern))  # type: ignore[attr-defined]
        return handler

    return register


@dataclass
class Fault:
    kind: str  # latency | status | rate_limit | drop | timeout
    times: int | None = None  # how many requests it hits (None: until cleared)
    probability: float = 1.0
    status: int = 503
    seconds: float = 0.0
    path: str | None = None  # regex: only requests whose path matches


class Faults:
    """Faults to inject, in order; thread-safe; seeded so a reliability run can be replayed."""

    def __init__(self, seed: int | None = None) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.rng = random.Random(seed)  # noqa: S311 - reproducible fault draws, not security
        self.injected: Counter[str] = Counter()

    def add(self, kind: str, **options: Any) -> Fault:
        fault = Fault(kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def draw(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path and not re.search(fault.path, path):
                    continue
                if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                self.injected[fault.kind] += 1
                return fault
        return None


class Tokens:
    """OAuth2 client-credentials tokens: issued for known clients, expiring, revocable on demand."""

    def __init__(self, clients: Mapping[str, str] | None = None, lifetime: int = 3600) -> None:
        self.clients = dict(clients or {})
        self.lifetime = lifetime
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()
        self.issued_count = 0

    def issue(self, client_id: str, client_secret: str) -> tuple[str, int] | None:
        if not client_id or not secrets.compare_digest(self.clients.get(client_id, "\0"), client_secret):
            return None
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = time.time() + self.lifetime
            self.issued_count += 1
        return token, self.lifetime

    def valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._issued.get(token, 0) > time.time()

    def expire_all(self) -> None:
        with self._lock:
            self._issued = dict.fromkeys(self._issued, 0.0)


@dataclass
class Subscription:
    url: str
    topic: str  # "*" for every topic
    scheme: str
    secret: str


class Sandbox:
    """A sandbox server. Subclasses set ``service`` and declare routes; ``start()`` returns self."""

    service: ClassVar[str] = "sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = None) -> None:
        self.faults = Faults(seed)
        self.tokens = Tokens()
        self.requests: Counter[str] = Counter()  # "METHOD path" -> count
        self.subscriptions: list[Subscription] = []
        self.delivered: list[tuple[str, int]] = []  # (topic, status) of webhook deliveries
        self.lock = threading.RLock()  # guards the subclass's data
        self._routes = [
            (*member.__sandbox_route__, member)
            for name in dir(type(self))
            if (member := getattr(self, name, None)) is not None and hasattr(member, "__sandbox_route__")
        ]
        sandbox = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                sandbox._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=self.service
        )
        self._webhooks = httpx.Client(timeout=5.0)
        self._outbox: queue.Queue[tuple[str, Any, dict[str, str]]] | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Any:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._webhooks.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- webhooks -------------------------------------------------------------------------------------

    def subscribe(self, url: str, *, topic: str = "*", scheme: str, secret: str) -> None:
        self.subscriptions.append(Subscription(url, topic, scheme, secret))

    def deliver_in_background(self) -> None:
        """Send webhooks from a background thread, in order, as the real services do: a change made through
        the API returns before its webhook is sent (and a receiver calling back into this sandbox cannot
        deadlock with it). ``flush()`` waits until every queued delivery was attempted."""
        if self._outbox is not None:
            return
        self._outbox = queue.Queue()
        threading.Thread(target=self._send_queued, daemon=True, name=f"{self.service}-webhooks").start()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued webhook was attempted (no-op when deliveries are synchronous)."""
        deadline = time.monotonic() + timeout
        while self._outbox is not None and self._outbox.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _send_queued(self) -> None:
        assert self._outbox is not None  # noqa: S101 - started by deliver_in_background
        while True:
            topic, payload, headers = self._outbox.get()
            try:
                self._send(topic, payload, headers)
            finally:
                self._outbox.task_done()

    def deliver(self, topic: str, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """POST ``payload`` to every subscription for ``topic``, signed with the subscription's scheme."""
        if self._outbox is not None:
            self._outbox.put((topic, payload, dict(headers or {})))
            return
        self._send(topic, payload, headers)

    def _send(self, topic: str, payload: Any, headers: Mapping[str, str] | None) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        for subscription in self.subscriptions:
            if subscription.topic not in {"*", topic}:
                continue
            signed = sign(
                subscription.scheme,
                subscription.secret,
                body,
                method="POST",
                url=subscription.url,
                timestamp=int(time.time()),
                msg_id=f"msg_{secrets.token_hex(12)}",
            )
            sent = {"Content-Type": "application/json", **self.webhook_headers(topic), **dict(headers or {}), **signed}
            try:
                status = self._webhooks.post(subscription.url, content=body, headers=sent).status_code
            except httpx.HTTPError:
                status = 0
            self.delivered.append((topic, status))

    def webhook_headers(self, topic: str) -> dict[str, str]:
        """Provider-specific headers on each delivery (topic, shop, ...): override per sandbox."""
        return {}

    # --- serving --------------------------------------------------------------------------------------

    def _dispatch(self, http: BaseHTTPRequestHandler) -> None:
        split = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        request = Request(
            http.command,
            split.path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            {name.lower(): value for name, value in http.headers.items()},
            body,
        )
        with self.lock:
            self.requests[f"{request.method} {request.path}"] += 1
        fault = self.faults.draw(request.path)
        reply = self._fault(fault, http) if fault is not None else None
        if fault is not None and reply is None and fault.kind != "latency":
            return  # the connection was dropped or timed out: no response
        if reply is None:
            reply = self._route(request)
        payload = reply.encoded()
        http.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers} if payload else dict(reply.headers)
        for name, value in headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(payload)))
        http.end_headers()
        if payload:
            http.wfile.write(payload)

    def _fault(self, fault: Fault, http: BaseHTTPRequestHandler) -> Reply | None:
        """The reply a fault gives, or None: served normally after a latency, no response at all otherwise."""
        if fault.kind == "latency":
            time.sleep(fault.seconds)
            return None
        if fault.kind == "drop":
            http.close_connection = True
            http.connection.shutdown(2)  # no response at all: the client sees a dropped connection
            return None
        if fault.kind == "timeout":
            time.sleep(fault.seconds or 30.0)
            http.close_connection = True
            return None
        if fault.kind == "rate_limit":
            return self.rate_limited()
        return Reply(fault.status, {"message": f"injected {fault.status}"})

    def rate_limited(self) -> Reply:
        """The service's own 429: override to match its headers and body."""
        return Reply(429, {"message": "Too many requests"}, {"Retry-After": "1"})

    def _route(self, request: Request) -> Reply:
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            found = pattern.fullmatch(request.path)
            if found:
                request.params = found.groupdict()
                try:
                    reply: Reply = handler(request)
                except Exception as exc:  # a sandbox bug must show as a 500, like a real service's
                    return Reply(500, {"message": f"sandbox error: {type(exc).__name__}: {exc}"})
                return reply
        return self.not_found(request)

    def not_found(self, request: Request) -> Reply:
        return Reply(404, {"message": f"no route for {request.method} {request.path}"})
