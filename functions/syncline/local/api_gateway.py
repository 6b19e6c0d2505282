"""API Gateway, emulated: an HTTP server on loopback turning requests into proxy events for a LocalFunction.

REST API (payload 1.0) events by default, HTTP API (payload 2.0) events with ``payload_version="2.0"``.
Like API Gateway it adds ``X-Forwarded-*`` headers, answers 403 for a path with no route, 413 above the
service's payload limit, and 502 when the function fails or returns something that is not a proxy response.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from syncline.local.lambda_runtime import LocalFunction, api_gateway_event, api_gateway_v2_event

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit (REST and HTTP APIs): not configurable


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. /webhooks/{source}
    function: LocalFunction

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.template)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


class ApiGateway:
    def __init__(
        self,
        routes: Sequence[Route],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        payload_version: Literal["1.0", "2.0"] = "1.0",
    ) -> None:
        self.routes = list(routes)
        self.payload_version = payload_version
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway get
            # Headers and body go out in separate writes: with Nagle on, each response waits for the
            # client's delayed ACK (~40 ms). API Gateway has no such stall.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                gateway._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _dispatch(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            request.close_connection = True  # the unread body must not be taken for the next request
            self._reply(request, 413, {"message": "Request Too Long"})
            return
        body = request.rfile.read(length) if length else b""
        port = self._server.server_address[1]
        headers = {
            **dict(request.headers.items()),
            "X-Forwarded-For": request.client_address[0],
            "X-Forwarded-Port": str(port),
            "X-Forwarded-Proto": "http",
        }
        for route in self.routes:
            parameters = route.match(request.command, parts.path)
            if parameters is None:
                continue
            if self.payload_version == "2.0":
                event = api_gateway_v2_event(
                    request.command,
                    parts.path,
                    f"{route.method} {route.template}",
                    parameters,
                    headers,
                    body,
                    parts.query,
                )
            else:
                event = api_gateway_event(
                    request.command,
                    parts.path,
                    route.template,
                    parameters,
                    headers,
                    body,
                    dict(parse_qsl(parts.query)),
                )
            invocation = route.function.invoke(event)
            if invocation.error is not None or not isinstance(invocation.response, dict):
                self._reply(request, 502, {"message": "Internal server error"})
                return
            self._reply_proxy(request, invocation.response)
            return
        self._reply(request, 403, {"message": "Missing Authentication Token"})  # what API Gateway says for no route

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def _reply_proxy(request: BaseHTTPRequestHandler, response: dict[str, Any]) -> None:
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
        request.send_response(int(response.get("statusCode", 200)))
        # REST API responses may use either field (Powertools uses multiValueHeaders); API Gateway merges them.
        headers = {name: [str(value)] for name, value in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = [str(value) for value in values]
        for name, values in headers.items():
            if name.lower() != "content-length":
                for value in values:
                    request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
