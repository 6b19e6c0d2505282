"""Where the operations CLI points, and the adapters it builds there: the one place that knows boto3.

Target resolution, first match wins (``syncline --help`` and docs/OPERATIONS.md say the same):

1. ``--endpoint-url URL``: that endpoint (a moto server, LocalStack); credentials from the profile or
   environment, else moto's test credentials.
2. ``--aws``, ``--profile`` or ``--region``: AWS, with boto3's usual credential chain.
3. ``.local/stack.json`` exists (``syncline local up`` is running here): the local stack.
4. Otherwise AWS with boto3's defaults (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``...).

A local stack found by (3) is never mistaken for AWS and vice versa: every command prints its
target on stderr before it acts.

Resources are found by the names the topology gives them (the CDK app deploys the same names), and
database connections from the connection secrets the configuration names, exactly as the functions
find theirs.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import boto3
from botocore.config import Config

from syncline.adapters.sqs_dlq import SqsDeadLetterQueue
from syncline.config import SynclineConfig, load_config
from syncline.db import DbSettings, connect
from syncline.erp.sage300 import STREAMS
from syncline.ops.dlq import peek
from syncline.ops.health import PairFigures, QueueFigures
from syncline.review import ConflictReview
from syncline.stamps import StampError, parse_stamp
from syncline.topology import QueueSpec, Topology, build_topology

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    from syncline.systems import SystemFactory
    from syncline.twoway import TwoWaySync

STATE_FILE = Path(".local") / "stack.json"
LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)
_NO_RETRY = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30)


class TargetUnavailable(RuntimeError):
    """Nothing to talk to (no local stack, unreachable endpoint); the CLI exits 3."""


@dataclass(frozen=True)
class Target:
    """Where the commands act: ``label`` is printed before anything happens."""

    label: str
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    local: bool = False


def resolve_target(
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    force_aws: bool = False,
    state_file: Path = STATE_FILE,
) -> Target:
    """Apply the resolution order of the module docstring."""
    if endpoint_url:
        host = urllib.parse.urlparse(endpoint_url).hostname or ""
        local = host in {"127.0.0.1", "localhost", "::1"}
        return Target(f"endpoint {endpoint_url}", endpoint_url, profile, region or LOCAL_REGION, local)
    if force_aws or profile or region:
        return Target(f"AWS (profile {profile or 'default'}, region {region or 'default'})", None, profile, region)
    if state_file.exists():
        state = json.loads(state_file.read_text())
        endpoint = state["moto_endpoint"]
        return Target(f"local stack at {endpoint} (from {state_file})", endpoint, None, LOCAL_REGION, True)
    return Target("AWS (default profile and region)")


class OpsContext:
    """The configuration, topology, AWS clients and database connections of one CLI run."""

    def __init__(self, target: Target, config_path: str | Path | None = None) -> None:
        self.target = target
        self.config: SynclineConfig = load_config(config_path)
        self.topology: Topology = build_topology(self.config)
        self._connections: list[Any] = []

    @cached_property
    def session(self) -> boto3.session.Session:
        session = boto3.session.Session(profile_name=self.target.profile, region_name=self.target.region)
        if self.target.endpoint_url and session.get_credentials() is None:
            session = boto3.session.Session(
                aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
                aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
                region_name=self.target.region or LOCAL_REGION,
            )
        return session

    def client(self, service: str, *, retries: bool = True) -> Any:
        return self.session.client(  # type: ignore[call-overload]
            service, endpoint_url=self.target.endpoint_url, config=_CONFIG if retries else _NO_RETRY
        )

    @cached_property
    def sqs(self) -> SQSClient:
        client: SQSClient = self.client("sqs")
        return client

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb")
        return client

    @property
    def table(self) -> str:
        return self.topology.table.name

    # -- queues ------------------------------------------------------------------------------------------
    def queue_spec(self, wanted: str) -> QueueSpec:
        """A queue by id (``sync_storefront``), name (``syncline-sync-storefront``, or its ``-dlq``) or target."""
        for spec in self.topology.queues:
            if wanted in {spec.id, spec.name, spec.dlq_name, spec.id.removeprefix("sync_")}:
                return spec
        known = ", ".join(spec.id for spec in self.topology.queues)
        raise LookupError(f"no queue {wanted!r}; known: {known}")

    def queue_specs(self, wanted: str | None) -> list[QueueSpec]:
        return [self.queue_spec(wanted)] if wanted else list(self.topology.queues)

    def queue_url(self, name: str) -> str:
        try:
            return self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except self.sqs.exceptions.QueueDoesNotExist:
            raise LookupError(f"queue {name} does not exist at {self.target.label}") from None
        except Exception as exc:
            if "Could not connect" in str(exc) and self.target.local:
                raise TargetUnavailable(
                    f"nothing answers at {self.target.endpoint_url}: start the local stack with `syncline local up`, "
                    "or pass --aws / --profile to act on AWS"
                ) from None
            raise

    def queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def dead_letter_queue(self, spec: QueueSpec) -> SqsDeadLetterQueue:
        dlq_url, source_url = self.queue_url(spec.dlq_name), self.queue_url(spec.name)
        return SqsDeadLetterQueue(
            self.sqs,
            queue_id=spec.id,
            dlq_url=dlq_url,
            dlq_arn=self.queue_arn(dlq_url),
            source_url=source_url,
            source_arn=self.queue_arn(source_url),
            wait_seconds=0 if self.target.local else 1,
            move_client=self.client("sqs", retries=False),
        )

    def queue_depths(self, spec: QueueSpec) -> dict[str, int]:
        depths = {}
        for label, name in (("waiting", spec.name), ("dlq", spec.dlq_name)):
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url(name),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            if label == "waiting":
                depths["waiting"] = int(attributes["ApproximateNumberOfMessages"])
                depths["in_flight"] = int(attributes["ApproximateNumberOfMessagesNotVisible"])
                depths["delayed"] = int(attributes["ApproximateNumberOfMessagesDelayed"])
            else:
                depths["dlq"] = int(attributes["ApproximateNumberOfMessages"]) + int(
                    attributes["ApproximateNumberOfMessagesNotVisible"]
                )
        return depths

    # -- databases ---------------------------------------------------------------------------------------
    def db_settings(self, system: str) -> DbSettings:
        secret = self.client("secretsmanager").get_secret_value(SecretId=self.config.systems[system].secret)
        return DbSettings.model_validate(json.loads(secret["SecretString"]))

    def connection(self, system: str, *, read_only: bool) -> Any:
        """A new connection to ``system`` from its connection secret; closed by ``close``."""
        connection = connect(self.db_settings(system), read_only=read_only)
        self._connections.append(connection)
        return connection

    # -- two-way sync and its conflict list ---------------------------------------------------------------
    @cached_property
    def systems(self) -> SystemFactory:
        """Every system's adapters, as the functions build them (endpoints from SYNCLINE_ENDPOINTS or the
        running local stack's state file)."""
        from syncline.adapters.identity_dynamodb import DynamoIdentityStore  # noqa: PLC0415
        from syncline.systems import ENV_ENDPOINTS, SystemFactory, parse_endpoints  # noqa: PLC0415

        connections: dict[str, Any] = {}

        def connection(name: str) -> Any:
            if name not in connections:
                connections[name] = self.connection(name, read_only=False)
            return lambda: connections[name]

        secrets: dict[str, Any] = {}

        def secret(name: str) -> Any:
            if name not in secrets:
                value = self.client("secretsmanager").get_secret_value(SecretId=self.config.systems[name].secret)
                secrets[name] = json.loads(value["SecretString"])
            return secrets[name]

        endpoints = parse_endpoints(os.environ.get(ENV_ENDPOINTS))
        if not endpoints and self.target.local and STATE_FILE.exists():
            endpoints = json.loads(STATE_FILE.read_text()).get("endpoints", {})
        return SystemFactory(
            self.config,
            secret=secret,
            connection=connection,
            identity=DynamoIdentityStore(self.dynamodb, self.table),
            dynamodb=self.dynamodb,
            table=self.table,
            endpoints=endpoints,
        )

    def twoway(self, pair_name: str) -> TwoWaySync:
        """The pair's engine, as its worker builds it (a person's decision goes through the same write path)."""
        from syncline.adapters.twoway_dynamodb import dynamo_twoway  # noqa: PLC0415

        owner = f"cli-{os.getpid()}"
        return dynamo_twoway(self.config, pair_name, self.systems.record_system, self.dynamodb, self.table, owner)

    def conflict_review(self) -> ConflictReview:
        from syncline.adapters.conflicts_dynamodb import DynamoConflictStore  # noqa: PLC0415

        return ConflictReview(
            DynamoConflictStore(self.dynamodb, self.table),
            lambda: datetime.now(UTC),
            timedelta(hours=self.config.review.escalate_after_hours),
        )

    def close(self) -> None:
        for connection in self._connections:
            connection.close()
        self._connections.clear()


