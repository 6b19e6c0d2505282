"""``python app.py`` synthesises the cloud assembly on its own: no CDK CLI, no AWS call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import REPO_ROOT

pytestmark = pytest.mark.infra


def test_app_py_synthesises_for_the_cli_environment(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        # What the CDK CLI passes to the app; the account is a placeholder, never contacted.
        "CDK_OUTDIR": str(tmp_path),
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": "eu-west-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    stack = manifest["artifacts"]["Syncline"]
    assert stack["environment"] == "aws://123456789012/eu-west-1"
    assert (tmp_path / stack["properties"]["templateFile"]).is_file()
