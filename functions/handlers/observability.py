"""The one Logger, Metrics and Tracer every handler shares (service and namespace from Powertools env)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

# The AWS SDK only. Patching every library X-Ray supports (the default) imports each one at cold
# start (~80 ms); its psycopg patch needs psycopg_pool, which Syncline does not install, so it never
# applied anyway (patch_all swallows the error).
TRACED_MODULES = ("botocore",)

logger = Logger(service="syncline")
metrics = Metrics(namespace="Syncline", service="syncline")
tracer = Tracer(service="syncline", patch_modules=TRACED_MODULES)