def health_figures(ops: OpsContext, *, scan_state: bool = True) -> tuple[list[PairFigures], list[QueueFigures]]:
    """Gather ``syncline.ops.health`` inputs from SQS and the state table (see that module)."""
    now = datetime.now(UTC)
    queues = []
    for spec in ops.topology.queues:
        depths = ops.queue_depths(spec)
        letters = peek(ops.dead_letter_queue(spec), limit=10_000)
        queues.append(
            QueueFigures(
                queue=spec.id,
                waiting=depths["waiting"],
                in_flight=depths["in_flight"],
                delayed=depths["delayed"],
                dlq=depths["dlq"],
                dlq_oldest=min((m.when for m in letters), default=None),
                dlq_last_hour=sum(1 for m in letters if m.when >= now - timedelta(hours=1)),
            )
        )
    pairs = []
    queue_of = {name: spec.id for spec in ops.topology.queues for name in spec.pairs}
    for pair in ops.config.pairs:
        tz = ZoneInfo(ops.config.systems[pair.source].timezone)
        detected, moved = _checkpoint_figures(ops, pair.source, tz)
        pairs.append(
            PairFigures(
                pair=pair.name,
                queue=queue_of.get(pair.name, f"sync_{pair.target}"),
                last_sync_at=_latest_sync(ops, pair.name) if scan_state else None,
                last_change_detected=detected,
                checkpoint_moved_at=moved,
            )
        )
    return pairs, queues


