"""The HubSpot client's window limiter and batching, against an in-memory transport (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from syncline.connectors.http import RetryPolicy
from syncline.connectors.hubspot import HubSpotClient, UpsertInput, WindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def response(status: int = 200, /, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", "https://api.hubapi.com/x"))


def limits(remaining: int, interval_ms: int = 10_000) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms),
    }


def test_requests_flow_while_the_window_has_room() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(clock=clock, sleep=clock.sleep, margin=0)
    for remaining in (3, 2, 1):
        limiter.before(httpx.Request("GET", "https://x"))
        limiter.after(response(**limits(remaining)))
    assert clock.slept == [] and limiter.waits == 0


def test_when_the_window_is_full_the_next_request_waits_until_our_oldest_request_leaves_it() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(clock=clock, sleep=clock.sleep, margin=0.01)
    limiter.before(httpx.Request("GET", "https://x"))  # t=1000
    clock.now += 2
    limiter.before(httpx.Request("GET", "https://x"))  # t=1002
    limiter.after(response(**limits(0, interval_ms=5_000)))

    limiter.before(httpx.Request("GET", "https://x"))

    assert clock.now == 1_005.01  # 1000 + 5 s interval (from the header) + margin
    assert limiter.waits == 1


def test_a_429_without_retry_after_closes_the_window_for_an_interval_and_retry_after_wins_when_present() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(clock=clock, sleep=clock.sleep)
    limiter.after(response(429, **limits(0, interval_ms=10_000)))
    limiter.before(httpx.Request("GET", "https://x"))
    assert clock.now == 1_010.0 and limiter.throttled == 1

    limiter.after(response(429, **{"Retry-After": "3"}))
    limiter.before(httpx.Request("GET", "https://x"))
    assert clock.now == 1_013.0


def test_batches_are_split_at_100_and_a_token_is_asked_for_on_every_attempt() -> None:
    seen: list[dict[str, object]] = []
    tokens = iter(f"tok-{n}" for n in range(100))
    auth: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        auth.append(request.headers["authorization"])
        results = [
            {"id": i["id"], "properties": {}, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
            for i in body["inputs"]
        ]
        return httpx.Response(200, json={"status": "COMPLETE", "results": results}, headers=limits(50))

    client = make_client(handler, lambda: next(tokens))
    ids = [str(n) for n in range(250)] + ["0"]  # a repeated id is asked for once

    result = client.batch_read("contact", ids)

    assert [len(body["inputs"]) for body in seen] == [100, 100, 50]  # type: ignore[arg-type]
    assert len(result.results) == 250
    assert auth == ["Bearer tok-0", "Bearer tok-1", "Bearer tok-2"]
    assert "tok-" not in repr(client)


def test_an_upsert_batch_keeps_the_last_write_per_id() -> None:
    bodies: list[dict[str, list[dict[str, object]]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"status": "COMPLETE", "results": []})

    make_client(handler, lambda: "t").batch_upsert(
        "contact",
        [UpsertInput("a@x.co", {"firstname": "Old"}), UpsertInput("a@x.co", {"firstname": "New"})],
        id_property="email",
    )

    assert bodies[0]["inputs"] == [{"id": "a@x.co", "idProperty": "email", "properties": {"firstname": "New"}}]


def make_client(handler: Callable[[httpx.Request], httpx.Response], token: Callable[[], str]) -> HubSpotClient:
    clock = FakeClock()
    return HubSpotClient(
        token,
        base_url="https://api.hubapi.com",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(sleep=clock.sleep),
        limiter=WindowLimiter(clock=clock, sleep=clock.sleep),
    )
