"""Every Lambda entry point puts the garbage collector back after its imports (``handlers.initialised``)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HANDLERS = Path(__file__).resolve().parents[2] / "functions" / "handlers"


def _defines_handler(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == "handler":
            return True
        if isinstance(node, ast.Assign) and any(ast.unparse(target) == "handler" for target in node.targets):
            return True
    return False


ENTRY_POINTS = sorted(path for path in HANDLERS.glob("*.py") if _defines_handler(path))


def test_the_entry_points_are_found() -> None:
    assert {"webhook.py", "sync_worker.py", "poller.py", "twoway_worker.py"} <= {p.name for p in ENTRY_POINTS}


@pytest.mark.parametrize("path", ENTRY_POINTS, ids=lambda path: path.stem)
def test_each_entry_point_ends_its_import_by_calling_initialised(path: Path) -> None:
    last = ast.parse(path.read_text()).body[-1]
    assert isinstance(last, ast.Expr), f"{path.name}: the last statement must be initialised()"
    assert ast.unparse(last.value) == "initialised()"


def test_after_importing_a_handler_the_collector_runs_with_defaults_and_init_is_frozen() -> None:
    code = (
        "import gc, json; default = gc.get_threshold(); import handlers; during = gc.get_threshold(); "
        "import handlers.webhook; "
        "print(json.dumps({'default': default, 'during': during, 'after': gc.get_threshold(), "
        "'frozen': gc.get_freeze_count()}))"
    )
    env = {**os.environ, "PYTHONPATH": str(HANDLERS.parent), "AWS_LAMBDA_FUNCTION_NAME": "syncline-webhook"}
    ran = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["during"][0] > seen["default"][0]
    assert seen["after"] == seen["default"]
    assert seen["frozen"] > 10_000  # what boto3, pydantic and the engine built at import
