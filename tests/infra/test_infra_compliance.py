"""The synthesized template passes cdk-nag (AwsSolutions) and cfn-lint."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file

if TYPE_CHECKING:
    from pathlib import Path

    from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.infra

# Every acknowledged cdk-nag finding, with the resource types it sits on. Adding one is a decision:
# it goes here and in docs/DEPLOY.md with its reason.
ACKNOWLEDGED = {
    "AwsSolutions-L1": {"AWS::Lambda::Function"},
    "AwsSolutions-IAM5[Resource::*]": {"AWS::IAM::Role", "AWS::IAM::Policy"},
    # Table access covers the state table's own indexes (the conflict list by status).
    "AwsSolutions-IAM5[Resource::<StateTable962DE04C.Arn>/index/*]": {"AWS::IAM::Role", "AWS::IAM::Policy"},
    # The webhook API: senders authenticate by HMAC signature, checked in the function.
    "AwsSolutions-APIG2": {"AWS::ApiGateway::RestApi"},
    "AwsSolutions-APIG3": {"AWS::ApiGateway::Stage"},
    "AwsSolutions-APIG6": {"AWS::ApiGateway::Stage"},
    "AwsSolutions-APIG4": {"AWS::ApiGateway::Method"},
    "AwsSolutions-COG4": {"AWS::ApiGateway::Method"},
}


def _validation_report(outdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return report


def test_cdk_nag_finds_no_unacknowledged_error(synthesized: Synthesized) -> None:
    # The session's synthesis would have raised on one; check the pack directly as well.
    report = AwsSolutionsChecks().validate_scope(synthesized.stack)
    assert report.success
    assert [violation.rule_name for violation in report.violations] == []


def test_the_validation_report_holds_only_the_expected_unbundled_warning(synthesized: Synthesized) -> None:
    violations = [
        (violation["ruleName"], violation["severity"])
        for plugin in _validation_report(synthesized.outdir)["pluginReports"]
        for violation in plugin["violations"]
    ]
    # The tests synthesise the functions/ fallback asset on purpose, so the stack says so.
    assert violations == [("Annotation::syncline:UnbundledCode", "warning")]


def test_acknowledgments_are_the_documented_ones_each_with_a_reason(synthesized: Synthesized) -> None:
    seen: dict[str, set[str]] = {}
    for resource in synthesized.resources.values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert len(rule["reason"]) > 40, rule
            seen.setdefault(rule["id"], set()).add(resource["Type"])
    # Each sits on the resources it is about, not spread over a construct's whole subtree.
    assert seen == ACKNOWLEDGED


def test_the_check_does_fail_synthesis_on_an_unacknowledged_error(tmp_path: Path) -> None:
    """Control: the same plugin set-up rejects a queue that accepts plain HTTP."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Careless")
    dead_letters = sqs.Queue(stack, "Dlq", enforce_ssl=True)
    sqs.Queue(stack, "Queue", dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=dead_letters))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    violations = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in _validation_report(tmp_path)["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    assert violations == [("AwsSolutions-SQS4", "Careless/Queue/Resource")]


def test_cfn_lint_reports_nothing(synthesized: Synthesized) -> None:
    config = ManualArgs(
        # W3005 "dependency already enforced": CDK adds an explicit DependsOn from each function to
        # its role next to the Role GetAtt. Redundant, harmless, and not ours to remove.
        ignore_checks=["W3005"],
        regions=["us-east-1", "eu-west-1"],
    )
    matches = lint_file(synthesized.template_path, config)
    assert [f"{m.rule.id} {m.message}" for m in matches] == []
