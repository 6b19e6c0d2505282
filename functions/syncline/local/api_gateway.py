"""API Gateway (REST v1 proxy integration), emulated: an HTTP server on loopback invoking handlers."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from syncline.local.lambda_runtime import LocalFunction, api_gateway_event

MAX_BODY_BYTES = 256 * 1024  # the deployed API's request size limit


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
    def __init__(self, routes: Sequence[Route], host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes = list(routes)
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
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
            self._reply(request, 413, {"message": "Request Too Long"})
            return
        body = request.rfile.read(length) if length else b""
        for route in self.routes:
            parameters = route.match(request.command, parts.path)
            if parameters is None:
                continue
            event = api_gateway_event(
                request.command,
                parts.path,
                route.template,
                parameters,
                dict(request.headers.items()),
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
        for name, value in (response.get("headers") or {}).items():
            request.send_header(name, str(value))
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
