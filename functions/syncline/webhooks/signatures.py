"""Webhook signature verification for the providers Syncline receives events from.

Every scheme is an HMAC over some framing of the raw request body. A scheme object knows
three things: how to turn the configured secret into key bytes, how to verify a received
request, and how to sign one (for tests and local sandboxes). ``verify`` and ``sign`` look
schemes up by name in ``SCHEMES``; the shared helpers below do the HMAC, the constant-time
comparison, the timestamp checks and the case-insensitive header lookup.

Errors: ``SignatureError`` (a ``ValueError``) means "reject this request" and carries a
short reason that never contains a secret or an expected signature. A plain ``ValueError``
means the receiver is misconfigured (empty secret, secret that is not base64, bad option).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, Protocol

__all__ = [
    "SCHEMES",
    "HmacScheme",
    "HubSpotScheme",
    "MalformedSignatureHeader",
    "Outgoing",
    "Scheme",
    "SignatureError",
    "SignedRequest",
    "SlackScheme",
    "StandardWebhooksScheme",
    "StripeScheme",
    "hubspot_signed_uri",
    "sign",
    "verify",
]

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]
Secret = str | bytes

_ALGORITHMS: Final = frozenset({"sha1", "sha256", "sha512"})
_ENCODINGS: Final = frozenset({"hex", "base64"})
# A Unix time in seconds or milliseconds fits in far fewer digits; the cap keeps int()
# away from attacker-sized strings.
_MAX_TIMESTAMP_DIGITS: Final = 16


class SignatureError(ValueError):
    """The request's signature is missing, malformed, stale or does not match."""


class MalformedSignatureHeader(SignatureError):
    """A signature or timestamp header is present but not in the scheme's format (a client error, not a forgery)."""


@dataclass(frozen=True)
class SignedRequest:
    """The parts of a received request that a scheme may sign over."""

    headers: Mapping[str, str]
    """Header names lower-cased; build with ``SignedRequest.build``."""
    body: bytes
    method: str
    url: str
    now: float
    tolerance: int

    @classmethod
    def build(
        cls, headers: Mapping[str, str], body: bytes, *, method: str, url: str, now: float, tolerance: int
    ) -> SignedRequest:
        """Normalise header names once so every lookup is case-insensitive."""
        lowered = {name.lower(): value for name, value in headers.items()}
        return cls(MappingProxyType(lowered), body, method, url, now, tolerance)

    def header(self, name: str) -> str:
        """Return the stripped header value; a missing or blank header is an error."""
        value = self.headers.get(name.lower(), "").strip()
        if not value:
            raise SignatureError(f"missing header {name}")
        return value

    def has_header(self, name: str) -> bool:
        """Whether the header is present and non-blank."""
        return bool(self.headers.get(name.lower(), "").strip())


@dataclass(frozen=True)
class Outgoing:
    """What a sender signs over when ``sign`` builds headers for a sandbox or a test."""

    body: bytes
    timestamp: int
    """Unix seconds."""
    msg_id: str
    method: str = "POST"
    url: str = ""


class Scheme(Protocol):
    """A webhook signature scheme: secret handling, verification and signing."""

    @property
    def name(self) -> str:
        """Registry name, used in error messages."""
        ...

    def key(self, secret: Secret) -> bytes:
        """Turn a configured secret into HMAC key bytes."""
        ...

    def verify(self, keys: Sequence[bytes], request: SignedRequest) -> None:
        """Raise ``SignatureError`` unless one of ``keys`` signed ``request``."""
        ...

    def sign(self, key: bytes, outgoing: Outgoing) -> dict[str, str]:
        """Return the headers a sender using ``key`` would set."""
        ...


# --- shared helpers -------------------------------------------------------------------------


def _digest(key: bytes, message: bytes, algorithm: Algorithm) -> bytes:
    return hmac.new(key, message, algorithm).digest()


def _encode(digest: bytes, encoding: Encoding) -> str:
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode("ascii")


def _expect_any(
    keys: Sequence[bytes],
    message: bytes,
    candidates: Sequence[str],
    *,
    algorithm: Algorithm = "sha256",
    encoding: Encoding = "hex",
) -> None:
    """Pass if any key's MAC of ``message`` equals any candidate, compared in constant time.

    Several keys cover secret rotation; several candidates cover senders that sign with
    more than one secret (Standard Webhooks, Stripe). We compare the canonical text encoding
    rather than decoded bytes so that non-canonical base64 spellings are not accepted.
    """
    if not candidates:
        raise SignatureError("no supported signature in header")
    # Hex is case-insensitive by definition; base64 is not.
    received = [(c.lower() if encoding == "hex" else c).encode("utf-8") for c in candidates]
    for key in keys:
        expected = _encode(_digest(key, message, algorithm), encoding).encode("ascii")
        if any(hmac.compare_digest(expected, candidate) for candidate in received):
            return
    raise SignatureError("no matching signature")


