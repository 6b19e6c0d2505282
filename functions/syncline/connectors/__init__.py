"""Connectors: how Syncline speaks to each system it keeps in agreement (Shopify, HubSpot, Salesforce,
Fracttal, the PostgreSQL OMS, generic REST endpoints, alert channels).

Every HTTP connector goes through ``syncline.connectors.http.HttpApi``: timeouts everywhere, retries with
exponential backoff and full jitter on 429 / 5xx / timeouts / dropped connections, ``Retry-After``
honoured, and no retry on any other 4xx. A connector's base URL comes from configuration, so the same
code talks to the local sandbox (``syncline.local.sandboxes``) or to the real service.
"""
