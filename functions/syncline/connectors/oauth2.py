"""OAuth2 client-credentials access tokens, shared by every invocation through a token store.

One access token per provider lives in the store (``TK#{provider}`` in DynamoDB). An invocation uses the
token it holds in memory while it is fresh, else reads the store. A token with less than ``refresh_skew``
seconds left is refreshed *single-flight*: the invocation that wins a short lease (a conditional write of
owner + lease expiry) calls the token endpoint and stores the new token, releasing the lease in the same
write; the others keep using the old token while it is still valid, or poll the store briefly for the
winner's token when there is none. A lease holder that died is taken over once its lease has expired.

A 401 from the API means the token was revoked or expired early: ``on_unauthorized`` invalidates the
stored token only if it is still the one that failed (compare-and-invalidate on its fingerprint), so a
token another invocation already refreshed is never thrown away, then gets a fresh one; ``HttpApi``
retries the request once.

Client credentials come from a callable (Secrets Manager in production) on each refresh, never from
configuration. Token values are never logged, and never appear in a ``repr`` or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from syncline.connectors.http import ApiError, HttpApi, RetryPolicy


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)


CredentialProvider = Callable[[], ClientCredentials]


def token_fingerprint(value: str) -> str:
    """A short one-way digest of a token: what the store compares and what logs may show."""
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class AccessToken:
    """A bearer token, when it expires (epoch seconds), and the non-secret extras the endpoint returned
    (Salesforce's ``instance_url``)."""

    value: str = field(repr=False)
    expires_at: float
    issued_at: float = 0.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return token_fingerprint(self.value)

    def usable(self, now: float) -> bool:
        return now < self.expires_at

    def fresh(self, now: float, skew: float) -> bool:
        return now < self.expires_at - skew


@dataclass(frozen=True)
class TokenState:
    """What the store holds for one provider: the token (if any) and the refresh lease (if held)."""

    token: AccessToken | None = None
    lease_owner: str | None = None
    lease_until: float = 0.0


class TokenStore(Protocol):
    def load(self, provider: str) -> TokenState: ...

    def acquire(self, provider: str, owner: str, *, now: float, until: float) -> bool:
        """Take the refresh lease if it is free, expired or already ``owner``'s."""

    def save(self, provider: str, token: AccessToken, *, owner: str) -> bool:
        """Store ``token`` and release the lease, only while ``owner`` still holds it."""

    def release(self, provider: str, owner: str) -> None: ...

    def invalidate(self, provider: str, fingerprint: str) -> bool:
        """Drop the stored token only if it is still the one with ``fingerprint``."""


class InMemoryTokenStore:
    """The store for unit tests and single-process use, with the same conditional semantics."""

    def __init__(self) -> None:
        self._states: dict[str, TokenState] = {}
        self._lock = threading.Lock()
        self.saves = 0

    def load(self, provider: str) -> TokenState:
        with self._lock:
            return self._states.get(provider, TokenState())

    def acquire(self, provider: str, owner: str, *, now: float, until: float) -> bool:
        with self._lock:
            state = self._states.get(provider, TokenState())
            if state.lease_owner not in {None, owner} and state.lease_until >= now:
                return False
            self._states[provider] = replace(state, lease_owner=owner, lease_until=until)
            return True

    def save(self, provider: str, token: AccessToken, *, owner: str) -> bool:
        with self._lock:
            if self._states.get(provider, TokenState()).lease_owner != owner:
                return False
            self._states[provider] = TokenState(token)
            self.saves += 1
            return True

    def release(self, provider: str, owner: str) -> None:
        with self._lock:
            state = self._states.get(provider, TokenState())
            if state.lease_owner == owner:
                self._states[provider] = replace(state, lease_owner=None, lease_until=0.0)

    def invalidate(self, provider: str, fingerprint: str) -> bool:
        with self._lock:
            state = self._states.get(provider, TokenState())
            if state.token is None or state.token.fingerprint != fingerprint:
                return False
            self._states[provider] = replace(state, token=None)
            return True


class OAuth2Settings(BaseModel):
    """Where and how to get tokens for one provider. No credentials here: they come from a provider callable."""

    model_config = ConfigDict(frozen=True)

    provider: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    token_url: str = Field(min_length=1)
    scope: str | None = None
    client_auth: Literal["body", "basic"] = Field(
        "body", description="client id and secret in the form body, or as HTTP Basic (RFC 6749 2.3.1)"
    )
    refresh_skew_seconds: float = Field(300.0, ge=0, description="refresh when less than this is left")
    default_lifetime_seconds: float = Field(
        900.0, gt=0, description="lifetime assumed when the endpoint sends no expires_in (Salesforce does not)"
    )
    lease_seconds: float = Field(15.0, gt=0, description="how long a refresher may hold the lease")
    poll_seconds: float = Field(0.1, gt=0, description="how often a waiting invocation re-reads the store")
    max_wait_seconds: float = Field(20.0, gt=0, description="how long to wait for another refresher's token")


class OAuth2ClientCredentials:
    """Bearer tokens for one provider, shared through ``store``; plug into ``HttpApi`` as
    ``auth=tokens.headers, on_unauthorized=tokens.on_unauthorized``."""

    def __init__(
        self,
        settings: OAuth2Settings,
        credentials: CredentialProvider,
        store: TokenStore,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self.owner = owner or uuid.uuid4().hex
        self._endpoint = HttpApi(f"{settings.provider} token endpoint", settings.token_url, client=client, retry=retry)
        self._memory: AccessToken | None = None
        self._lock = threading.Lock()
        self._last = threading.local()  # the token handed to this thread, which a 401 then names
        self.fetches = 0  # calls to the token endpoint made by this instance
        self.invalidations = 0

    @property
    def provider(self) -> str:
        return self.settings.provider

    def token(self) -> AccessToken:
        """A token with more than the skew left if one can be had, else a still valid one being refreshed."""
        now = self._clock()
        memory = self._memory
        if memory is not None and memory.fresh(now, self.settings.refresh_skew_seconds):
            return memory
        with self._lock:  # one refresher per process; the store's lease makes it one across processes
            return self._shared_token()

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header for the next request (``HttpApi``'s ``auth`` callable)."""
        token = self.token()
        self._last.token = token
        return {"Authorization": f"Bearer {token.value}"}

    def on_unauthorized(self) -> None:
        """A 401: invalidate the token that failed if it is still the shared one, then get a fresh one."""
        failed: AccessToken | None = getattr(self._last, "token", None)
        if failed is not None:
            if self._store.invalidate(self.provider, failed.fingerprint):
                self.invalidations += 1
            if self._memory is not None and self._memory.fingerprint == failed.fingerprint:
                self._memory = None
        self.token()

    def _shared_token(self) -> AccessToken:
        skew = self.settings.refresh_skew_seconds
        start = self._clock()
        while True:
            now = self._clock()
            memory = self._memory
            if memory is not None and memory.fresh(now, skew):
                return memory
            state = self._store.load(self.provider)
            if state.token is not None and state.token.fresh(now, skew):
                self._memory = state.token
                return state.token
            if self._store.acquire(self.provider, self.owner, now=now, until=now + self.settings.lease_seconds):
                return self._refresh_under_lease()
            # Someone else is refreshing: the old token serves until it really expires.
            if state.token is not None and state.token.usable(now):
                self._memory = state.token
                return state.token
            if now - start >= self.settings.max_wait_seconds:
                raise ApiError(self.provider, None, "no token: another refresh did not finish in time", retryable=True)
            self._sleep(self.settings.poll_seconds)

    def _refresh_under_lease(self) -> AccessToken:
        try:
            state = self._store.load(self.provider)  # a refresher may have finished between our read and our lease
            now = self._clock()
            if state.token is not None and state.token.fresh(now, self.settings.refresh_skew_seconds):
                self._store.release(self.provider, self.owner)
                self._memory = state.token
                return state.token
            token = self._fetch()
        except BaseException:
            self._store.release(self.provider, self.owner)
            raise
        # If our lease was taken over meanwhile the save is refused; our token is still valid for us.
        self._store.save(self.provider, token, owner=self.owner)
        self._memory = token
        return token

    def _fetch(self) -> AccessToken:
        credentials = self._credentials()
        form = {"grant_type": "client_credentials"}
        headers = {"Accept": "application/json"}
        if self.settings.scope:
            form["scope"] = self.settings.scope
        if self.settings.client_auth == "basic":
            pair = f"{quote(credentials.client_id, safe='')}:{quote(credentials.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": credentials.client_id, "client_secret": credentials.client_secret}
        self.fetches += 1
        body = self._endpoint.json("POST", self.settings.token_url, data=form, headers=headers)
        return parse_token_response(body, now=self._clock(), default_lifetime=self.settings.default_lifetime_seconds)

    def close(self) -> None:
        self._endpoint.close()


def parse_token_response(body: object, *, now: float, default_lifetime: float) -> AccessToken:
    """An ``AccessToken`` from a token endpoint's JSON (RFC 6749 5.1), keeping non-secret string extras."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise ApiError("token endpoint", 200, "response has no access_token", retryable=False)
    token_type = str(body.get("token_type") or "Bearer")
    if token_type.lower() != "bearer":
        raise ApiError("token endpoint", 200, f"unsupported token_type {token_type[:20]!r}", retryable=False)
    try:
        lifetime = float(body["expires_in"]) if body.get("expires_in") is not None else default_lifetime
    except (TypeError, ValueError):
        lifetime = default_lifetime
    secret_names = {"access_token", "refresh_token", "id_token", "signature"}
    extra = {
        name: value for name, value in body.items() if isinstance(value, str) and name not in secret_names and value
    }
    return AccessToken(body["access_token"], expires_at=now + max(0.0, lifetime), issued_at=now, extra=extra)
