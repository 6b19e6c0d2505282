"""``python moto_keepalive.py HOST PORT``: moto's server, answering over persistent HTTP/1.1 connections.

``python -m moto.server`` runs Werkzeug's development server, which sends ``Connection: close`` with every
response: Python's ``http.server`` cannot tell where an unread request body ends, so Werkzeug does not risk
a second request on the connection. AWS keeps connections open and boto3 reuses them, so against the plain
server every SDK call paid for a new TCP connection on both sides, a cost no deployed function has (the
benchmarks counted it as the function's own CPU). This runs the same moto application, request handler and
threading as ``moto.server``, and keeps a connection open when it knows where the request ended: the body
had a ``Content-Length`` (what every AWS SDK request carries), and whatever the application left unread is
drained before the next request line is read. A chunked request still closes its connection.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

_DRAIN_CHUNK = 64 * 1024
_FAILED = "syncline.response_failed"


class _Body:
    """The request body as the application sees it: at most ``length`` bytes of the connection's stream."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        return self._take(self._stream.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._take(self._stream.readline, size)

    def _take(self, reader: Any, size: int | None) -> bytes:
        if self.remaining <= 0:
            return b""
        data: bytes = reader(self.remaining if size is None or size < 0 else min(size, self.remaining))
        self.remaining = self.remaining - len(data) if data else 0  # nothing read: the client went away mid-body
        return data

    def drain(self) -> None:
        while self.remaining > 0 and self.read(_DRAIN_CHUNK):
            pass


class _Drained:
    """What Werkzeug's after-response drain reads instead of the connection: nothing (it would otherwise
    swallow the next request on the connection, or block reading until the client hangs up)."""

    def read(self, size: int = -1) -> bytes:
        return b""


class KeepAliveRequestHandler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"
    _body: _Body | None = None
    _keep_alive = False
    _stream: Any = None

    def setup(self) -> None:
        super().setup()
        # Werkzeug writes a response's headers and body separately; on a connection that stays open, Nagle's
        # algorithm would hold the body until the client's delayed ACK of the headers (~40 ms a response).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        length = environ.get("CONTENT_LENGTH") or "0"
        chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
        self._keep_alive = length.isdigit() and not chunked and self.request_version == "HTTP/1.1"
        if self._keep_alive:
            self._stream, self.rfile = self.rfile, _Drained()  # type: ignore[assignment]
            self._body = _Body(self._stream, int(length))
            environ["wsgi.input"] = self._body
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keep_alive and not self._failed():
            return  # Werkzeug closes every connection; this one ends where its body said
        super().send_header(keyword, value)

    def run_wsgi(self) -> None:
        self._keep_alive, self._body = False, None
        try:
            super().run_wsgi()
        finally:
            self._finish()

    def _failed(self) -> bool:
        """Whether the application raised while answering the current request (see ``_marking_failures``)."""
        return bool(getattr(self, "environ", {}).get(_FAILED))

    def _finish(self) -> None:
        """Give the connection its stream back, positioned at the next request line, or close it."""
        if self._stream is not None:
            self.rfile, self._stream = self._stream, None
        if self._body is not None and self._keep_alive:
            self._body.drain()
        if not self._keep_alive or self._failed():
            self.close_connection = True  # after a failed response the stream may be out of step: start afresh
        self._keep_alive = False  # until the next request says otherwise (errors before it close, as Werkzeug does)


def main(argv: list[str]) -> None:
    host, port = argv
    os.environ.setdefault("MOTO_PORT", port)  # as moto.server sets it: the port moto writes into URLs (queue URLs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server sets it
    run_simple(host, int(port), _marking_failures(app), threaded=True, request_handler=KeepAliveRequestHandler)


def _marking_failures(app: Any) -> Any:
    """The application, noting in the environ when it raised (Werkzeug then answers 500 on a connection
    whose response may already be half sent)."""

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        result: Any = None
        try:
            result = app(environ, start_response)
            return list(result)  # moto's responses are small; a failure while producing one is caught here
        except BaseException:
            environ[_FAILED] = True
            raise
        finally:
            if hasattr(result, "close"):
                result.close()

    return application


if __name__ == "__main__":
    main(sys.argv[1:])
