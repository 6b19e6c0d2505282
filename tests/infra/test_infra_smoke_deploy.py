"""Smoke deployment: the synthesized template, deployed into the moto server, is the local stack.

The session's template is deployed as a CloudFormation stack into one region of the moto server and
the topology is provisioned the way the local stack does it (``syncline.local.provision``) into
another. The live resources of both are then described the same way and must be equal, and equal to
concrete values from the topology. A change on one side only (a queue setting in a construct, a
rule pattern in ``provision``) fails here.

moto 5.2.5's CloudFormation creates DynamoDB tables, SQS queues, event buses, archives and rules.
The rest of the template is left out of the deployed copy, each for a reason given above
``DEPLOYABLE_TYPES``; of those parts, TTL and the functions' environment are compared here from the
template itself, the rest in the other infra tests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infra.function_builder import POWERTOOLS_ENVIRONMENT
from syncline.local.moto_server import LOCAL_CREDENTIALS, LOCAL_REGION, MotoServer
from syncline.local.provision import Resources, provision
from syncline.topology import Topology
from tests.infra.conftest import Synthesized

pytestmark = [pytest.mark.infra, pytest.mark.integration]

CFN_REGION = "eu-west-1"  # the CloudFormation stack; the local stack's provisioning uses LOCAL_REGION
STACK_NAME = "Syncline"

# What the copy deploys. Left out, and why:
# - AWS::Lambda::* : the code is an asset in the CDK bootstrap bucket (Fn::Sub on cdk-hnb659fds-...),
#   which does not exist in moto; the local stack runs the same handlers in-process instead. Their
#   environment is compared below, resolved against the deployed resources.
# - AWS::IAM::*, AWS::KMS::*: moto does not enforce IAM; policies are asserted in test_infra_iam.py.
# - AWS::SQS::QueuePolicy (TLS only, EventBridge may send): moto 5.2.5 has no model for it and would
#   list a blank placeholder; test_infra_resources.py asserts the policies.
# - AWS::ApiGateway::*: the local stack serves the routes with its own gateway (test_infra_webhook_api.py).
# - AWS::CloudWatch::*, AWS::SNS::*, AWS::Logs::*: monitoring has no local counterpart.
# - The schedule rules: they target Lambda functions (not deployed); the local runner drives
#   schedules, and test_infra_resources.py checks their rates against the topology.
# Parameters/Rules (the CDK bootstrap version check reads SSM) and Outputs (the API URL) go too.
DEPLOYABLE_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::Events::EventBus",
        "AWS::Events::Archive",
        "AWS::Events::Rule",
    }
)


def _references(node: Any) -> Iterator[str]:
    """Logical ids a template fragment points at (Ref, Fn::GetAtt), pseudo parameters excluded."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                yield value
            elif key == "Fn::GetAtt":
                yield value[0] if isinstance(value, list) else value.split(".")[0]
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def deployable_copy(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The part of the template moto can create, adapted only where moto 5.2.5 parses CloudFormation wrongly."""
    kept = json.loads(json.dumps({key: value for key, value in resources.items() if value["Type"] in DEPLOYABLE_TYPES}))
    # Drop whatever points at a resource left out (the schedule rules target functions), transitively.
    while dangling := [key for key, value in kept.items() if any(ref not in kept for ref in _references(value))]:
        for key in dangling:
            del kept[key]
    bus_names = {
        key: value["Properties"]["Name"] for key, value in kept.items() if value["Type"] == "AWS::Events::EventBus"
    }
    for value in kept.values():
        properties = value["Properties"]
        # moto resolves {"Ref": <EventBus>} to its model object, not the bus name AWS returns.
        if value["Type"] == "AWS::Events::Rule" and isinstance(properties.get("EventBusName"), dict):
            properties["EventBusName"] = bus_names[properties["EventBusName"]["Ref"]]
        # moto's Archive expects the pattern as a JSON string; CloudFormation accepts the object too.
        if value["Type"] == "AWS::Events::Archive":
            properties["EventPattern"] = json.dumps(properties["EventPattern"])
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": kept}


def _name(url_or_arn: str) -> str:
    """A queue's name from its URL or ARN: the endpoint and region differ between the two sides."""
    return url_or_arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def describe(endpoint: str, region: str, topology: Topology) -> dict[str, Any]:
    """What is live in one region, in one shape for both sides: table, queues, buses, routing rules, archives."""
    session = boto3.session.Session(region_name=region, **LOCAL_CREDENTIALS)
    dynamodb, sqs, events = (session.client(name, endpoint_url=endpoint) for name in ("dynamodb", "sqs", "events"))
    table = dynamodb.describe_table(TableName=topology.table.name)["Table"]
    queues = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "null"))
        queues[_name(url)] = {
            "visibility_timeout": int(attributes["VisibilityTimeout"]),
            "retention_seconds": int(attributes["MessageRetentionPeriod"]),
            "redrive": redrive and (_name(redrive["deadLetterTargetArn"]), int(redrive["maxReceiveCount"])),
        }
    buses = sorted(bus["Name"] for bus in events.list_event_buses()["EventBuses"] if bus["Name"] != "default")
    rules = {}
    for bus in buses:
        # Rules EventBridge manages itself (the archive's) are not ours to compare.
        for rule in (r for r in events.list_rules(EventBusName=bus)["Rules"] if "ManagedBy" not in r):
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            rules[rule["Name"]] = {
                "bus": bus,
                "pattern": json.loads(rule["EventPattern"]),
                "targets": sorted(
                    (_name(t["Arn"]), _name(t["DeadLetterConfig"]["Arn"]) if "DeadLetterConfig" in t else None)
                    for t in targets
                ),
            }
    archives = {}
    for archive in events.list_archives()["Archives"]:
        detail = events.describe_archive(ArchiveName=archive["ArchiveName"])
        archives[archive["ArchiveName"]] = {
            "bus": _name(detail["EventSourceArn"]),
            "pattern": json.loads(detail["EventPattern"]),
            "retention_days": detail["RetentionDays"],
        }
    return {
        "table": {
            "key_schema": table["KeySchema"],
            "attributes": sorted(table["AttributeDefinitions"], key=lambda attribute: attribute["AttributeName"]),
            "billing_mode": table["BillingModeSummary"]["BillingMode"],
            "indexes": {
                index["IndexName"]: {"key_schema": index["KeySchema"], "projection": index["Projection"]}
                for index in table.get("GlobalSecondaryIndexes", [])
            },
        },
        "queues": queues,
        "buses": buses,
        "rules": rules,
        "archives": archives,
    }


