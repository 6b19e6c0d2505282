"""Scheduled OAuth2 token refresher: keeps each OAuth2 system's shared token (``TK#<system>``) fresh ahead of
the workers, so no sync ever waits on a token endpoint. It refreshes only when less than
``REFRESH_AHEAD_SECONDS`` is left, under the same single-flight lease the workers use; a failure for one
system does not stop the others and is reported (the workers still refresh on their own if it persists)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import initialised
from handlers.dependencies import dependencies
from handlers.observability import logger, metrics
from handlers.tracing import tracer
from syncline.systems import OAUTH_KINDS

REFRESH_AHEAD_SECONDS = 1200.0  # twice the schedule's period (10 min): a token never gets close to expiry


class RefreshFailed(RuntimeError):
    """One or more systems' tokens could not be refreshed (the others were)."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    refreshed, failures = {}, []
    for name, system in deps.config.systems.items():
        if system.kind not in OAUTH_KINDS:
            continue
        tokens = deps.systems().oauth_tokens(name, refresh_skew_seconds=REFRESH_AHEAD_SECONDS)
        try:
            token = tokens.token()
        except Exception as exc:  # never the token or the secret: ApiError texts carry the service's reason only
            failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            continue
        refreshed[name] = {"fetched": tokens.fetches, "expires_in_s": round(token.expires_at - time.time())}
    metrics.add_metric(name="TokensFetched", unit=MetricUnit.Count, value=sum(r["fetched"] for r in refreshed.values()))
    metrics.add_metric(name="TokenRefreshFailures", unit=MetricUnit.Count, value=len(failures))
    logger.info("tokens checked", extra={"systems": refreshed, "failures": failures})
    if failures:
        raise RefreshFailed("; ".join(failures))
    return {"systems": refreshed}


initialised()
