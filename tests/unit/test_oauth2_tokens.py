"""The OAuth2 token provider against an in-memory store and a fake token endpoint (no sockets)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from syncline.connectors.http import ApiError, HttpApi, RetryPolicy
from syncline.connectors.oauth2 import (
    AccessToken,
    ClientCredentials,
    InMemoryTokenStore,
    OAuth2ClientCredentials,
    OAuth2Settings,
    parse_token_response,
)

SECRET = "s3cr3t-value-never-logged"
START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Endpoint:
    """A token endpoint: counts calls, issues token-1, token-2, ... (or fails with ``status``)."""

    def __init__(self, expires_in: int | None = 3600) -> None:
        self.calls: list[httpx.Request] = []
        self.expires_in = expires_in
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "invalid_client", "error_description": "bad client"})
        body: dict[str, Any] = {"access_token": f"token-{len(self.calls)}", "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)


def _provider(
    store: InMemoryTokenStore, clock: Clock, endpoint: Endpoint, owner: str = "me", **settings: Any
) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        OAuth2Settings(provider="acme", token_url="https://auth.example/oauth/token", **settings),
        lambda: ClientCredentials("client-1", SECRET),
        store,
        client=httpx.Client(transport=httpx.MockTransport(endpoint)),
        retry=RetryPolicy(attempts=3, sleep=lambda _s: None),
        clock=clock,
        sleep=clock.sleep,
        owner=owner,
    )


def test_a_cached_token_is_reused_until_the_skew_then_refreshed_once() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint(expires_in=3600)
    tokens = _provider(store, clock, endpoint, refresh_skew_seconds=300)

    first = tokens.token()
    clock.now += 3600 - 301
    assert tokens.token() is first
    assert len(endpoint.calls) == 1

    clock.now += 2  # now under 300 s left: refresh before expiry
    second = tokens.token()
    assert second.value == "token-2"
    assert len(endpoint.calls) == 2
    assert store.load("acme").token == second
    assert store.load("acme").lease_owner is None


def test_a_second_invocation_uses_the_stored_token_without_calling_the_endpoint() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    _provider(store, clock, endpoint, owner="a").token()
    other = _provider(store, clock, endpoint, owner="b")

    assert other.token().value == "token-1"
    assert len(endpoint.calls) == 1


def test_while_another_refreshes_the_old_token_serves_until_it_really_expires() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint(expires_in=600)
    old = _provider(store, clock, endpoint, owner="a").token()
    clock.now += 400  # inside the skew, still valid
    assert store.acquire("acme", "someone-else", now=clock.now, until=clock.now + 15)

    assert _provider(store, clock, endpoint, owner="b").token() == old
    assert len(endpoint.calls) == 1
    assert clock.sleeps == []


def test_a_waiter_polls_and_takes_the_winners_token() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    assert store.acquire("acme", "winner", now=clock.now, until=clock.now + 15)
    winners = AccessToken("winner-token", expires_at=clock.now + 3600)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            assert store.save("acme", winners, owner="winner")

    tokens = _provider(store, clock, endpoint, owner="waiter")
    tokens._sleep = sleep

    assert tokens.token() == winners
    assert len(endpoint.calls) == 0
    assert len(clock.sleeps) == 3


def test_a_dead_lease_holder_is_taken_over_after_its_lease_expires() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    assert store.acquire("acme", "dead", now=clock.now, until=clock.now + 15)
    tokens = _provider(store, clock, endpoint, owner="heir", lease_seconds=15, poll_seconds=1, max_wait_seconds=60)

    token = tokens.token()

    assert token.value == "token-1"
    assert len(endpoint.calls) == 1
    assert 15 <= clock.now - START <= 17  # waited out the lease, in polls of 1 s (fake clock)
    assert store.load("acme").lease_owner is None


def test_waiting_longer_than_max_wait_fails_retryably() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    assert store.acquire("acme", "slow", now=clock.now, until=clock.now + 1000)
    tokens = _provider(store, clock, endpoint, owner="me", poll_seconds=1, max_wait_seconds=5)

    with pytest.raises(ApiError) as failure:
        tokens.token()

    assert failure.value.retryable
    assert len(endpoint.calls) == 0
    assert len(clock.sleeps) == 5


def test_unauthorized_invalidates_only_the_token_that_failed() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    a, b = _provider(store, clock, endpoint, owner="a"), _provider(store, clock, endpoint, owner="b")
    a.headers()
    b.headers()  # both hold token-1

    a.on_unauthorized()  # token-1 is still the shared one: invalidate it, refresh once
    assert len(endpoint.calls) == 2
    assert store.load("acme").token is not None and store.load("acme").token.value == "token-2"  # type: ignore[union-attr]

    b.on_unauthorized()  # token-1 failed for b too, but the shared token is token-2 already: no refresh
    assert len(endpoint.calls) == 2
    assert b.headers() == {"Authorization": "Bearer token-2"}
    assert (a.invalidations, b.invalidations) == (1, 0)


def test_http_api_refreshes_once_and_retries_once_on_401() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    tokens = _provider(store, clock, endpoint)
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(401 if len(seen) == 1 else 200, json={"ok": True})

    http = HttpApi(
        "acme",
        "https://api.example",
        client=httpx.Client(transport=httpx.MockTransport(api)),
        auth=tokens.headers,
        on_unauthorized=tokens.on_unauthorized,
    )
    assert http.json("GET", "things") == {"ok": True}
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert len(endpoint.calls) == 2


def test_client_credentials_go_in_the_body_or_as_basic() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    _provider(store, clock, endpoint, scope="api").token()
    form = dict(parse_qsl(endpoint.calls[0].content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "scope": "api",
        "client_id": "client-1",
        "client_secret": SECRET,
    }

    basic_store, basic_endpoint = InMemoryTokenStore(), Endpoint()
    _provider(basic_store, clock, basic_endpoint, client_auth="basic").token()
    request = basic_endpoint.calls[0]
    assert request.headers["authorization"].startswith("Basic ")
    assert SECRET not in request.content.decode()


def test_a_refused_client_raises_without_the_secret_and_releases_the_lease() -> None:
    store, clock, endpoint = InMemoryTokenStore(), Clock(), Endpoint()
    endpoint.status = 401
    tokens = _provider(store, clock, endpoint)

    with pytest.raises(ApiError) as failure:
        tokens.token()

    assert failure.value.status == 401 and not failure.value.retryable
    assert SECRET not in str(failure.value)
    assert store.load("acme").lease_owner is None


def test_parse_token_response_defaults_lifetime_and_keeps_only_safe_extras() -> None:
    body = {
        "access_token": "00D!abc",
        "token_type": "Bearer",
        "instance_url": "https://x.my.salesforce.com",
        "signature": "sig",
        "issued_at": "1700000000000",
    }
    token = parse_token_response(body, now=START, default_lifetime=900)

    assert token.expires_at == START + 900
    assert token.extra == {
        "instance_url": "https://x.my.salesforce.com",
        "token_type": "Bearer",
        "issued_at": "1700000000000",
    }
    assert "00D!abc" not in repr(token)
    with pytest.raises(ApiError):
        parse_token_response({"token_type": "Bearer"}, now=START, default_lifetime=900)
    with pytest.raises(ApiError):
        parse_token_response({"access_token": "x", "token_type": "MAC"}, now=START, default_lifetime=900)


def test_a_refresher_whose_lease_was_taken_over_keeps_its_token_but_does_not_overwrite() -> None:
    store = InMemoryTokenStore()
    assert store.acquire("acme", "slow", now=START, until=START + 15)
    assert store.acquire("acme", "heir", now=START + 16, until=START + 31)  # the slow one's lease expired
    assert not store.save("acme", AccessToken("late", expires_at=START + 3600), owner="slow")
    assert store.save("acme", AccessToken("heirs", expires_at=START + 3600), owner="heir")
    assert store.saves == 1
