"""The whole local stack in one object: ``LocalStack.up()`` starts it, ``down()`` stops it.

AWS services come from a moto server over HTTP, PostgreSQL from pgserver (or ``DATABASE_URL``), the
ERP from an emulated Sage 300 database, and the functions from ``syncline.topology`` run in-process
behind emulated triggers. Every boto3 call, SQL statement and handler is the one that runs in AWS.
"""

from __future__ import annotations

import functools
import json
import os
import secrets as secrets_module
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from syncline.adapters import aws
from syncline.adapters.pg_records import PostgresRecords
from syncline.adapters.storefront_pg import ensure_schema
from syncline.config import (
    FracttalSystem,
    HubSpotSystem,
    OmsSystem,
    PostgresSystem,
    RestSystem,
    SalesforceSystem,
    ShopifySystem,
    SynclineConfig,
    cached_config,
    load_config,
)
from syncline.connectors.oms_pg import ensure_schema as ensure_oms_schema
from syncline.local.api_gateway import ApiGateway, Route
from syncline.local.lambda_runtime import Invocation, LocalFunction, PollOutcome, SqsEventSource, scheduled_event
from syncline.local.moto_server import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer
from syncline.local.postgres import ERP_READER, PostgresServer
from syncline.local.provision import Resources, local_bus_name, provision
from syncline.local.sage300 import Sage300Emulator
from syncline.local.sandboxes.alerts import AlertsSandbox
from syncline.local.sandboxes.fracttal import FracttalSandbox
from syncline.local.sandboxes.generic_rest import GenericRestSandbox
from syncline.local.sandboxes.hubspot import HubSpotSandbox
from syncline.local.sandboxes.salesforce import SalesforceSandbox
from syncline.local.sandboxes.shopify import ShopifySandbox
from syncline.local.webhook_sender import WebhookSender, generate_secret
from syncline.settings import ENV_CONFIG, ENV_STATE_COMMIT
from syncline.systems import ENV_ENDPOINTS
from syncline.topology import Topology, alert_channel_id, build_topology, outbox_schedule_id

ERP_DATABASE = "sage300"
STOREFRONT_DATABASE = "storefront"


