"""Inbound webhook support: signature verification for every provider Syncline listens to."""

from syncline.webhooks.signatures import (
    SCHEMES,
    HmacScheme,
    HubSpotScheme,
    MalformedSignatureHeader,
    Outgoing,
    Scheme,
    SignatureError,
    SignedRequest,
    SlackScheme,
    StandardWebhooksScheme,
    StripeScheme,
    hubspot_signed_uri,
    sign,
    verify,
)

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