@dataclass(frozen=True)
class Deployed:
    stack_status: str
    resource_types: Counter[str]
    physical_ids: dict[str, str]
    from_template: dict[str, Any]
    from_topology: dict[str, Any]
    local: Resources
    local_ttl: dict[str, Any]


@pytest.fixture(scope="module")
def deployed(services: tuple[MotoServer, Any], synthesized: Synthesized) -> Deployed:
    """Given the template deployed in one region and the topology provisioned in another, both described."""
    moto, _ = services
    moto.reset()
    with pytest.MonkeyPatch.context() as patch:
        # provision() builds its clients from the environment, as the local stack does.
        patch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIALS["aws_access_key_id"])
        patch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIALS["aws_secret_access_key"])
        local = provision(synthesized.topology, {}, LOCAL_REGION)

    session = boto3.session.Session(region_name=CFN_REGION, **LOCAL_CREDENTIALS)
    cloudformation = session.client("cloudformation", endpoint_url=moto.endpoint)
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(deployable_copy(synthesized.resources)))
    status = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    summaries = cloudformation.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    local_ttl = (
        session.client("dynamodb", endpoint_url=moto.endpoint, region_name=LOCAL_REGION)
        .describe_time_to_live(TableName=synthesized.topology.table.name)
        .get("TimeToLiveDescription", {})
    )
    return Deployed(
        stack_status=status,
        resource_types=Counter(s["ResourceType"] for s in summaries),
        physical_ids={s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries},
        from_template=describe(moto.endpoint, CFN_REGION, synthesized.topology),
        from_topology=describe(moto.endpoint, LOCAL_REGION, synthesized.topology),
        local=local,
        local_ttl=local_ttl,
    )


