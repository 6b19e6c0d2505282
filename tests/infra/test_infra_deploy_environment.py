"""Account and region: CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION when set (the CDK CLI), else [deploy]."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

import app as app_module
import syncline.configfile
from infra.application import create_app, deploy_environment
from infra.stack import SynclineStack
from syncline.config import DEFAULT_PATH, DeployConfig

pytestmark = pytest.mark.infra

CONFIGURED = DeployConfig(account="111111111111", region="eu-central-1")
CLI = {"CDK_DEFAULT_ACCOUNT": "222222222222", "CDK_DEFAULT_REGION": "us-east-2"}


def test_the_cli_variables_win_over_the_configuration() -> None:
    env = deploy_environment(CLI, CONFIGURED)
    assert (env.account, env.region) == ("222222222222", "us-east-2")


def test_the_configuration_is_used_when_the_variables_are_absent() -> None:
    env = deploy_environment({"AWS_PROFILE": "ignored"}, CONFIGURED)
    assert (env.account, env.region) == ("111111111111", "eu-central-1")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CDK_DEFAULT_ACCOUNT": "222222222222"}, ("222222222222", "eu-central-1")),
        ({"CDK_DEFAULT_REGION": "us-east-2"}, ("111111111111", "us-east-2")),
        ({"CDK_DEFAULT_ACCOUNT": "", "CDK_DEFAULT_REGION": ""}, ("111111111111", "eu-central-1")),
    ],
)
def test_each_value_is_resolved_on_its_own(environ: dict[str, str], expected: tuple[str, str]) -> None:
    env = deploy_environment(environ, CONFIGURED)
    assert (env.account, env.region) == expected


def test_with_neither_the_stack_is_environment_agnostic() -> None:
    env = deploy_environment({}, DeployConfig())
    assert (env.account, env.region) == (None, None)


@pytest.mark.parametrize(
    ("cli", "expected"),
    [({}, "aws://111111111111/eu-central-1"), (CLI, "aws://222222222222/us-east-2")],
    ids=["from-configuration", "from-cli-variables"],
)
def test_app_py_synthesises_for_the_resolved_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: dict[str, str], expected: str
) -> None:
    # Given a configuration with [deploy], and the CLI's variables set or not; no AWS call either way.
    config_path = tmp_path / "syncline.toml"
    config_path.write_text(
        DEFAULT_PATH.read_text(encoding="utf-8") + '\n[deploy]\naccount = "111111111111"\nregion = "eu-central-1"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(syncline.configfile, "DEFAULT_PATH", config_path)
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in cli.items():
        monkeypatch.setenv(name, value)
    # The already running jsii process does not see this; it only keeps app.py from writing ./cdk.out.
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    built: list[tuple[App, SynclineStack]] = []

    def spy(**kwargs: Any) -> tuple[App, SynclineStack]:
        built.append(create_app(**kwargs))
        return built[-1]

    monkeypatch.setattr(app_module, "create_app", spy)
    # When app.py runs
    app_module.main()
    # Then the stack is bound to the account and region that won
    ((app, stack),) = built
    assert stack.environment == expected
    manifest = json.loads((Path(app.outdir) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["artifacts"]["Syncline"]["environment"] == expected