@dataclass
class LocalStack:
    config: SynclineConfig
    topology: Topology
    moto: MotoServer
    postgres: PostgresServer
    resources: Resources
    functions: dict[str, LocalFunction]
    event_sources: dict[str, SqsEventSource]
    work_dir: Path
    owns_services: bool = True
    _connections: list[Any] = field(default_factory=list)
    api: ApiGateway | None = None
    webhook_secrets: dict[str, list[str]] = field(default_factory=dict)
    """Generated signing secrets per webhook source (what a sender would be given), newest first."""
    sandboxes: dict[str, Any] = field(default_factory=dict)
    """The SaaS sandbox serving each HTTP system of the configuration (``SYNCLINE_ENDPOINTS``)."""
    alerts: AlertsSandbox | None = None
    """Slack and PagerDuty for the ``[alert_channels]`` of the configuration (``SYNCLINE_ENDPOINTS``)."""

    @classmethod
    def up(
        cls,
        *,
        config_path: Path | str | None = None,
        work_dir: Path | None = None,
        database_url: str | None = None,
        moto: MotoServer | None = None,
        postgres: PostgresServer | None = None,
        retry_after_seconds: int = 1,
        state_commit: str = "per_key",
    ) -> LocalStack:
        """Start (or reuse) the services, create every resource from the topology, wire the functions."""
        work_dir = work_dir or Path(tempfile.mkdtemp(prefix="syncline-local-"))
        work_dir.mkdir(parents=True, exist_ok=True)
        owns = moto is None and postgres is None
        moto = moto or MotoServer.start(log_file=work_dir / "moto.log")
        postgres = postgres or PostgresServer.start(database_url or os.environ.get("DATABASE_URL"), work_dir / "pgdata")
        config = load_config(config_path)
        _point_process_at(moto.endpoint, config_path)

        postgres.recreate_database(ERP_DATABASE)
        postgres.recreate_database(STOREFRONT_DATABASE)
        with postgres.connect(ERP_DATABASE) as erp:
            Sage300Emulator(erp).create_schema()
        reader_password = postgres.create_reader(ERP_DATABASE)
        with postgres.connect(STOREFRONT_DATABASE) as storefront:
            ensure_schema(storefront)
            # Two-way pairs between PostgreSQL systems: each system's table of records, in the storefront database.
            for name in sorted({s for p in config.pairs if p.direction == "two_way" for s in (p.source, p.target)}):
                system = config.systems[name]
                if isinstance(system, PostgresSystem):
                    PostgresRecords(name, functools.partial(_same, storefront), system.table).ensure_schema()

        sandboxes, secrets = _start_sandboxes(config)
        for name, system in config.systems.items():
            if isinstance(system, OmsSystem):  # the OMS: a database of its own, with its tables and outbox
                postgres.recreate_database(name)
                with postgres.connect(name) as oms:
                    ensure_oms_schema(oms)
                secrets[system.secret] = postgres.secret_for(name)
            elif system.kind == "sage300":
                secrets[system.secret] = postgres.secret_for(ERP_DATABASE, user=ERP_READER, password=reader_password)
            elif system.secret not in secrets:
                secrets[system.secret] = postgres.secret_for(STOREFRONT_DATABASE)
        endpoints = {name: sandbox.url for name, sandbox in sandboxes.items()}
        alerts = _start_alerts(config, secrets, endpoints)
        webhook_secrets = {name: [generate_secret(source.scheme)] for name, source in config.webhooks.items()}
        for name, source in config.webhooks.items():
            secrets[source.secret] = {"secrets": webhook_secrets[name]}
        topology = build_topology(config)
        resources = provision(topology, secrets, LOCAL_REGION)

        log_file = work_dir / "logs" / "functions.log"
        # moto copies the whole table for every TransactWriteItems call, so locally state is committed per key.
        local_env = {ENV_STATE_COMMIT: state_commit, ENV_ENDPOINTS: json.dumps(endpoints)}
        functions = {
            spec.id: LocalFunction(spec, {**resources.environment(spec), **local_env}, log_file)
            for spec in topology.functions
        }
        sqs = boto3.session.Session(region_name=LOCAL_REGION).client("sqs")
        event_sources = {
            queue_id: SqsEventSource(
                sqs,
                functions[queue.spec.consumer],
                queue.url,
                queue.arn,
                batch_size=queue.spec.batch_size,
                retry_after_seconds=retry_after_seconds,
            )
            for queue_id, queue in resources.queues.items()
        }
        stack = cls(config, topology, moto, postgres, resources, functions, event_sources, work_dir, owns)
        stack.webhook_secrets = webhook_secrets
        stack.sandboxes = sandboxes
        stack.alerts = alerts
        _relay_salesforce_events(config, sandboxes, topology.partner_buses)
        if topology.routes:
            routes = [Route(r.method, r.path, functions[r.function]) for r in topology.routes]
            stack.api = ApiGateway(routes).start()
            # Each store sends its webhooks to the source declared for it, signed with that source's secret.
            for source_name, source in config.webhooks.items():
                sandbox = sandboxes.get(source.system or "")
                if sandbox is not None:
                    sandbox.subscribe(
                        f"{stack.api.url}/webhooks/{source_name}",
                        scheme=source.scheme,
                        secret=webhook_secrets[source_name][0],
                    )
        return stack

    # -- sandboxes -----------------------------------------------------------------------------------
    def seed_shopify(self, system: str, skus: Sequence[str], *, available: int = 0) -> dict[str, str]:
        """Give store ``system`` a product per SKU, stocked at each configured location, and map each SKU's
        inventory item in the identity map (as `syncline map set inventory_item SKU SYSTEM ID` would)."""
        from syncline.adapters.identity_dynamodb import DynamoIdentityStore  # noqa: PLC0415
        from syncline.systems import INVENTORY_ITEM, shopify_gid  # noqa: PLC0415

        sandbox, settings = self.sandboxes[system], self.config.systems[system]
        assert isinstance(settings, ShopifySystem)  # noqa: S101 - a sandbox exists only for a shop
        identity = DynamoIdentityStore(
            boto3.session.Session(region_name=LOCAL_REGION).client("dynamodb"), self.resources.table
        )
        items: dict[str, str] = {}
        for sku in skus:
            product = sandbox.add_product(f"Product {sku}", [{"sku": sku, "price": "10.00"}])
            item = product.inventory_item_ids[0]
            for location in settings.locations.values():
                sandbox.stock(item, shopify_gid("Location", location), available=available)
            identity.set(INVENTORY_ITEM, sku, system, item)
            items[sku] = item
        return items

    # -- webhooks ------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """Base URL of the local API Gateway (webhooks at ``{api_url}/webhooks/{source}``)."""
        if self.api is None:
            raise RuntimeError("the topology declares no routes (no [webhooks] in the configuration)")
        return self.api.url

    def webhook_sender(self, source: str, client: httpx.Client) -> WebhookSender:
        """A sender signing with the source's current secret, posting through the local gateway."""
        scheme = self.config.webhooks[source].scheme
        return WebhookSender(self.api_url, source, scheme, self.webhook_secrets[source][0], client)

    def rotate_webhook_secret(self, source: str, *, keep_previous: bool = True) -> str:
        """Put a new signing secret first in the source's secret (keeping the old one while senders switch)."""
        new = generate_secret(self.config.webhooks[source].scheme)
        self.webhook_secrets[source] = [new, *self.webhook_secrets[source][:1]] if keep_previous else [new]
        secretsmanager = boto3.session.Session(region_name=LOCAL_REGION).client("secretsmanager")
        secretsmanager.put_secret_value(
            SecretId=self.config.webhooks[source].secret,
            SecretString=json.dumps({"secrets": self.webhook_secrets[source]}),
        )
        # In AWS the functions see the new value within their 5-minute secret cache; locally, at once.
        from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

        parameters.clear_caches()  # type: ignore[no-untyped-call]
        return new

    # -- the ERP user's side -------------------------------------------------------------------------
    def erp(self) -> Sage300Emulator:
        return Sage300Emulator(self._connect(ERP_DATABASE))

    def storefront(self) -> Any:
        """An admin connection to the storefront database (to inspect what Syncline wrote)."""
        return self._connect(STOREFRONT_DATABASE)

    def oms(self, system: str = "oms") -> Any:
        """A connection to OMS ``system``'s database as its own application uses it (its writes are not echoes)."""
        return self._connect(system)

    def _connect(self, database: str) -> Any:
        connection = self.postgres.connect(database)
        self._connections.append(connection)
        return connection

    # -- triggers ------------------------------------------------------------------------------------
    def run_schedule(self, schedule_id: str) -> Invocation:
        schedule = next(s for s in self.topology.schedules if s.id == schedule_id)
        rule_arn = f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{self.config.app}-{schedule.id}"
        return self.functions[schedule.function].invoke(scheduled_event(rule_arn))

    def poll_erp(self) -> Invocation:
        """Invoke the poller as its EventBridge schedule would; raise if the invocation failed."""
        return self._run_schedule_or_raise("poll_erp")

    def drain_outbox(self) -> list[Invocation]:
        """Run every OMS outbox drainer as its schedule would; raise if one failed."""
        prefix = outbox_schedule_id("")
        return [self._run_schedule_or_raise(s.id) for s in self.topology.schedules if s.id.startswith(prefix)]

    def _run_schedule_or_raise(self, schedule_id: str) -> Invocation:
        invocation = self.run_schedule(schedule_id)
        if invocation.error is not None:
            raise invocation.error
        return invocation

    def drain(self, queue_id: str | None = None, **options: Any) -> list[PollOutcome]:
        """Deliver queued messages until the queue (default: every queue) stays empty."""
        outcomes: list[PollOutcome] = []
        for source_id, source in self.event_sources.items():
            if queue_id in (None, source_id):
                outcomes.extend(source.drain(**options))
        return outcomes

    def settle(self, rounds: int = 20) -> int:
        """Deliver queued messages, the sandboxes' webhooks and the OMS outboxes until nothing moves; the messages
        delivered. Raises if it does not settle within ``rounds`` (a sync loop)."""
        delivered = 0
        for _ in range(rounds):
            for sandbox in self.sandboxes.values():
                sandbox.flush()
            self.drain_outbox()
            moved = sum(outcome.received for outcome in self.drain())
            if moved == 0:
                return delivered
            delivered += moved
        raise RuntimeError(f"still delivering after {rounds} rounds ({delivered} messages): a sync loop?")

    def dead_letters(self, queue_id: str) -> list[dict[str, Any]]:
        """Messages in a queue's DLQ, read without consuming them (visibility released at once)."""
        sqs = boto3.session.Session(region_name=LOCAL_REGION).client("sqs")
        url = self.resources.queues[queue_id].dlq_url
        seen: dict[str, Any] = {}
        for _ in range(20):
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=5,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                seen.setdefault(message["MessageId"], message)
        for message in seen.values():
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return [
            {
                "id": message["MessageId"],
                "body": _json_or_text(message["Body"]),
                "attributes": {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()},
                "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0")),
            }
            for message in seen.values()
        ]

    def status(self) -> dict[str, Any]:
        """What the stack holds right now: endpoints, queue and DLQ depths, checkpoints, row counts."""
        sqs = boto3.session.Session(region_name=LOCAL_REGION).client("sqs")
        queues = {}
        for queue_id, queue in self.resources.queues.items():
            depth = {}
            for label, url in (("queue", queue.url), ("dlq", queue.dlq_url)):
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                depth[label] = int(attributes["ApproximateNumberOfMessages"]) + int(
                    attributes["ApproximateNumberOfMessagesNotVisible"]
                )
            queues[queue_id] = {"name": queue.spec.name, **depth}
        erp_rows = self._connect(ERP_DATABASE).execute("SELECT count(*) FROM ICILOC").fetchone()
        store_rows = self._connect(STOREFRONT_DATABASE).execute("SELECT count(*) FROM inventory_levels").fetchone()
        return {
            "moto_endpoint": self.moto.endpoint,
            "postgres": "embedded (pgserver)" if self.postgres.embedded else "DATABASE_URL",
            "table": self.resources.table,
            "bus": self.resources.bus,
            "queues": queues,
            "erp_rows": erp_rows[0] if erp_rows else 0,
            "storefront_rows": store_rows[0] if store_rows else 0,
            "functions": {
                f.spec.id: {"invocations": f.invocations, "errors": f.errors} for f in self.functions.values()
            },
            "logs": str(self.functions[next(iter(self.functions))].log_file),
        }

    def down(self) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.stop()
        self.sandboxes.clear()
        if self.alerts is not None:
            self.alerts.stop()
            self.alerts = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        for connection in self._connections:
            connection.close()
        self._connections.clear()
        from handlers.dependencies import reset_dependencies  # noqa: PLC0415

        reset_dependencies()
        if self.owns_services:
            self.moto.stop()
            self.postgres.stop()


