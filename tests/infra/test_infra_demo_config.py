"""The demo's realistic configuration (ERP, storefront, two Shopify stores, OMS, HubSpot, Fracttal) synthesises
with cdk-nag clean, and every function may read exactly the secrets its FunctionSpec names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import FUNCTIONS_DIR
from infra.application import create_app
from syncline.config import load_config
from syncline.local.demo_stores import write_demo_config
from syncline.topology import build_topology
from tests.infra.test_infra_iam import allowed, secret_name, statements

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("demo-config")
    config = load_config(write_demo_config(work))
    app, stack = create_app(outdir=str(work / "cdk.out"), config=config, code_dir=FUNCTIONS_DIR)
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error
    template = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    return config, stack, json.loads(template.read_text(encoding="utf-8"))["Resources"]


def test_every_worker_of_the_realistic_configuration_is_deployed(synthesized: Any) -> None:
    _, stack, _ = synthesized
    assert {
        "sync_storefront",
        "sync_store_a",
        "sync_store_b",
        "sync_cmms",
        "sync_oms_order",
        "sync_storefront_price",
        "sync_store_a_price",
        "sync_store_b_price",
        "sync_store_a_shipment",
        "twoway_stores_inventory",
        "twoway_crm_customers",
        "outbox_drainer_oms",
        "conflict_sweeper",
        "token_refresher",
    } <= set(stack.functions)


def test_each_price_worker_has_its_queue_dlq_and_rule_for_price_notices(synthesized: Any) -> None:
    config, _, resources = synthesized
    topology = build_topology(config)
    for target in ("storefront", "store_a", "store_b"):
        queue = topology.queue(f"sync_{target}_price")
        worker = topology.function(queue.consumer)
        assert worker.handler == "handlers.price_worker.handler"
        assert worker.environment == {"SYNCLINE_TARGET": target} and worker.dead_letters_to == queue.id
        (rule,) = [r for r in topology.rules if r.queue == queue.id]
        assert rule.pattern["detail"] == {"entity": ["price"]} and rule.pattern["source"] == ["syncline.sage300"]
        queues = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SQS::Queue"]
        names = {q.get("QueueName") for q in queues}
        assert {queue.name, queue.dlq_name} <= names
    poller = topology.function("poller")
    assert poller.environment == {"SYNCLINE_SOURCE": "sage300"}


def test_each_function_reads_exactly_the_secrets_its_spec_names(synthesized: Any) -> None:
    config, stack, resources = synthesized
    for spec in build_topology(config).functions:
        logical_id = stack.get_logical_id(stack.functions[spec.id].node.default_child)
        granted = {
            secret_name(resource) for _, resource in allowed(statements(resources, logical_id), "secretsmanager:")
        }
        expected = {
            config.systems[name].secret if name in config.systems else config.webhooks[name.split(":", 1)[1]].secret
            for name in spec.secrets
        }
        assert granted == expected, spec.id


def test_the_order_and_shipment_workers_may_put_their_events_on_the_bus_and_nothing_more(synthesized: Any) -> None:
    _, stack, resources = synthesized
    (bus_id,) = [key for key, resource in resources.items() if resource["Type"] == "AWS::Events::EventBus"]
    for function_id in ("sync_oms_order", "sync_store_a_shipment"):  # OrderReceived..., ShipmentCreated
        logical_id = stack.get_logical_id(stack.functions[function_id].node.default_child)
        assert allowed(statements(resources, logical_id), "events:") == [
            ("events:PutEvents", {"Fn::GetAtt": [bus_id, "Arn"]})
        ], function_id
