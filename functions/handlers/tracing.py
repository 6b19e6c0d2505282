"""The X-Ray tracer for the handlers that trace their AWS SDK calls (all but the webhook ingress).

The AWS SDK only. Patching every library X-Ray supports (the default) imports each one at cold
start (~80 ms); its psycopg patch needs psycopg_pool, which Syncline does not install, so it never
applied anyway (patch_all swallows the error).
"""

from __future__ import annotations

from aws_lambda_powertools import Tracer

TRACED_MODULES = ("botocore",)

tracer = Tracer(service="syncline", patch_modules=TRACED_MODULES)
