"""The webhook function's view of syncline.toml: the same sources as the whole file, and none of the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncline.config import DEFAULT_PATH, ConfigError, load_config
from syncline.local.demo_stores import write_demo_config
from syncline.webhooks.sources import load_ingress_config

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.mark.parametrize("which", ["default", "demo"])
def test_the_view_holds_what_the_whole_file_says_about_webhooks(which: str, tmp_path: Path) -> None:
    path = DEFAULT_PATH if which == "default" else write_demo_config(tmp_path)
    whole, view = load_config(path), load_ingress_config(str(path))
    assert view.webhooks == whole.webhooks
    assert view.webhooks  # both files declare sources: the comparison is not of two empty maps
    assert {name: s.kind for name, s in view.systems.items()} == {name: s.kind for name, s in whole.systems.items()}
    hubspot = {name: s.app_id for name, s in whole.systems.items() if s.kind == "hubspot"}
    assert {name: view.systems[name].app_id for name in hubspot} == hubspot
    assert view.poller.notices_per_event == whole.poller.notices_per_event


def test_a_bad_webhook_source_is_refused_with_the_field_named(tmp_path: Path) -> None:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text().replace('scheme = "shopify"', 'scheme = "carrier-pigeon"', 1))
    with pytest.raises(ConfigError, match=r"webhooks\.shopify-store-a\.scheme"):
        load_ingress_config(str(path))


def test_a_source_name_that_is_no_url_segment_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text().replace("[webhooks.erp-events]", "[webhooks.ERP_events]", 1))
    with pytest.raises(ConfigError, match="ERP_events"):
        load_ingress_config(str(path))


def test_the_webhook_function_imports_none_of_the_rest_of_the_configuration() -> None:
    code = "import sys, json, handlers.webhook; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(FUNCTIONS)}
    ran = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    loaded = set(json.loads(ran.stdout.strip().splitlines()[-1]))
    assert "syncline.webhooks.sources" in loaded
    heavy = {
        "syncline.config",
        "syncline.topology",
        "syncline.conflicts",
        "syncline.notify",
        "syncline.canonical",  # ~50 ms of pydantic models the ingress never builds (via syncline.ports once)
        "aws_xray_sdk",
    }
    assert not heavy & loaded
