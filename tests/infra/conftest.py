"""Synthesise the CDK app once per session; every infra test reads the same template.

Synthesis takes seconds, so the tests share it. It runs with the cdk-nag plugin, exactly as
``python app.py`` does, and uses the unbundled ``functions/`` asset so that it needs no pip,
network or previous ``make bundle``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from infra import FUNCTIONS_DIR
from infra.application import create_app
from infra.stack import SynclineStack
from syncline.config import SynclineConfig, load_config
from syncline.topology import Topology, build_topology


@dataclass(frozen=True)
class Synthesized:
    config: SynclineConfig
    topology: Topology
    stack: SynclineStack
    outdir: Path
    template_path: Path
    template: assertions.Template
    resources: dict[str, dict[str, Any]]

    def logical_id(self, function_id: str) -> str:
        """The template's logical id of the Lambda function built for a FunctionSpec id."""
        return self.stack.get_logical_id(self.stack.functions[function_id].node.default_child)

    def function_properties(self, function_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[self.logical_id(function_id)]["Properties"]
        return properties

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def queue_ids(self, queue_id: str) -> tuple[str, str]:
        """Logical ids of a QueueSpec's queue and dead-letter queue."""
        queue = self.stack.queues[queue_id]
        return (
            self.stack.get_logical_id(queue.queue.node.default_child),
            self.stack.get_logical_id(queue.dead_letter_queue.node.default_child),
        )

    @staticmethod
    def ref(logical_id: str) -> dict[str, str]:
        return {"Ref": logical_id}

    @staticmethod
    def arn(logical_id: str) -> dict[str, list[str]]:
        return {"Fn::GetAtt": [logical_id, "Arn"]}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    config = load_config()
    app, stack = create_app(outdir=str(outdir), config=config, code_dir=FUNCTIONS_DIR)
    # Raises if cdk-nag reports an unacknowledged error: the fixture itself is the first check.
    assembly = app.synth()
    template_path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    template_json = json.loads(template_path.read_text(encoding="utf-8"))
    return Synthesized(
        config=config,
        topology=build_topology(config),
        stack=stack,
        outdir=outdir,
        template_path=template_path,
        template=assertions.Template.from_json(template_json),
        resources=template_json["Resources"],
    )
