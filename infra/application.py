"""Assemble the CDK app: configuration -> topology -> stack, checked by cdk-nag at synthesis."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra import REPO_ROOT
from infra.bundling import code_asset_dir
from infra.stack import SynclineStack
from syncline.config import DeployConfig, SynclineConfig, load_config
from syncline.topology import build_topology

STACK_ID = "Syncline"


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    """The feature flags in cdk.json, which only the CDK CLI would otherwise pass to the app."""
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context


def deploy_environment(environ: Mapping[str, str], deploy: DeployConfig) -> Environment:
    """Account and region of the stack: ``CDK_DEFAULT_ACCOUNT`` / ``CDK_DEFAULT_REGION``, else ``[deploy]``.

    The CDK CLI sets both variables from the active profile, so they win; a plain ``python app.py``
    takes ``[deploy]``'s values, and without either the stack is environment-agnostic. Each is
    resolved on its own. Nothing is looked up in AWS.
    """
    return Environment(
        account=environ.get("CDK_DEFAULT_ACCOUNT") or deploy.account,
        region=environ.get("CDK_DEFAULT_REGION") or deploy.region,
    )


def create_app(
    *,
    env: Environment | None = None,
    outdir: str | None = None,
    config: SynclineConfig | None = None,
    code_dir: Path | None = None,
) -> tuple[App, SynclineStack]:
    """The app and its stack, with AwsSolutions checks that fail synthesis on an unacknowledged error.

    Reads cdk.json's context itself so that ``python app.py``, ``cdk synth`` and the tests synthesise
    the same template; the CLI's own context still wins where both set a key.
    """
    app = App(outdir=outdir, context=cdk_json_context())
    config = config or load_config()
    stack = SynclineStack(
        app,
        STACK_ID,
        config=config,
        topology=build_topology(config),
        code_dir=code_dir or code_asset_dir(),
        env=env,
    )
    # Acknowledgments are also written into the template's Metadata: the audit trail travels with it.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app, stack
