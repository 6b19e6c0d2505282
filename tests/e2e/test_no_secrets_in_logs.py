"""No secret, token or signature in any output of a full run.

A demo-like run on the local stack (ERP -> storefront sync with a dead letter, signed, duplicate,
forged and malformed webhooks for every configured source), plus the connectors with credentials:
OAuth2 client credentials against the Salesforce sandbox (a token refresh after every token expired,
a refused client secret) and a Shopify access token (accepted, then refused). Every secret value the
run used is collected from where it lives (Secrets Manager, the sandboxes, the headers sent), then
searched for, with its derived forms, in everything written: the functions' log file, every Python
log record (message and extra fields), stdout/stderr and the text of every error raised.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest

from syncline.connectors.http import ApiError, RetryPolicy
from syncline.connectors.oauth2 import ClientCredentials, InMemoryTokenStore, OAuth2ClientCredentials, OAuth2Settings
from syncline.connectors.salesforce import SalesforceClient, SalesforceSettings
from syncline.connectors.shopify import ShopifyAdmin
from syncline.local.sage300 import Stock
from syncline.local.sandboxes.salesforce import SalesforceSandbox
from syncline.local.sandboxes.shopify import ShopifySandbox
from syncline.local.stack import LocalStack
from syncline.local.webhook_sender import generate_secret

pytestmark = pytest.mark.e2e

SIGNATURE_HEADERS = {"x-shopify-hmac-sha256", "webhook-signature", "x-hubspot-signature-v3", "x-hubspot-signature"}
CREDENTIAL_HEADERS = {"authorization", "x-shopify-access-token"}
# Python logging's own LogRecord attributes; anything else on a record came in through ``extra``.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class SentHeaders:
    """An httpx request hook keeping every header value sent that carries a credential or a signature."""

    def __init__(self) -> None:
        self.credentials: set[str] = set()
        self.signatures: set[str] = set()

    def __call__(self, request: httpx.Request) -> None:
        for name, value in request.headers.items():
            if name.lower() in CREDENTIAL_HEADERS:
                self.credentials.add(value)
            if name.lower() in SIGNATURE_HEADERS:
                self.signatures.add(value)


def forms(value: str) -> set[str]:
    """The value and what it is seen as elsewhere: without a scheme prefix, base64 <-> hex, Basic-auth part."""
    found = {value}
    for separator in (" ", ",", "="):  # "Bearer x", "v1,sig" (several, space-separated), "sha256=hex"
        for part in value.split(" "):
            found.add(part.partition(separator)[2] if separator in part else part)
    for part in list(found):
        try:
            raw = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) >= 16:
            found |= {raw.hex(), raw.hex().upper()}
            with contextlib.suppress(UnicodeDecodeError):
                found.add(raw.decode("utf-8"))  # "client:secret" inside Basic auth
        if len(part) >= 32 and all(c in "0123456789abcdefABCDEF" for c in part):
            found.add(base64.b64encode(bytes.fromhex(part)).decode())
        found.add(base64.b64encode(part.encode()).decode())
    return {form for form in found if len(form) >= 12}


def leaks(secrets: Iterable[str], outputs: dict[str, str]) -> list[tuple[str, str]]:
    """(output name, secret form) for every form of every secret found in an output."""
    every_form = {form for secret in secrets for form in forms(secret)}
    return sorted((name, form[:6] + "…") for name, text in outputs.items() for form in every_form if form in text)


def record_text(record: logging.LogRecord) -> str:
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
    text = f"{record.name} {record.levelname} {record.getMessage()} {json.dumps(extras, default=repr)}"
    if record.exc_info and record.exc_info[1] is not None:
        text += f" {record.exc_info[1]!r}"
    return text


@pytest.fixture
def client() -> Iterator[tuple[httpx.Client, SentHeaders]]:
    sent = SentHeaders()
    with httpx.Client(timeout=10, event_hooks={"request": [sent]}) as http:
        yield http, sent


def run_erp_sync(stack: LocalStack) -> None:
    erp = stack.erp()
    erp.add_items([(f"SKU{i}", f"Item {i}") for i in range(20)] + [("NEG", "counted wrong")])
    erp.set_stock([Stock(f"SKU{i}", "1", Decimal(i)) for i in range(20)] + [Stock("NEG", "1", Decimal(-2))])
    stack.poll_erp()
    stack.drain()
    assert [m["attributes"]["syncline-key"] for m in stack.dead_letters("sync_storefront")] == ["NEG|1"]


PAYLOADS: dict[str, Any] = {
    "shopify": {"inventory_item_id": 2**60 + 1, "location_id": 5, "available": 3},
    "standard-webhooks": {"type": "inventory.changed", "data": {"item": "SKU1", "location": "1"}},
    "hubspot": [{"eventId": 7, "subscriptionType": "contact.propertyChange", "objectId": 51, "occurredAt": 1}],
}


def run_webhooks(stack: LocalStack, http: httpx.Client) -> list[int]:
    """Per configured source: signed (202), the same again (200), forged (401), signed but malformed (400)."""
    statuses = []
    for source in sorted(stack.config.webhooks):
        sender = stack.webhook_sender(source, http)
        topic = next(iter(stack.config.webhooks[source].topics))
        body = json.dumps(PAYLOADS.get(sender.scheme, {"id": 7, "type": topic})).encode()
        forged_secret = generate_secret(sender.scheme)
        for delivery, secret in (("d-1", None), ("d-1", None), ("d-2", forged_secret)):
            headers = sender.headers(body, topic=topic, delivery_id=delivery, secret=secret)
            statuses.append(http.post(sender.url, content=body, headers=headers).status_code)
        malformed = b'{"no key": true'
        statuses.append(http.post(sender.url, content=malformed, headers=sender.headers(malformed)).status_code)
    stack.drain()  # the ERP's own webhook notices go through the sync worker too
    return statuses


def run_salesforce(http: httpx.Client, errors: list[str]) -> set[str]:
    """OAuth2 client credentials: a read, every token expired (401, refresh, retry), a refused secret."""
    client_secret = "sf-consumer-secret-" + "7a1c9e4b2d6f8031"
    with SalesforceSandbox(clients={"syncline-consumer": client_secret}) as sandbox:
        settings = SalesforceSettings(login_url=sandbox.url, api_version="62.0", currency="EUR")

        def oauth(secret: str) -> OAuth2ClientCredentials:
            return OAuth2ClientCredentials(
                OAuth2Settings(provider="salesforce", token_url=settings.token_url),
                lambda: ClientCredentials("syncline-consumer", secret),
                InMemoryTokenStore(),
                client=http,
                retry=RetryPolicy(attempts=2, sleep=lambda _s: None),
            )

        api = SalesforceClient(settings, oauth(client_secret), client=http, retry=RetryPolicy(sleep=lambda _s: None))
        contact = sandbox.create("Contact", {"LastName": "Lovelace", "Email": "ada@example.com"})
        assert [c.contact_id for c in api.contacts([contact])] == [contact]
        sandbox.tokens.expire_all()
        assert [c.contact_id for c in api.contacts([contact])] == [contact]
        assert sandbox.token_requests == 2

        wrong = "sf-wrong-secret-" + "5e2b7c1d9a3f4086"
        try:
            SalesforceClient(settings, oauth(wrong), client=http, retry=RetryPolicy(sleep=lambda _s: None)).contacts(
                [contact]
            )
        except ApiError as exc:
            errors += [str(exc), repr(exc)]
        else:
            pytest.fail("a wrong client secret got a token")
    return {client_secret, wrong}


def run_shopify(http: httpx.Client, errors: list[str]) -> set[str]:
    """A Shopify access token: a read that works, then the token revoked (401)."""
    sandbox = ShopifySandbox().start()
    try:
        token = sandbox.access_token
        admin = ShopifyAdmin(
            sandbox.shop,
            access_token=lambda: token,
            base_url=sandbox.url,
            client=http,
            retry=RetryPolicy(sleep=lambda _s: None),
        )
        assert admin.shop_info()
        revoked = "shpat_" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
        admin_with_revoked = ShopifyAdmin(
            sandbox.shop,
            access_token=lambda: revoked,
            base_url=sandbox.url,
            client=http,
            retry=RetryPolicy(sleep=lambda _s: None),
        )
        try:
            admin_with_revoked.shop_info()
        except ApiError as exc:
            errors += [str(exc), repr(exc)]
        else:
            pytest.fail("a revoked Shopify token was accepted")
    finally:
        sandbox.stop()
    return {token, revoked}


def stored_secrets(stack: LocalStack) -> set[str]:
    """Every string value of every secret the stack put in Secrets Manager (DB passwords, signing secrets)."""
    secretsmanager = boto3.client("secretsmanager")
    values: set[str] = set()
    names = [s.secret for s in stack.config.systems.values()] + [w.secret for w in stack.config.webhooks.values()]
    for name in names:
        document = json.loads(secretsmanager.get_secret_value(SecretId=name)["SecretString"])
        values |= {v for v in _strings(document) if len(v) >= 8}
    return values


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in {"password", "secrets", "secret", "client_secret", "token"}:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_a_full_run_writes_no_secret_token_or_signature_anywhere(
    stack: LocalStack,
    client: tuple[httpx.Client, SentHeaders],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    http, sent = client
    caplog.set_level(logging.INFO)  # as deployed (POWERTOOLS_LOG_LEVEL=INFO) ...
    for name in ("syncline", "handlers"):  # ... and Syncline's own code at DEBUG, stricter than deployed
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[str] = []

    # When the whole scenario runs
    run_erp_sync(stack)
    statuses = run_webhooks(stack, http)
    used = run_salesforce(http, errors) | run_shopify(http, errors)

    # Then it did what a run does (so there was something to leak)
    assert {202, 200, 401, 400} <= set(statuses), statuses
    assert len(sent.signatures) >= 6 and len(sent.credentials) >= 4
    secrets = stored_secrets(stack) | used | sent.credentials | sent.signatures
    assert {w for ws in stack.webhook_secrets.values() for w in ws} <= secrets
    assert any(len(s) >= 8 for s in stored_secrets(stack) - {w for ws in stack.webhook_secrets.values() for w in ws})

    functions_log = (stack.work_dir / "logs" / "functions.log").read_text()
    captured = capfd.readouterr()
    outputs = {
        "functions.log": functions_log,
        "log records": "\n".join(record_text(record) for record in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
        "errors raised": "\n".join(errors),
    }
    assert "webhook accepted" in functions_log and "webhook refused" in functions_log
    assert "dead-lettered" in functions_log and errors

    # The search finds a planted secret (so a clean result means something)
    planted = sorted(sent.signatures)[0]
    assert leaks([planted], {"planted": f"log line {forms(planted).pop()} end"})

    found = leaks(secrets, outputs)
    assert found == [], f"{len(found)} secret forms in {sorted({name for name, _ in found})}: {found[:10]}"
