"""The public webhook endpoint: an API Gateway REST API routing ``POST /webhooks/{source}`` to the webhook function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.constructs import pascal
from syncline.topology import RouteSpec, webhook_secret_id
from syncline.webhooks.sources import WebhookSource

STAGE = "prod"
# Steady rate and burst for the whole stage. SaaS senders retry on 429, so a storm is delayed, not lost;
# the function's own cost per request is a few milliseconds.
THROTTLE_RATE = 200
THROTTLE_BURST = 400
ACCESS_LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def import_webhook_secrets(scope: Construct, sources: Mapping[str, WebhookSource]) -> dict[str, secretsmanager.ISecret]:
    """Reference (never create) each webhook source's signing secret, keyed as its FunctionSpec names it."""
    secrets: dict[str, secretsmanager.ISecret] = {}
    for name, source in sources.items():
        construct_id = f"Webhook{pascal(name.replace('-', '_'))}Secret"
        secrets[webhook_secret_id(name)] = (
            secretsmanager.Secret.from_secret_complete_arn(scope, construct_id, source.secret)
            if source.secret.startswith("arn:")
            else secretsmanager.Secret.from_secret_name_v2(scope, construct_id, source.secret)
        )
    return secrets


class WebhookApi(Construct):
    """A regional REST API with one stage: throttled, access-logged, traced, every body passed byte for byte.

    - ``binary_media_types=["*/*"]``: every request body reaches the function base64-encoded, so the
      signature is checked over exactly the bytes the sender signed (no text re-encoding on the way).
    - Request size: API Gateway's limit (10 MB) cannot be lowered; each source's ``max_body_bytes``
      (default 1 MiB) is enforced by the function before it verifies anything (413).
    - No API Gateway authorizer: senders authenticate by signing each request, checked in the function.
    - With ``web_acl_arn`` (``[deploy]`` in syncline.toml), that existing regional WAFv2 web ACL is
      associated with the stage; the stack never creates a web ACL.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        routes: Sequence[RouteSpec],
        functions: Mapping[str, lambda_.IFunction],
        web_acl_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=ACCESS_LOG_RETENTION)
        self.api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=name,
            description="Syncline webhook ingress: POST /webhooks/{source}",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            binary_media_types=["*/*"],
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=THROTTLE_RATE,
                throttling_burst_limit=THROTTLE_BURST,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                tracing_enabled=True,
                metrics_enabled=True,
            ),
        )
        validator = self.api.add_request_validator("PathValidator", validate_request_parameters=True)
        for route in routes:
            resource = self.api.root.resource_for_path(route.path)
            resource.add_method(
                route.method,
                apigateway.LambdaIntegration(functions[route.function], proxy=True),
                authorization_type=apigateway.AuthorizationType.NONE,
                request_validator=validator,
                request_parameters={
                    f"method.request.path.{name.strip('{}')}": True
                    for name in route.path.split("/")
                    if name.startswith("{")
                },
            )
        self.web_acl_association = (
            wafv2.CfnWebACLAssociation(
                self, "WebAcl", resource_arn=self.api.deployment_stage.stage_arn, web_acl_arn=web_acl_arn
            )
            if web_acl_arn
            else None
        )
        self._acknowledge()

    @property
    def url(self) -> str:
        return self.api.url

    def _acknowledge(self) -> None:
        Validations.of(self.api.node.default_child or self.api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="Request parameters are validated (the {source} path parameter); the body is not: a model "
                "check would parse unauthenticated bodies, and the function validates the body after its signature.",
            )
        )
        stage = self.api.deployment_stage.node.default_child
        stage_findings = []
        if self.web_acl_association is None:
            # With [deploy] web_acl_arn the stage has its web ACL and the finding does not arise.
            stage_findings.append(
                Acknowledgment(
                    id="AwsSolutions-APIG3",
                    reason="No WAF web ACL: every request is authenticated by its HMAC signature before any work, "
                    "the stage is throttled, and bodies are size-checked first; a web ACL is a per-site addition "
                    "([deploy] web_acl_arn).",
                )
            )
        stage_findings.append(
            Acknowledgment(
                id="AwsSolutions-APIG6",
                reason="Execution logging needs the account-wide API Gateway CloudWatch role (a regional "
                "singleton other stacks may own); the stage's JSON access log records every request.",
            )
        )
        Validations.of(stage or self.api.deployment_stage).acknowledge(*stage_findings)
        for method in self.api.methods:
            Validations.of(method.node.default_child or method).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG4",
                    reason="SaaS webhook senders cannot use IAM, Cognito or Lambda authorizers; each request is "
                    "authenticated by the sender's HMAC signature, verified in the function (401 otherwise).",
                ),
                Acknowledgment(
                    id="AwsSolutions-COG4",
                    reason="Webhook senders have no Cognito identity; the HMAC signature authenticates them.",
                ),
            )