def _start_sandboxes(config: SynclineConfig) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A sandbox for each SaaS system of the configuration, and the secret each one's connector will read."""
    sandboxes: dict[str, Any] = {}
    secrets: dict[str, dict[str, Any]] = {}
    for name, system in config.systems.items():
        if isinstance(system, ShopifySystem):
            token = "shpat_" + secrets_module.token_hex(16)
            sandboxes[name] = ShopifySandbox(shop=system.shop, access_token=token, seed=len(sandboxes)).start()
            sandboxes[name].deliver_in_background()  # as Shopify: the API answers before the webhook leaves
            for code, location_id in system.locations.items():
                sandboxes[name].add_location(code, location_id)
            secrets[system.secret] = {"access_token": token}
        elif isinstance(system, HubSpotSystem):
            token = "pat-na1-" + secrets_module.token_hex(16)
            # auto_deliver: each change queues its webhook batch at once, sent from the background like HubSpot's.
            sandboxes[name] = HubSpotSandbox(seed=len(sandboxes), auto_deliver=True).start()
            sandboxes[name].deliver_in_background()
            sandboxes[name].add_app(token, system.app_id)
            secrets[system.secret] = {"token": token}
        elif isinstance(system, FracttalSystem):
            client_id, client_secret = f"syncline-{name}", secrets_module.token_urlsafe(24)
            sandboxes[name] = FracttalSandbox(clients={client_id: client_secret}, seed=len(sandboxes)).start()
            sandboxes[name].add_warehouse(system.warehouse_code)
            secrets[system.secret] = {"client_id": client_id, "client_secret": client_secret}
        elif isinstance(system, SalesforceSystem):
            client_id, client_secret = f"syncline-{name}", secrets_module.token_urlsafe(24)
            sandboxes[name] = SalesforceSandbox(clients={client_id: client_secret}, seed=len(sandboxes)).start()
            secrets[system.secret] = {"client_id": client_id, "client_secret": client_secret}
        elif isinstance(system, RestSystem):
            sandboxes[name], secrets[system.secret] = _generic_rest_sandbox(system, seed=len(sandboxes))
    return sandboxes, secrets


