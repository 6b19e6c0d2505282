"""The one Logger and Metrics every handler shares (service and namespace from Powertools env).

The X-Ray tracer lives in ``handlers.tracing``: loading the X-Ray SDK costs about 100 ms of cold start
(it builds its own botocore clients at import), which the webhook function, whose whole job is to
answer within milliseconds, does not pay. Lambda active tracing still records its invocations.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="syncline")
metrics = Metrics(namespace="Syncline", service="syncline")
