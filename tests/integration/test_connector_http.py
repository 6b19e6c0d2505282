"""The HTTP layer every connector shares, against a real sandbox server: retries, Retry-After, no retry on
4xx, one refresh on 401, faults and signed webhooks from the sandbox base."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from syncline.connectors.http import ApiError, HttpApi, RetryPolicy, retry_after
from syncline.local.sandboxes.base import Reply, Request, Sandbox, route
from syncline.webhooks import verify


class Echo(Sandbox):
    service = "echo"

    def __init__(self) -> None:
        super().__init__(seed=7)
        self.tokens.clients["app"] = "s3cret"
        self.items: dict[str, Any] = {}

    @route("POST", r"/oauth/token")
    def token(self, request: Request) -> Reply:
        form = request.form()
        issued = self.tokens.issue(form.get("client_id", ""), form.get("client_secret", ""))
        if issued is None:
            return Reply(401, {"error": "invalid_client"})
        return Reply(200, {"access_token": issued[0], "expires_in": issued[1], "token_type": "Bearer"})

    @route("GET", r"/items/(?P<key>[^/]+)")
    def get_item(self, request: Request) -> Reply:
        if not self.tokens.valid(request.bearer()):
            return Reply(401, {"error": "invalid_token"})
        key = request.params["key"]
        return Reply(200, self.items[key]) if key in self.items else Reply(404, {"message": f"no item {key}"})

    @route("PUT", r"/items/(?P<key>[^/]+)")
    def put_item(self, request: Request) -> Reply:
        document = request.json()
        if not isinstance(document, dict) or "qty" not in document:
            return Reply(400, {"message": "qty is required"})
        self.items[request.params["key"]] = document
        self.deliver("item/updated", {"key": request.params["key"], **document})
        return Reply(200, document)


@pytest.fixture
def sandbox() -> Any:
    with Echo() as server:
        yield server


def _api(sandbox: Echo, sleeps: list[float], **kwargs: Any) -> HttpApi:
    token = {"value": ""}

    def refresh() -> None:
        response = httpx.post(f"{sandbox.url}/oauth/token", data={"client_id": "app", "client_secret": "s3cret"})
        token["value"] = response.json()["access_token"]

    refresh()
    return HttpApi(
        "echo",
        sandbox.url,
        retry=RetryPolicy(attempts=4, sleep=sleeps.append),
        auth=lambda: {"Authorization": f"Bearer {token['value']}"},
        on_unauthorized=refresh,
        **kwargs,
    )


def test_transient_failures_are_retried_until_the_request_lands(sandbox: Echo) -> None:
    sleeps: list[float] = []
    api = _api(sandbox, sleeps)
    sandbox.faults.add("status", times=1, status=503)
    sandbox.faults.add("drop", times=1)
    sandbox.faults.add("status", times=1, status=502)
    assert api.json("PUT", "/items/A", json={"qty": 3}) == {"qty": 3}
    assert api.retries == 3 and len(sleeps) == 3
    assert sandbox.faults.injected == {"status": 2, "drop": 1}
    assert sandbox.requests["PUT /items/A"] == 4


def test_a_429_waits_exactly_the_retry_after_the_service_asked_for(sandbox: Echo) -> None:
    sleeps: list[float] = []
    api = _api(sandbox, sleeps)
    sandbox.faults.add("rate_limit", times=1)  # base sandbox: 429 with Retry-After: 1
    api.json("PUT", "/items/B", json={"qty": 1})
    assert sleeps == [1.0]


def test_a_request_that_keeps_failing_raises_a_retryable_error_after_the_last_attempt(sandbox: Echo) -> None:
    sleeps: list[float] = []
    api = _api(sandbox, sleeps)
    sandbox.faults.add("status", status=500)  # until cleared
    with pytest.raises(ApiError) as failure:
        api.get("/items/A")
    assert failure.value.retryable and failure.value.status == 500
    assert sandbox.requests["GET /items/A"] == 4 and len(sleeps) == 3


def test_other_4xx_are_not_retried_and_carry_the_services_message(sandbox: Echo) -> None:
    sleeps: list[float] = []
    api = _api(sandbox, sleeps)
    with pytest.raises(ApiError) as failure:
        api.request("PUT", "/items/C", json={"nope": 1})
    assert not failure.value.retryable and failure.value.status == 400
    assert "qty is required" in str(failure.value)
    assert sandbox.requests["PUT /items/C"] == 1 and sleeps == []


def test_an_expired_token_is_refreshed_once_and_the_request_retried(sandbox: Echo) -> None:
    sleeps: list[float] = []
    api = _api(sandbox, sleeps)
    api.json("PUT", "/items/D", json={"qty": 5})
    sandbox.tokens.expire_all()
    assert api.json("GET", "/items/D") == {"qty": 5}
    assert sandbox.tokens.issued_count == 2 and sandbox.requests["GET /items/D"] == 2


def test_a_second_401_after_the_refresh_is_a_real_refusal(sandbox: Echo) -> None:
    api = HttpApi("echo", sandbox.url, retry=RetryPolicy(sleep=lambda _: None), on_unauthorized=lambda: None)
    with pytest.raises(ApiError) as failure:
        api.get("/items/D")
    assert failure.value.status == 401 and not failure.value.retryable
    assert sandbox.requests["GET /items/D"] == 2


def test_a_timeout_is_retried(sandbox: Echo) -> None:
    sleeps: list[float] = []
    api = _api(sandbox, sleeps, timeout=httpx.Timeout(0.2))
    api.json("PUT", "/items/E", json={"qty": 2})
    sandbox.faults.add("timeout", times=1, seconds=0.5)
    assert api.json("GET", "/items/E") == {"qty": 2}
    assert sandbox.faults.injected["timeout"] == 1 and len(sleeps) == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now) == 30.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    delays = [policy.backoff(attempt) for attempt in range(1, 8) for _ in range(50)]
    assert all(0 <= delay <= 4.0 for delay in delays)
    assert len({round(delay, 6) for delay in delays}) > 100  # jittered, not a fixed schedule


def test_sandbox_webhooks_arrive_signed_with_the_subscriptions_scheme(sandbox: Echo) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(Sandbox):
        @route("POST", r"/hook")
        def hook(self, request: Request) -> Reply:
            received.append((dict(request.headers), request.body))
            return Reply(200)

    with Receiver() as receiver:
        sandbox.subscribe(f"{receiver.url}/hook", scheme="github", secret="whk")
        _api(sandbox, []).json("PUT", "/items/F", json={"qty": 9})
    assert sandbox.delivered == [("item/updated", 200)]
    headers, body = received[0]
    verify("github", "whk", headers, body)
    assert json.loads(body) == {"key": "F", "qty": 9}


def test_an_unknown_route_is_a_404_with_a_reason(sandbox: Echo) -> None:
    response = httpx.get(f"{sandbox.url}/nowhere")
    assert response.status_code == 404 and "no route" in response.json()["message"]
