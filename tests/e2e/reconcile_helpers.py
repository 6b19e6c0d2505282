"""What the reconcile end-to-end tests share: the CLI against the stack's config, the discrepancies a report
found, and a stack whose SaaS sandboxes the CLI can reach."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncline.local.stack import LocalStack
from syncline.systems import ENV_ENDPOINTS
from tests.e2e import helpers


def cli(stack: LocalStack, *argv: str) -> tuple[int, Any]:
    """``syncline ARGV --config <the stack's file>``: (exit code, parsed JSON or the text printed)."""
    return helpers.run_cli(stack, *argv, "--config", str(stack.config_file))  # type: ignore[attr-defined]


def found(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The (kind, key) of every discrepancy in a compare report."""
    return {(d["kind"], d["key"]) for d in document["discrepancies"]}


@contextlib.contextmanager
def sandbox_stack(
    services: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str
) -> Iterator[LocalStack]:
    """``helpers.stack_with`` whose sandboxes the CLI reaches as an operator points it anywhere: SYNCLINE_ENDPOINTS."""
    with helpers.stack_with(services, tmp_path, extra) as local:
        monkeypatch.setenv(ENV_ENDPOINTS, json.dumps({name: box.url for name, box in local.sandboxes.items()}))
        yield local