def _parse_timestamp(value: str) -> int:
    """Parse a decimal Unix timestamp; refuse signs, spaces, underscores and fractions."""
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_TIMESTAMP_DIGITS:
        raise MalformedSignatureHeader("invalid timestamp")
    return int(value)


def _check_fresh(timestamp: float, request: SignedRequest) -> None:
    """Reject timestamps more than ``tolerance`` seconds from ``now`` in either direction."""
    if request.now - timestamp > request.tolerance:
        raise SignatureError("timestamp too old (outside tolerance)")
    if timestamp - request.now > request.tolerance:
        raise SignatureError("timestamp too new (outside tolerance)")


def _utf8_key(secret: Secret) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def _strip_prefix(value: str, prefix: str) -> str | None:
    return value[len(prefix) :] if value.startswith(prefix) else None


# --- schemes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HmacScheme:
    """Generic ``header: prefix + encode(HMAC(secret, body))``; also covers Shopify and GitHub.

    Use it directly for providers without a named scheme, e.g.
    ``verify(HmacScheme(header="X-Signature", algorithm="sha1", prefix="sha1="), ...)``.
    """

    header: str = "X-Signature"
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    prefix: str = ""
    name: str = "hmac"

    def __post_init__(self) -> None:
        # Literal types are not enforced at runtime and these usually come from config.
        if not self.header.strip():
            raise ValueError("HmacScheme.header must not be empty")
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"unsupported algorithm {self.algorithm!r}; use one of {sorted(_ALGORITHMS)}")
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"unsupported encoding {self.encoding!r}; use one of {sorted(_ENCODINGS)}")

    def key(self, secret: Secret) -> bytes:
        """The secret is used as its UTF-8 bytes."""
        return _utf8_key(secret)

    def verify(self, keys: Sequence[bytes], request: SignedRequest) -> None:
        """Check the single signature header against the raw body."""
        signature = _strip_prefix(request.header(self.header), self.prefix)
        if signature is None:
            raise SignatureError(f"{self.header} does not start with {self.prefix!r}")
        _expect_any(keys, request.body, [signature], algorithm=self.algorithm, encoding=self.encoding)

    def sign(self, key: bytes, outgoing: Outgoing) -> dict[str, str]:
        """Body-only signature; timestamp, id, method and url are not part of it."""
        digest = _digest(key, outgoing.body, self.algorithm)
        return {self.header: self.prefix + _encode(digest, self.encoding)}


@dataclass(frozen=True)
class StandardWebhooksScheme:
    """Standard Webhooks (and Svix): ``v1,<base64 HMAC(key, "{id}.{ts}.{body}")>`` entries.

    ``prefixes`` are the header families tried in order ("svix" then "webhook" for Svix).
    """

    name: str
    prefixes: tuple[str, ...] = ("webhook",)

    def key(self, secret: Secret) -> bytes:
        """A text secret is base64 (``whsec_`` prefix optional, padding optional); bytes are raw."""
        if isinstance(secret, bytes):
            return secret
        encoded = secret.strip().removeprefix("whsec_")
        # Some dashboards show the secret without its '=' padding.
        padded = encoded + "=" * (-len(encoded) % 4)
        try:
            return base64.b64decode(padded, validate=True)
        except binascii.Error:
            raise ValueError(f"{self.name} secret is not valid base64") from None

    def verify(self, keys: Sequence[bytes], request: SignedRequest) -> None:
        """Check id/timestamp/signature headers; any ``v1`` entry may match, others are skipped."""
        prefix = self._prefix_in(request)
        msg_id = request.header(f"{prefix}-id")
        raw_timestamp = request.header(f"{prefix}-timestamp")
        header = request.header(f"{prefix}-signature")
        _check_fresh(_parse_timestamp(raw_timestamp), request)
        # Entries of other versions (e.g. v1a, asymmetric) are not ours to check.
        candidates = [sig for version, sig in _version_entries(header) if version == "v1"]
        message = f"{msg_id}.{raw_timestamp}.".encode() + request.body
        _expect_any(keys, message, candidates, encoding="base64")

    def sign(self, key: bytes, outgoing: Outgoing) -> dict[str, str]:
        """Headers of the first (branded) family."""
        prefix = self.prefixes[0]
        message = f"{outgoing.msg_id}.{outgoing.timestamp}.".encode() + outgoing.body
        signature = _encode(_digest(key, message, "sha256"), "base64")
        return {
            f"{prefix}-id": outgoing.msg_id,
            f"{prefix}-timestamp": str(outgoing.timestamp),
            f"{prefix}-signature": f"v1,{signature}",
        }

    def _prefix_in(self, request: SignedRequest) -> str:
        # Use the first family the sender used, so errors name the headers it actually sent.
        return next((p for p in self.prefixes if request.has_header(f"{p}-id")), self.prefixes[0])


