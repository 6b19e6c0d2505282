"""The webhook API: one REST API route to the webhook function, throttled, access-logged, byte-exact bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aws_cdk.assertions import Match

from infra.constructs.webhook_api import STAGE, THROTTLE_BURST, THROTTLE_RATE
from syncline.settings import ENV_BUS, ENV_TABLE

if TYPE_CHECKING:
    from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra


def api_id(synthesized: Synthesized) -> str:
    (logical_id,) = synthesized.of_type("AWS::ApiGateway::RestApi")
    return logical_id


def test_one_regional_rest_api_passes_every_body_as_binary(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "Name": f"{synthesized.topology.app}-webhooks",
            "BinaryMediaTypes": ["*/*"],  # bodies arrive base64: the signature is checked over the exact bytes
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
        },
    )


def test_the_stage_is_throttled_traced_and_access_logged_to_a_retained_group(synthesized: Synthesized) -> None:
    (stage_id,) = synthesized.of_type("AWS::ApiGateway::Stage")
    stage = synthesized.resources[stage_id]["Properties"]
    assert stage["StageName"] == STAGE
    assert stage["TracingEnabled"] is True
    assert stage["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": THROTTLE_BURST,
            "ThrottlingRateLimit": THROTTLE_RATE,
        }
    ]
    log_group = stage["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1][-1]["Ref"]
    assert synthesized.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert synthesized.resources[log_group]["Properties"]["RetentionInDays"] == 30
    assert '"status":"$context.status"' in stage["AccessLogSetting"]["Format"]


def test_post_webhooks_source_is_a_proxy_integration_of_the_webhook_function(synthesized: Synthesized) -> None:
    function_id = synthesized.logical_id("webhook")
    methods = synthesized.of_type("AWS::ApiGateway::Method")
    assert len(methods) == 1
    (method,) = (m["Properties"] for m in methods.values())
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "NONE"
    assert method["RequestParameters"] == {"method.request.path.source": True}
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert {"Fn::GetAtt": [function_id, "Arn"]} in method["Integration"]["Uri"]["Fn::Join"][1]
    resource = synthesized.resources[method["ResourceId"]["Ref"]]["Properties"]
    parent = synthesized.resources[resource["ParentId"]["Ref"]]["Properties"]
    assert (parent["PathPart"], resource["PathPart"]) == ("webhooks", "{source}")
    validator = synthesized.resources[method["RequestValidatorId"]["Ref"]]["Properties"]
    assert validator["ValidateRequestParameters"] is True


def test_only_api_gateway_may_invoke_the_webhook_function_on_that_route(synthesized: Synthesized) -> None:
    function_id = synthesized.logical_id("webhook")
    permissions = [
        p["Properties"]
        for p in synthesized.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert permissions
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert permission["SourceArn"]["Fn::Join"][1][-1].endswith("/POST/webhooks/*")
        assert {"Ref": api_id(synthesized)} in permission["SourceArn"]["Fn::Join"][1]


def test_the_webhook_function_knows_the_table_and_bus_and_nothing_secret(synthesized: Synthesized) -> None:
    properties = synthesized.function_properties("webhook")
    assert properties["Handler"] == "handlers.webhook.handler"
    assert properties["Timeout"] == 10
    environment = properties["Environment"]["Variables"]
    assert set(environment) >= {ENV_TABLE, ENV_BUS}
    for source in synthesized.config.webhooks.values():
        assert source.secret not in str(environment)  # names are in syncline.toml, values in Secrets Manager


def test_the_stack_outputs_the_webhook_url(synthesized: Synthesized) -> None:
    synthesized.template.has_output("WebhookUrl", {"Value": Match.any_value()})
