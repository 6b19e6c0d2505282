"""Optional VPC placement: with ``[network]`` the functions reading an on-premises system's secret run in
its subnets, with the network-interface permissions Lambda needs and nothing looked up at synthesis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Environment
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file

from infra import FUNCTIONS_DIR
from infra.application import create_app
from infra.stack import SynclineStack
from syncline.config import DEFAULT_PATH, SynclineConfig, load_config
from syncline.topology import build_topology
from tests.infra.conftest import Synthesized
from tests.infra.test_infra_compliance import ACKNOWLEDGED
from tests.infra.test_infra_iam import allowed, statements

pytestmark = pytest.mark.infra

SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
SECURITY_GROUPS = ["sg-0123456789abcdef0"]
NETWORK = f"""
[network]
vpc_id = "vpc-0123456789abcdef0"
subnet_ids = {json.dumps(SUBNETS)}
security_group_ids = {json.dumps(SECURITY_GROUPS)}
systems = ["sage300"]
"""
# AWSLambdaVPCAccessExecutionRole's EC2 actions, written out so that a change in the builder shows here.
ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


@dataclass(frozen=True)
class Placed:
    config: SynclineConfig
    stack: SynclineStack
    outdir: Path
    template_path: Path
    resources: dict[str, dict[str, Any]]

    def function(self, function_id: str) -> tuple[str, dict[str, Any]]:
        logical_id = self.stack.get_logical_id(self.stack.functions[function_id].node.default_child)
        return logical_id, self.resources[logical_id]


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> Placed:
    """Given the shipped configuration plus a [network] section, synthesised for a concrete account."""
    work = tmp_path_factory.mktemp("network")
    config_path = work / "syncline.toml"
    config_path.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + NETWORK, encoding="utf-8")
    config = load_config(config_path)
    outdir = work / "cdk.out"
    # A concrete environment is where a lookup would happen; none may (see the manifest test).
    app, stack = create_app(
        outdir=str(outdir),
        config=config,
        code_dir=FUNCTIONS_DIR,
        env=Environment(account="111111111111", region="eu-west-1"),
    )
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error
    template_path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    resources = json.loads(template_path.read_text(encoding="utf-8"))["Resources"]
    return Placed(config, stack, outdir, template_path, resources)


def _reads_erp(placed: Placed) -> set[str]:
    """Functions whose FunctionSpec names the sage300 secret: the ones [network] systems = ["sage300"] places."""
    return {spec.id for spec in build_topology(placed.config).functions if "sage300" in spec.secrets}


def test_the_functions_reading_the_erp_secret_run_in_the_configured_subnets(placed: Placed) -> None:
    in_vpc = {
        function_id
        for function_id in placed.stack.functions
        if "VpcConfig" in placed.function(function_id)[1]["Properties"]
    }
    assert {"poller", "sync_storefront"} <= in_vpc
    assert in_vpc == _reads_erp(placed)
    assert not in_vpc & {"webhook", "monitor"}
    for function_id in in_vpc:
        assert placed.function(function_id)[1]["Properties"]["VpcConfig"] == {
            "SubnetIds": SUBNETS,
            "SecurityGroupIds": SECURITY_GROUPS,
        }


def test_placed_functions_may_manage_their_network_interfaces_and_the_others_may_not(placed: Placed) -> None:
    for function_id in placed.stack.functions:
        logical_id, function = placed.function(function_id)
        ec2 = allowed(statements(placed.resources, logical_id), "ec2:")
        if "VpcConfig" in function["Properties"]:
            assert {action for action, _ in ec2} == ENI_ACTIONS, function_id
            assert {json.dumps(resource) for _, resource in ec2} == {'"*"'}
            # The permissions exist before Lambda creates the function (it checks them then).
            role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
            policies = {
                key
                for key, value in placed.resources.items()
                if value["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in value["Properties"]["Roles"]
            }
            assert policies and policies <= set(function["DependsOn"])
        else:
            assert ec2 == [], function_id


def test_nothing_is_created_or_looked_up_in_the_network(placed: Placed) -> None:
    assert not [value["Type"] for value in placed.resources.values() if value["Type"].startswith("AWS::EC2::")]
    manifest = json.loads((placed.outdir / "manifest.json").read_text(encoding="utf-8"))
    assert "missing" not in manifest, "a context lookup (an AWS call through the CDK CLI) was requested"


def test_the_placed_stack_passes_cdk_nag_with_the_same_acknowledgments_and_cfn_lint(placed: Placed) -> None:
    report = AwsSolutionsChecks().validate_scope(placed.stack)
    assert report.success, [violation.rule_name for violation in report.violations]
    seen: dict[str, set[str]] = {}
    reasons = []
    for resource in placed.resources.values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            seen.setdefault(rule["id"], set()).add(resource["Type"])
            reasons.append(rule["reason"])
    assert seen == ACKNOWLEDGED
    assert any("network-interface actions" in reason for reason in reasons)
    matches = lint_file(placed.template_path, ManualArgs(ignore_checks=["W3005"], regions=["eu-west-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


def test_without_a_network_section_no_function_is_in_a_vpc(synthesized: Synthesized) -> None:
    assert synthesized.config.network is None
    for function_id in synthesized.stack.functions:
        assert "VpcConfig" not in synthesized.function_properties(function_id)
        assert allowed(statements(synthesized.resources, synthesized.logical_id(function_id)), "ec2:") == []