def test_the_template_deploys_every_supported_resource(deployed: Deployed, synthesized: Synthesized) -> None:
    assert deployed.stack_status == "CREATE_COMPLETE"
    # Everything of a deployable type except the schedule rules, which target the functions.
    expected = {
        key
        for key, value in synthesized.resources.items()
        if value["Type"] in DEPLOYABLE_TYPES and "ScheduleExpression" not in value["Properties"]
    }
    assert deployed.resource_types == Counter(synthesized.resources[key]["Type"] for key in expected)
    assert set(deployed.physical_ids) == expected
    # Guard against the filter silently emptying the copy: the core of the system is in it.
    assert set(deployed.resource_types) == DEPLOYABLE_TYPES


def test_the_deployed_template_and_the_local_stack_are_the_same_system(deployed: Deployed) -> None:
    assert deployed.from_template == deployed.from_topology


def test_the_live_resources_carry_the_topology_values(deployed: Deployed, synthesized: Synthesized) -> None:
    topology = synthesized.topology
    live = deployed.from_template
    assert live["table"] == {
        "key_schema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "attributes": [
            {"AttributeName": "created_at", "AttributeType": "S"},
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        "billing_mode": "PAY_PER_REQUEST",
        # The conflict list by status (DESIGN: CF#{id} items, index on status), oldest first.
        "indexes": {
            index.name: {
                "key_schema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "projection": {"ProjectionType": "ALL"},
            }
            for index in topology.table.indexes
        },
    }
    assert set(live["table"]["indexes"]) == {"by-status"}
    assert live["buses"] == [topology.bus_name] == ["syncline"]
    expected_queues = {}
    for spec in topology.queues:
        expected_queues[spec.name] = {
            "visibility_timeout": 6 * topology.function(spec.consumer).timeout_seconds,
            "retention_seconds": spec.retention_days * 86400,
            "redrive": (spec.dlq_name, spec.max_receive_count),
        }
        expected_queues[spec.dlq_name] = {
            "visibility_timeout": 30,
            "retention_seconds": spec.dlq_retention_days * 86400,
            "redrive": None,
        }
    assert live["queues"] == expected_queues
    assert live["queues"]["syncline-sync-storefront"] == {
        "visibility_timeout": 180,
        "retention_seconds": 4 * 86400,
        "redrive": ("syncline-sync-storefront-dlq", 5),
    }
    assert live["rules"] == {
        rule.name: {
            "bus": topology.bus_name,
            "pattern": rule.pattern,
            "targets": [(topology.queue(rule.queue).name, topology.queue(rule.queue).dlq_name)],
        }
        for rule in topology.rules
    }
    assert live["archives"] == {
        "syncline-notices": {"bus": "syncline", "pattern": {"source": [{"prefix": "syncline."}]}, "retention_days": 30}
    }
    assert live["rules"]["syncline-to-storefront"]["pattern"] == {
        "source": ["syncline.sage300"],
        "detail-type": ["ChangeNotices"],
        "detail": {"entity": ["inventory_level"]},
    }


def test_ttl_is_on_the_same_attribute_in_the_template_and_the_local_table(
    deployed: Deployed, synthesized: Synthesized
) -> None:
    # moto's CloudFormation ignores TimeToLiveSpecification, so the template's property is read directly.
    (table,) = synthesized.of_type("AWS::DynamoDB::Table").values()
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert deployed.local_ttl == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": synthesized.topology.table.ttl_attribute,
    }


def test_functions_get_the_environment_the_local_stack_gives_its_handlers(
    deployed: Deployed, synthesized: Synthesized
) -> None:
    # The functions are not deployed; their environment is resolved against what was, as AWS would.
    bus_names = {
        key: value["Properties"]["Name"] for key, value in synthesized.of_type("AWS::Events::EventBus").items()
    }

    def resolve(value: Any) -> str:
        if isinstance(value, str):
            return value
        logical_id = value["Ref"]
        # moto reports no physical id for an event bus; AWS's Ref of one is its name.
        return _name(bus_names.get(logical_id) or deployed.physical_ids[logical_id])

    for spec in synthesized.topology.functions:
        variables = synthesized.function_properties(spec.id)["Environment"]["Variables"]
        deployed_env = {key: resolve(value) for key, value in variables.items() if key not in POWERTOOLS_ENVIRONMENT}
        local_env = {key: _name(value) for key, value in deployed.local.environment(spec).items()}
        assert deployed_env == local_env, spec.id
    storefront_worker = synthesized.function_properties("sync_storefront")["Environment"]["Variables"]
    assert resolve(storefront_worker["SYNCLINE_DLQ_URL"]) == "syncline-sync-storefront-dlq"
