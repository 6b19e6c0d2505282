"""The shared OAuth2 token over real HTTP (Fracttal sandbox) with the token item in DynamoDB (moto server)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from syncline.adapters.tokens_dynamodb import DynamoTokenStore
from syncline.connectors.fracttal import FracttalClient, FracttalSettings
from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.oauth2 import ClientCredentials, OAuth2ClientCredentials, OAuth2Settings
from syncline.local.sandboxes.fracttal import FracttalSandbox

KEY, SECRET = "fracttal-key", "fracttal-secret-value"
TOKEN_PATH = "POST /oauth/token"
ITEM_PATH = "GET /api/inventories/P-1"


@pytest.fixture
def sandbox() -> Iterator[FracttalSandbox]:
    with FracttalSandbox(clients={KEY: SECRET}, token_lifetime=3600) as server:
        server.add_item("WH-1", "P-1", stock=5)
        yield server


@pytest.fixture
def store(stack: Any) -> DynamoTokenStore:
    return DynamoTokenStore(boto3.client("dynamodb"), stack.resources.table)


def _tokens(sandbox: FracttalSandbox, store: DynamoTokenStore, **options: Any) -> OAuth2ClientCredentials:
    clock = options.pop("clock", time.time)
    sleep = options.pop("sleep", lambda _s: time.sleep(0.01))
    secret = options.pop("secret", SECRET)
    settings = OAuth2Settings(provider="fracttal", token_url=f"{sandbox.url}/oauth/token", **options)
    return OAuth2ClientCredentials(
        settings,
        lambda: ClientCredentials(KEY, secret),
        store,
        retry=RetryPolicy(attempts=4, sleep=lambda _s: None),
        clock=clock,
        sleep=sleep,
    )


def _client(sandbox: FracttalSandbox, tokens: OAuth2ClientCredentials) -> FracttalClient:
    settings = FracttalSettings(base_url=f"{sandbox.url}/api", warehouse_code="WH-1")
    return FracttalClient(settings, tokens, retry=RetryPolicy(attempts=4, sleep=lambda _s: None))


def test_sixteen_cold_invocations_call_the_token_endpoint_once(
    sandbox: FracttalSandbox, store: DynamoTokenStore
) -> None:
    # Given 16 invocations with cold caches, started together
    workers = 16
    barrier = threading.Barrier(workers)

    providers: list[OAuth2ClientCredentials] = []

    def invocation(_: int) -> tuple[str, Any]:
        tokens = _tokens(sandbox, store)
        providers.append(tokens)
        client = _client(sandbox, tokens)
        barrier.wait()
        item = client.get_item("P-1")
        return tokens.token().fingerprint, item

    # When each reads an item
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(invocation, range(workers)))

    # Then exactly one of them fetched a token (single flight), and all used it. On a loaded machine the one
    # fetch's HTTP request may itself be retried after a timeout: that is the transport, not a second refresh.
    assert sum(tokens.fetches for tokens in providers) == 1
    assert sandbox.tokens.issued_count == sandbox.requests[TOKEN_PATH] >= 1
    assert len({fingerprint for fingerprint, _ in results}) == 1
    assert all(item is not None and item.code == "P-1" for _, item in results)
    assert sandbox.requests[ITEM_PATH] >= workers  # a 401 would have cost a second fetch, ruled out above
    state = store.load("fracttal")
    assert state.token is not None and state.lease_owner is None


def test_the_token_is_refreshed_before_it_expires(sandbox: FracttalSandbox, store: DynamoTokenStore) -> None:
    offset = [0.0]
    tokens = _tokens(sandbox, store, clock=lambda: time.time() + offset[0], refresh_skew_seconds=300)
    client = _client(sandbox, tokens)
    client.get_item("P-1")
    first = tokens.token().fingerprint

    offset[0] = 3600 - 299  # under five minutes left by the token's own expiry
    client.get_item("P-1")

    assert sandbox.requests[TOKEN_PATH] == 2
    assert tokens.token().fingerprint != first
    assert store.load("fracttal").token.fingerprint == tokens.token().fingerprint  # type: ignore[union-attr]


def test_expired_tokens_refresh_once_and_retry_once_across_invocations(
    sandbox: FracttalSandbox, store: DynamoTokenStore
) -> None:
    # Given two invocations holding the same token
    a, b = _tokens(sandbox, store), _tokens(sandbox, store)
    client_a, client_b = _client(sandbox, a), _client(sandbox, b)
    client_a.get_item("P-1")
    client_b.get_item("P-1")
    assert sandbox.requests[TOKEN_PATH] == 1

    # When the provider expires every token early
    sandbox.tokens.expire_all()
    client_a.get_item("P-1")
    client_b.get_item("P-1")

    # Then a's 401 refreshed once; b's 401 found the refreshed token already stored (compare-and-invalidate)
    assert sandbox.requests[TOKEN_PATH] == 2
    assert (a.invalidations, b.invalidations) == (1, 0)
    assert sandbox.requests[ITEM_PATH] == 2 + 2 * 2  # each call after expiry: one 401 and one retry
    assert client_a.api.retries == 0 and client_b.api.retries == 0


def test_a_second_401_after_the_refresh_is_a_real_refusal(sandbox: FracttalSandbox, store: DynamoTokenStore) -> None:
    client = _client(sandbox, _tokens(sandbox, store))
    sandbox.faults.add("status", status=401, times=2, path=r"^/api/")

    with pytest.raises(ApiError) as failure:
        client.get_item("P-1")

    assert failure.value.status == 401 and not failure.value.retryable
    assert sandbox.requests[TOKEN_PATH] == 2  # the first token, then exactly one forced refresh
    assert sandbox.requests[ITEM_PATH] == 2


def test_a_dead_lease_holder_is_taken_over(sandbox: FracttalSandbox, store: DynamoTokenStore) -> None:
    # Given an invocation that took the refresh lease and died
    now = [time.time()]
    assert store.acquire("fracttal", "dead-invocation", now=now[0], until=now[0] + 15)

    def sleep(seconds: float) -> None:
        now[0] += seconds  # fake time: the wait costs nothing

    tokens = _tokens(sandbox, store, clock=lambda: now[0], sleep=sleep, lease_seconds=15, poll_seconds=1)

    # When another invocation needs a token
    start = now[0]
    item = _client(sandbox, tokens).get_item("P-1")

    # Then it waited out the lease, took it over, and fetched exactly one token
    assert item is not None
    assert sandbox.requests[TOKEN_PATH] == 1
    assert 15 <= now[0] - start <= 17
    assert store.load("fracttal").lease_owner is None


def test_token_endpoint_5xx_is_retried_and_a_bad_secret_is_not(
    sandbox: FracttalSandbox, store: DynamoTokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="syncline")
    sandbox.faults.add("status", status=503, times=2, path=r"^/oauth/token$")
    tokens = _tokens(sandbox, store)
    token = tokens.token()
    assert sandbox.requests[TOKEN_PATH] == 3

    wrong = _tokens(sandbox, store, secret="wrong-secret-value")
    store.invalidate("fracttal", token.fingerprint)
    with pytest.raises(ApiError) as failure:
        wrong.token()
    assert failure.value.status == 401 and not failure.value.retryable
    assert sandbox.requests[TOKEN_PATH] == 4
    assert "wrong-secret-value" not in str(failure.value)
    assert token.value not in caplog.text and SECRET not in caplog.text
    assert store.load("fracttal").lease_owner is None  # a failed refresh releases its lease
