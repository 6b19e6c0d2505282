"""Webhook sources as configured (``[webhooks.<source>]`` in ``syncline.toml``), and the ingress's view of the file.

The webhook function's whole job is to answer within milliseconds, so it reads only what it uses:
its sources and, for each, the kind of system it speaks for (``IngressConfig``). It does not import or
validate the pairs, policies, monitoring and notification rules: the whole file is validated by
``syncline.config`` where it is deployed from (``cdk synth``, ``syncline local up``) and by every
other function, so a file that reaches the webhook function has passed that check already.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from syncline.configfile import ConfigError, read_toml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WebhookScheme = Literal["shopify", "github", "standard-webhooks", "svix", "stripe", "hubspot", "slack", "hmac"]
WEBHOOK_SOURCE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
DEFAULT_WEBHOOK_MAX_BODY = 1024 * 1024


class WebhookTopic(_Strict):
    """What a notice of one webhook topic (event type) means: the entity and where its key sits."""

    entity: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    key: list[str] = Field(
        min_length=1, description="dotted paths into the event payload, joined with '|' into the notice key"
    )
    operation: Literal["upsert", "delete"] = "upsert"


class HmacOptions(_Strict):
    """Settings of the generic ``hmac`` scheme (a sender with its own header and encoding)."""

    header: str = "X-Signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    delivery_id_header: str | None = Field(None, description="header carrying the sender's delivery id, if any")


class WebhookSource(_Strict):
    """One sender of webhooks, reached at ``POST /webhooks/{source}``."""

    scheme: WebhookScheme
    secret: str = Field(
        description="Secrets Manager name or ARN; the value is the signing secret, or "
        '{"secrets": ["current", "previous"]} while rotating'
    )
    system: str | None = Field(None, description="source_system of the notices (default: the source's name)")
    max_body_bytes: int = Field(DEFAULT_WEBHOOK_MAX_BODY, ge=1, le=6 * 1024 * 1024)
    tolerance_seconds: int = Field(300, ge=1, le=3600)
    content_types: list[str] = Field(["application/json"], min_length=1)
    public_url: str | None = Field(None, description="the URL registered with the sender (HubSpot signs it)")
    topic_header: str | None = Field(None, description="header naming the event type (default per scheme)")
    topic_field: str | None = Field(None, description="dotted path to the event type in the payload")
    hmac: HmacOptions = HmacOptions()
    topics: dict[str, WebhookTopic] = Field(min_length=1)


def check_source_names(names: Iterable[str]) -> None:
    """Source names are URL path segments: ``POST /webhooks/{source}``."""
    for name in names:
        if not re.fullmatch(WEBHOOK_SOURCE_PATTERN, name):
            raise ValueError(f"webhook source {name!r}: use lower-case letters, digits and '-' (it is a URL path)")


class _View(BaseModel):
    """A part of the file: other keys are someone else's (and validated by ``syncline.config``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class SystemRef(_View):
    """What the ingress needs of a system: its kind, and a HubSpot portal's app id (to recognise echoes)."""

    kind: str
    app_id: str | None = None


class PollerRef(_View):
    notices_per_event: int = Field(100, ge=1, le=500)


class IngressConfig(_View):
    """The webhook function's view of ``syncline.toml``."""

    app: str = "syncline"
    systems: dict[str, SystemRef] = Field(default_factory=dict)
    poller: PollerRef = PollerRef()
    webhooks: dict[str, WebhookSource] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source_names_are_url_safe(self) -> IngressConfig:
        check_source_names(self.webhooks)
        return self


def load_ingress_config(path: str | None = None) -> IngressConfig:
    """Read the ingress's part of the file; errors name the file and the field."""
    source, _, raw = read_toml(path)
    try:
        return IngressConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


@cache
def cached_ingress_config(path: str | None = None) -> IngressConfig:
    """The ingress's view, read once per process (Lambda cold start)."""
    return load_ingress_config(path)