def _version_entries(header: str) -> Iterator[tuple[str, str]]:
    for entry in header.split():
        version, _, signature = entry.partition(",")
        yield version, signature


@dataclass(frozen=True)
class StripeScheme:
    """Stripe: ``Stripe-Signature: t=<ts>,v1=<hex HMAC(secret, "{t}.{body}")>[,v1=...][,v0=...]``."""

    name: str = "stripe"
    header: str = "Stripe-Signature"

    def key(self, secret: Secret) -> bytes:
        """The whole secret, ``whsec_`` included, is the key as UTF-8; it is not base64."""
        return _utf8_key(secret)

    def verify(self, keys: Sequence[bytes], request: SignedRequest) -> None:
        """Parse ``t`` and every ``v1``; v0 and unknown schemes are ignored."""
        fields = _stripe_fields(request.header(self.header))
        timestamps = fields.get("t", [])
        if len(timestamps) != 1:
            raise MalformedSignatureHeader(f"malformed {self.header} header: expected one t=")
        _check_fresh(_parse_timestamp(timestamps[0]), request)
        message = f"{timestamps[0]}.".encode() + request.body
        _expect_any(keys, message, fields.get("v1", []))

    def sign(self, key: bytes, outgoing: Outgoing) -> dict[str, str]:
        """One v1 signature."""
        message = f"{outgoing.timestamp}.".encode() + outgoing.body
        signature = _encode(_digest(key, message, "sha256"), "hex")
        return {self.header: f"t={outgoing.timestamp},v1={signature}"}


def _stripe_fields(header: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    return fields


@dataclass(frozen=True)
class SlackScheme:
    """Slack: ``X-Slack-Signature: v0=<hex HMAC(secret, "v0:{ts}:{body}")>``."""

    name: str = "slack"
    signature_header: str = "X-Slack-Signature"
    timestamp_header: str = "X-Slack-Request-Timestamp"

    def key(self, secret: Secret) -> bytes:
        """The signing secret is used as its UTF-8 bytes."""
        return _utf8_key(secret)

    def verify(self, keys: Sequence[bytes], request: SignedRequest) -> None:
        """Timestamp in seconds; signature must carry the ``v0=`` version prefix."""
        raw_timestamp = request.header(self.timestamp_header)
        signature = _strip_prefix(request.header(self.signature_header), "v0=")
        _check_fresh(_parse_timestamp(raw_timestamp), request)
        if signature is None:
            raise SignatureError(f"{self.signature_header} is not a v0 signature")
        _expect_any(keys, f"v0:{raw_timestamp}:".encode() + request.body, [signature])

    def sign(self, key: bytes, outgoing: Outgoing) -> dict[str, str]:
        """Slack-style headers."""
        message = f"v0:{outgoing.timestamp}:".encode() + outgoing.body
        signature = _encode(_digest(key, message, "sha256"), "hex")
        return {self.timestamp_header: str(outgoing.timestamp), self.signature_header: f"v0={signature}"}


# HubSpot signs the URI with these percent-escapes decoded (and only these); see
# hubspot_signed_uri. A full unquote would also touch %20 etc. and break the match.
_HUBSPOT_DECODED: Final = MappingProxyType(
    {
        "%3A": ":",
        "%2F": "/",
        "%3F": "?",
        "%40": "@",
        "%21": "!",
        "%24": "$",
        "%27": "'",
        "%28": "(",
        "%29": ")",
        "%2A": "*",
        "%2C": ",",
        "%3B": ";",
    }
)
_HUBSPOT_ESCAPE: Final = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)


def hubspot_signed_uri(url: str) -> str:
    """The URI as HubSpot signs it: the received URL with HubSpot's listed escapes decoded."""
    return _HUBSPOT_ESCAPE.sub(lambda match: _HUBSPOT_DECODED[match.group().upper()], url)


