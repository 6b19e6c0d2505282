"""The HTTP layer every connector shares: timeouts, retries with backoff and jitter, typed errors.

Retried: 429, 5xx (500, 502, 503, 504 and any other 5xx), timeouts and dropped connections, with
exponential backoff and full jitter, or exactly the server's ``Retry-After`` (seconds or an HTTP date)
when it sends one, capped by ``max_delay``. Never retried: any other 4xx, which would fail the same way
again; it raises ``ApiError`` with the status and the service's own error text. A request that keeps
failing raises ``ApiError`` (``retryable=True``) after ``attempts`` tries, so the caller can leave the
record to SQS and, in the end, the dead-letter queue.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from syncline.connectors.errors import ApiError

__all__ = ["ApiError", "HttpApi", "RetryPolicy", "error_text", "retry_after"]

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random delay up to base * 2^(attempt-1), capped."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = retry_after(response.headers) if response is not None else None
        return min(self.max_delay, after) if after is not None else self.backoff(attempt)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date), if present and valid."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_text(response: httpx.Response) -> str:
    """The service's own error message, short (JSON ``message``/``error``/``errors`` or the raw text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        for name in ("message", "error_description", "error", "errors"):
            if body.get(name):
                return str(body[name])[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict):  # Salesforce: [{"message", "errorCode"}]
        first = body[0]
        return f"{first.get('errorCode', '')}: {first.get('message', '')}".strip(": ")[:200]
    return str(body)[:200]


class HttpApi:
    """An httpx client with the shared retry policy. ``auth`` adds headers per attempt (so a refreshed
    token is used on the retry); ``on_unauthorized`` is called once on a 401 and the request retried once."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        auth: Callable[[], Mapping[str, str]] | None = None,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)
        self.retry = retry or RetryPolicy()
        self.headers = dict(headers or {})
        self.auth = auth
        self.on_unauthorized = on_unauthorized
        self.retries = 0  # retried attempts, for metrics and tests

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; return a 2xx/3xx response or raise ``ApiError``."""
        extra = kwargs.pop("headers", None) or {}
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            headers = {**self.headers, **(self.auth() if self.auth else {}), **extra}
            try:
                response = self.client.request(method, self.url(path), headers=headers, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt >= self.retry.attempts:
                    raise ApiError(
                        self.service, None, f"{type(exc).__name__} after {attempt} attempts", retryable=True
                    ) from exc
                self.retries += 1
                self.retry.sleep(self.retry.delay(attempt, None))
                continue
            if response.status_code == 401 and self.on_unauthorized is not None and not refreshed:
                refreshed = True  # one refresh and one retry: a second 401 is a real refusal
                self.on_unauthorized()
                attempt -= 1
                continue
            if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
                if attempt >= self.retry.attempts:
                    raise ApiError(self.service, response.status_code, error_text(response), retryable=True)
                self.retries += 1
                self.retry.sleep(self.retry.delay(attempt, response))
                continue
            if response.status_code >= 400:
                raise ApiError(self.service, response.status_code, error_text(response), retryable=False)
            return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def close(self) -> None:
        self.client.close()
