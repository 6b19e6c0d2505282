"""CDK entry point. ``python app.py`` (or ``cdk synth``) writes the cloud assembly; it makes no AWS call."""

from __future__ import annotations

import os

from infra import REPO_ROOT
from infra.application import create_app, deploy_environment
from syncline.config import load_config


def main() -> None:
    config = load_config()
    # CDK_DEFAULT_ACCOUNT/REGION (set by the CDK CLI from the active profile) win over [deploy]; with
    # neither, the stack is environment-agnostic.
    env = deploy_environment(os.environ, config.deploy)
    # The CLI chooses the output folder through CDK_OUTDIR; run directly, the App would use a temp dir.
    outdir = None if "CDK_OUTDIR" in os.environ else str(REPO_ROOT / "cdk.out")
    app, _ = create_app(env=env, outdir=outdir, config=config)
    app.synth()


if __name__ == "__main__":
    main()
