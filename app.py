"""CDK entry point. ``python app.py`` (or ``cdk synth``) writes the cloud assembly; it makes no AWS call."""

from __future__ import annotations

import os

from aws_cdk import Environment

from infra import REPO_ROOT
from infra.application import create_app


def main() -> None:
    # Set by the CDK CLI from the active profile; absent for a plain `python app.py`, which then
    # synthesises an environment-agnostic stack.
    env = Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    # The CLI chooses the output folder through CDK_OUTDIR; run directly, the App would use a temp dir.
    outdir = None if "CDK_OUTDIR" in os.environ else str(REPO_ROOT / "cdk.out")
    app, _ = create_app(env=env, outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()
