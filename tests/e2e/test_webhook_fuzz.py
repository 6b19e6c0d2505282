"""Fuzz the running local endpoint from its OpenAPI document (schemathesis): no 5xx, nothing unsigned accepted.

Bounded: a fixed number of generated requests per run, no example database, so it takes seconds and
does not drift between runs. Also checks that docs/webhooks.openapi.json is what the handler generates.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from handlers.webhook import openapi_json
from syncline.local.stack import LocalStack
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

DOCUMENT = REPO / "docs" / "webhooks.openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_the_published_openapi_document_is_the_generated_one() -> None:
    assert json.loads(DOCUMENT.read_text()) == json.loads(openapi_json()), (
        "regenerate: .venv/bin/python -m handlers.webhook > docs/webhooks.openapi.json (from functions/)"
    )


def fuzz_schema(sources: list[str] | None) -> Any:
    document: dict[str, Any] = copy.deepcopy(json.loads(DOCUMENT.read_text()))
    if sources:
        # Aim at configured sources so requests get past routing into verification and parsing.
        source = document["paths"]["/webhooks/{source}"]["post"]["parameters"][0]
        source["schema"] = {"type": "string", "enum": sources}
    return schemathesis.openapi.from_dict(document)["/webhooks/{source}"]["POST"]


@pytest.mark.parametrize("target", ["configured sources", "any source name"])
def test_fuzzed_requests_never_get_a_5xx_and_unsigned_ones_are_never_accepted(stack: LocalStack, target: str) -> None:
    operation = fuzz_schema(sorted(stack.config.webhooks) if target == "configured sources" else None)
    statuses: list[int] = []

    @FUZZ
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=stack.api_url)
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code not in {200, 202}, f"unsigned request accepted: {case.as_curl_command()}"

    run()
    assert statuses  # it did send requests
    if target == "configured sources":
        assert set(statuses) & {400, 401}  # reached the verification, not only routing


def test_fuzzed_bodies_signed_by_the_real_sender_never_get_a_5xx(stack: LocalStack) -> None:
    """Past the signature: authentic but arbitrary payloads exercise parsing, topics and keys."""
    operation = fuzz_schema(sorted(stack.config.webhooks))
    statuses: list[int] = []
    with httpx.Client(timeout=10) as client:

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            body = json.dumps(case.body).encode() if isinstance(case.body, dict | list | str | int | float) else b"{}"
            sender = stack.webhook_sender(case.path_parameters["source"], client)
            response = client.post(sender.url, content=body, headers=sender.headers(body))
            statuses.append(response.status_code)
            case.validate_response(response, checks=CHECKS)

        run()
    assert statuses
    assert max(statuses) < 500
