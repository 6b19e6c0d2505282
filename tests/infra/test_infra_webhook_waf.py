"""Optional WAF: with ``[deploy] web_acl_arn`` the webhook API's stage is associated with that web ACL, and
cdk-nag's APIG3 (no web ACL) is then satisfied rather than acknowledged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file

from infra import FUNCTIONS_DIR
from infra.application import create_app
from infra.stack import SynclineStack
from syncline.config import DEFAULT_PATH, load_config
from tests.infra.test_infra_compliance import ACKNOWLEDGED

if TYPE_CHECKING:
    from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra

WEB_ACL = "arn:aws:wafv2:eu-west-1:111111111111:regional/webacl/syncline-webhooks/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@dataclass(frozen=True)
class Protected:
    stack: SynclineStack
    template_path: Path
    resources: dict[str, dict[str, Any]]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}


def acknowledged(resources: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for resource in resources.values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            seen.setdefault(rule["id"], set()).add(resource["Type"])
    return seen


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Protected:
    """Given the shipped configuration plus [deploy] web_acl_arn, synthesised with the cdk-nag plugin."""
    work = tmp_path_factory.mktemp("waf")
    config_path = work / "syncline.toml"
    config_path.write_text(
        DEFAULT_PATH.read_text(encoding="utf-8") + f'\n[deploy]\nweb_acl_arn = "{WEB_ACL}"\n', encoding="utf-8"
    )
    app, stack = create_app(outdir=str(work / "cdk.out"), config=load_config(config_path), code_dir=FUNCTIONS_DIR)
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error: APIG3 must be satisfied
    template_path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    return Protected(stack, template_path, json.loads(template_path.read_text(encoding="utf-8"))["Resources"])


def test_the_configured_web_acl_is_associated_with_the_api_stage(protected: Protected) -> None:
    (association,) = protected.of_type("AWS::WAFv2::WebACLAssociation").values()
    (api_id,) = protected.of_type("AWS::ApiGateway::RestApi")
    (stage_id,) = protected.of_type("AWS::ApiGateway::Stage")
    assert association["Properties"]["WebACLArn"] == WEB_ACL
    # arn:<partition>:apigateway:<region>::/restapis/<api id>/stages/<stage name>
    parts = association["Properties"]["ResourceArn"]["Fn::Join"][1]
    assert {"Ref": api_id} in parts
    assert {"Ref": stage_id} in parts
    assert "::/restapis/" in "".join(part for part in parts if isinstance(part, str))
    # The web ACL is referenced, never created.
    assert not protected.of_type("AWS::WAFv2::WebACL")


def test_with_a_web_acl_apig3_is_satisfied_not_acknowledged(protected: Protected) -> None:
    report = AwsSolutionsChecks().validate_scope(protected.stack)
    assert report.success, [violation.rule_name for violation in report.violations]
    expected = {rule: types for rule, types in ACKNOWLEDGED.items() if rule != "AwsSolutions-APIG3"}
    assert acknowledged(protected.resources) == expected


def test_without_a_web_acl_there_is_no_association_and_apig3_is_acknowledged(synthesized: Synthesized) -> None:
    assert synthesized.config.deploy.web_acl_arn is None
    assert not synthesized.of_type("AWS::WAFv2::WebACLAssociation")
    assert acknowledged(synthesized.resources)["AwsSolutions-APIG3"] == {"AWS::ApiGateway::Stage"}


def test_the_protected_template_passes_cfn_lint(protected: Protected) -> None:
    matches = lint_file(protected.template_path, ManualArgs(ignore_checks=["W3005"], regions=["eu-west-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
