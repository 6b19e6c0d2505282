"""A webhook sender for the local stack: signs payloads the way each provider does and posts them over HTTP.

Used by the tests, the demo and the benchmark, so all three speak to the local gateway like the real
senders would (headers, delivery ids, timestamps), through the scheme code's own ``sign``.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from syncline.webhooks import sign


def generate_secret(scheme: str) -> str:
    """A fresh signing secret in the form the scheme's senders hand out."""
    if scheme in {"standard-webhooks", "svix"}:
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    if scheme == "stripe":
        return "whsec_" + secrets.token_hex(16)
    return secrets.token_urlsafe(32)


@dataclass
class WebhookSender:
    """Posts signed webhooks for one source to ``{base_url}/webhooks/{source}``."""

    base_url: str
    source: str
    scheme: str
    secret: str
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"{self.base_url}/webhooks/{self.source}"

    def headers(
        self,
        body: bytes,
        *,
        topic: str | None = None,
        delivery_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        """Signature, topic and delivery headers as the provider would send them."""
        delivery_id = delivery_id or uuid.uuid4().hex
        headers = {"Content-Type": "application/json"}
        headers |= sign(
            self.scheme,
            secret or self.secret,
            body,
            timestamp=timestamp or int(time.time()),
            msg_id=delivery_id,
            url=self.url,
        )
        if self.scheme == "shopify":
            headers |= {
                "X-Shopify-Topic": topic or "inventory_levels/update",
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": delivery_id,
                "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
                "X-Shopify-Shop-Domain": "store-a.myshopify.com",
                "X-Shopify-API-Version": "2026-10",
            }
        elif self.scheme == "github":
            headers |= {"X-GitHub-Event": topic or "push", "X-GitHub-Delivery": delivery_id}
        return headers

    def post(
        self,
        payload: Any,
        *,
        topic: str | None = None,
        delivery_id: str | None = None,
        forged: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Sign and post ``payload`` (bytes as they are, anything else as JSON); ``forged`` signs with a wrong secret."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = self.headers(
            body, topic=topic, delivery_id=delivery_id, secret=generate_secret(self.scheme) if forged else None
        )
        return self.client.post(self.url, content=body, headers=headers | (extra_headers or {}))