def _generic_rest_sandbox(system: RestSystem, *, seed: int) -> tuple[GenericRestSandbox, dict[str, Any]]:
    """The generic REST sandbox serving a declared REST system: its credential, and a collection for each entity
    whose upsert path is ``/api/<collection>/...``, keyed by the field the entity's key maps to."""
    from syncline.connectors.rest import RestAuthConfig, RestEntityConfig  # noqa: PLC0415

    auth = RestAuthConfig.model_validate(system.auth)
    credential = secrets_module.token_urlsafe(24)
    options: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    if auth.kind == "api_key":
        options = {"api_keys": [f"{auth.prefix}{credential}"], "api_key_header": auth.header}
        secret = {"api_key": credential}
    elif auth.kind == "bearer":
        options, secret = {"bearer_tokens": [credential]}, {"token": credential}
    sandbox = GenericRestSandbox(seed=seed, **options).start()
    for raw in system.entities.values():
        entity = RestEntityConfig.model_validate(raw)
        path = entity.upsert.path if entity.upsert else ""
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "api":
            sandbox.add_collection(parts[1], key=entity.fields[entity.key_field].source)
    return sandbox, secret


def _relay_salesforce_events(config: SynclineConfig, sandboxes: dict[str, Any], buses: Sequence[str]) -> None:
    """Salesforce's Event Relay, emulated: each change event the org's sandbox commits is put on the system's
    partner event bus (in the moto server) in the shape Event Relay gives it in AWS."""
    from syncline.salesforce_cdc import event_relay_entry  # noqa: PLC0415

    events = boto3.session.Session(region_name=LOCAL_REGION).client("events")
    for name, system in config.systems.items():
        source = system.event_source if isinstance(system, SalesforceSystem) else None
        if source is not None and source in buses and name in sandboxes:
            bus = local_bus_name(source)

            def relay(message: dict[str, Any], bus: str = bus, source: str = source) -> None:
                entry = event_relay_entry(message, source)
                answer = events.put_events(
                    Entries=[
                        {
                            "EventBusName": bus,
                            "Source": entry["Source"],
                            "DetailType": entry["DetailType"],
                            "Detail": entry["Detail"],
                        }
                    ]
                )
                if answer.get("FailedEntryCount"):
                    raise RuntimeError(f"event relay: {answer['Entries']}")

            sandboxes[name].relays.append(relay)