def _checkpoint_figures(ops: OpsContext, source: str, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    detected: datetime | None = None
    moved: datetime | None = None
    for stream in STREAMS:
        item = ops.dynamodb.get_item(TableName=ops.table, Key={"pk": {"S": f"CP#{source}#{stream}"}}).get("Item")
        if not item:
            continue
        position = json.loads(item["position"]["S"])
        if len(position) >= 2:
            with contextlib.suppress(StampError):
                stamp = parse_stamp(int(position[0]), int(position[1]), tz).astimezone(UTC)
                detected = max(detected, stamp) if detected else stamp
        if "updated_at" in item:
            at = datetime.fromisoformat(item["updated_at"]["S"])
            moved = max(moved, at) if moved else at
    return detected, moved


def _latest_sync(ops: OpsContext, pair: str) -> datetime | None:
    """Newest ``synced_at`` of the pair's state items: a Scan, so it reads the whole table (use --quick to skip)."""
    latest: str | None = None
    paginator = ops.dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=ops.table,
        FilterExpression="begins_with(pk, :prefix)",
        ProjectionExpression="synced_at",
        ExpressionAttributeValues={":prefix": {"S": f"ST#{pair}#"}},
    ):
        for item in page.get("Items", []):
            value = item.get("synced_at", {}).get("S")
            if value and (latest is None or value > latest):
                latest = value
    return datetime.fromisoformat(latest) if latest else None