@dataclass(frozen=True)
class HubSpotScheme:
    """HubSpot v3: base64 HMAC(secret, method + uri + body + timestamp), timestamp in ms."""

    name: str = "hubspot"
    signature_header: str = "X-HubSpot-Signature-v3"
    timestamp_header: str = "X-HubSpot-Request-Timestamp"

    def key(self, secret: Secret) -> bytes:
        """The app's client secret is used as its UTF-8 bytes."""
        return _utf8_key(secret)

    def verify(self, keys: Sequence[bytes], request: SignedRequest) -> None:
        """``request.url`` must be the full URL HubSpot called (scheme, host, path, query)."""
        raw_timestamp = request.header(self.timestamp_header)
        signature = request.header(self.signature_header)
        _check_fresh(_parse_timestamp(raw_timestamp) / 1000, request)
        message = self._message(request.method, request.url, request.body, raw_timestamp)
        _expect_any(keys, message, [signature], encoding="base64")

    def sign(self, key: bytes, outgoing: Outgoing) -> dict[str, str]:
        """``timestamp`` is in seconds; the header carries milliseconds."""
        raw_timestamp = str(outgoing.timestamp * 1000)
        message = self._message(outgoing.method, outgoing.url, outgoing.body, raw_timestamp)
        signature = _encode(_digest(key, message, "sha256"), "base64")
        return {self.timestamp_header: raw_timestamp, self.signature_header: signature}

    @staticmethod
    def _message(method: str, url: str, body: bytes, raw_timestamp: str) -> bytes:
        return f"{method.upper()}{hubspot_signed_uri(url)}".encode() + body + raw_timestamp.encode()


SCHEMES: Final[Mapping[str, Scheme]] = MappingProxyType(
    {
        "shopify": HmacScheme(header="X-Shopify-Hmac-Sha256", encoding="base64", name="shopify"),
        "github": HmacScheme(header="X-Hub-Signature-256", prefix="sha256=", name="github"),
        "standard-webhooks": StandardWebhooksScheme("standard-webhooks"),
        "svix": StandardWebhooksScheme("svix", prefixes=("svix", "webhook")),
        "stripe": StripeScheme(),
        "hubspot": HubSpotScheme(),
        "slack": SlackScheme(),
        "hmac": HmacScheme(),
    }
)


# --- public entry points --------------------------------------------------------------------


def _resolve(scheme: str | Scheme) -> Scheme:
    if not isinstance(scheme, str):
        return scheme
    try:
        return SCHEMES[scheme]
    except KeyError:
        known = ", ".join(sorted(SCHEMES))
        raise SignatureError(f"unknown signature scheme {scheme!r}; known schemes: {known}") from None


def _keys(scheme: Scheme, secret: Secret | Sequence[Secret]) -> list[bytes]:
    # str and bytes are Sequences themselves, so test for them first.
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not secrets:
        raise ValueError("no webhook secret configured")
    keys = [scheme.key(s) for s in secrets]
    if not all(keys):
        raise ValueError(f"empty {scheme.name} webhook secret")
    return keys


def verify(
    scheme: str | Scheme,
    secret: Secret | Sequence[Secret],
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "POST",
    url: str = "",
    now: float | None = None,
    tolerance: int = 300,
) -> None:
    """Verify a received webhook; return ``None`` if authentic, else raise ``SignatureError``.

    ``scheme`` is a name from ``SCHEMES`` or a scheme object such as ``HmacScheme(...)``.
    ``secret`` may be a sequence of secrets during rotation; any one may match. ``body`` must
    be the raw bytes as received. ``method`` and ``url`` matter only for HubSpot. ``now``
    (Unix seconds, default ``time.time()``) and ``tolerance`` (seconds, both directions)
    apply to timestamped schemes. Misconfiguration (empty or undecodable secret, negative
    tolerance) raises a plain ``ValueError``.
    """
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    resolved = _resolve(scheme)
    keys = _keys(resolved, secret)
    request = SignedRequest.build(
        headers, body, method=method, url=url, now=time.time() if now is None else now, tolerance=tolerance
    )
    resolved.verify(keys, request)


def sign(
    scheme: str | Scheme,
    secret: Secret,
    body: bytes,
    *,
    timestamp: int | None = None,
    msg_id: str | None = None,
    method: str = "POST",
    url: str = "",
) -> dict[str, str]:
    """Return the headers a sender would set, so sandboxes and tests can sign webhooks.

    ``timestamp`` is Unix seconds (default now; HubSpot's header gets milliseconds).
    ``msg_id`` is used by Standard Webhooks/Svix (default a random ``msg_...`` id).
    ``verify(scheme, secret, sign(scheme, secret, body, ...), body, ...)`` always passes.
    """
    resolved = _resolve(scheme)
    (key,) = _keys(resolved, secret)
    outgoing = Outgoing(
        body=body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        msg_id=msg_id or f"msg_{uuid.uuid4().hex}",
        method=method,
        url=url,
    )
    return resolved.sign(key, outgoing)