def _start_alerts(
    config: SynclineConfig, secrets: dict[str, dict[str, Any]], endpoints: dict[str, str]
) -> AlertsSandbox | None:
    """The alerts sandbox when a Slack or PagerDuty channel is configured: each channel's secret (a webhook
    URL, a routing key) made there, its endpoint in ``SYNCLINE_ENDPOINTS``; an SES sender verified in moto."""
    sandbox = None
    for name, channel in config.alert_channels.items():
        if channel.kind == "ses":
            sesv2 = boto3.session.Session(region_name=LOCAL_REGION).client("sesv2")
            sesv2.create_email_identity(EmailIdentity=channel.sender)
            continue
        if sandbox is None:
            sandbox = AlertsSandbox(seed=len(endpoints)).start()
        if channel.kind == "slack":
            secrets[channel.secret] = {"url": sandbox.slack_webhook()}
        else:
            secrets[channel.secret] = {"routing_key": sandbox.routing_key()}
        endpoints[alert_channel_id(name)] = sandbox.url
    return sandbox


def _same(value: Any) -> Any:
    return value


def _point_process_at(endpoint: str, config_path: Path | str | None) -> None:
    """Make this process's boto3 (and the in-process handlers) talk to the moto server."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "POWERTOOLS_SERVICE_NAME": "syncline",
            "POWERTOOLS_METRICS_NAMESPACE": "Syncline",
        }
    )
    if config_path:
        os.environ[ENV_CONFIG] = str(config_path)
    else:
        os.environ.pop(ENV_CONFIG, None)
    # Clients, secrets and configuration cached by an earlier stack in this process are stale now.
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

    from handlers.dependencies import reset_dependencies  # noqa: PLC0415
    from handlers.notifier import reset_notifier  # noqa: PLC0415
    from syncline.webhooks.sources import cached_ingress_config  # noqa: PLC0415

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    parameters.base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
    aws.reset_clients()
    cached_config.cache_clear()
    cached_ingress_config.cache_clear()
    reset_dependencies()
    reset_notifier()


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body
