"""The optional [deploy] section: account, region and web ACL checked where they are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncline.config import DEFAULT_PATH, ConfigError, DeployConfig, load_config

WEB_ACL = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/syncline-webhooks/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
DEPLOY = f"""
[deploy]
account = "123456789012"
region = "eu-west-1"
web_acl_arn = "{WEB_ACL}"
"""


def _with(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text() + section)
    return path


def test_the_shipped_configuration_names_no_account_region_or_web_acl() -> None:
    assert load_config(DEFAULT_PATH).deploy == DeployConfig(account=None, region=None, web_acl_arn=None)


def test_a_deploy_section_is_read(tmp_path: Path) -> None:
    deploy = load_config(_with(tmp_path, DEPLOY)).deploy
    assert (deploy.account, deploy.region, deploy.web_acl_arn) == ("123456789012", "eu-west-1", WEB_ACL)


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2", "us-gov-west-1", "eu-central-2"])
def test_real_region_names_are_accepted(region: str) -> None:
    assert DeployConfig(region=region).region == region


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"123456789012"\nregion', '"12345678901"\nregion', r"line \d+: deploy\.account: String should match"),
        ('"123456789012"\nregion', '"acct-123456789012"\nregion', r"deploy\.account: String should match"),
        ('"eu-west-1"', '"Ireland"', r"deploy\.region: String should match"),
        ('"eu-west-1"', '"eu-west"', r"deploy\.region: String should match"),
        (WEB_ACL, WEB_ACL.replace("regional", "global"), r"deploy\.web_acl_arn: String should match"),
        (WEB_ACL, WEB_ACL.replace(":wafv2:", ":waf-regional:"), r"deploy\.web_acl_arn: String should match"),
        ('region = "eu-west-1"', 'profile = "prod"', r"deploy\.profile: Extra inputs are not permitted"),
    ],
)
def test_a_deploy_value_of_the_wrong_shape_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in DEPLOY
    with pytest.raises(ConfigError, match=message):
        load_config(_with(tmp_path, DEPLOY.replace(old, new)))


def test_a_web_acl_in_another_region_than_the_stack_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deploy: Value error, web_acl_arn is in eu-west-1, not in region us-east-1"):
        load_config(_with(tmp_path, DEPLOY.replace('region = "eu-west-1"', 'region = "us-east-1"')))
