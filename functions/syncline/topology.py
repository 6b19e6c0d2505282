"""One definition of Syncline's AWS resources, read by the CDK app and by the local stack.

Plain data, no AWS imports: ``infra/`` turns it into CloudFormation, ``syncline.local`` into moto
resources, so what runs locally is what deploys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from syncline.config import ConfigError, SynclineConfig
from syncline.models import NOTICE_DETAIL_TYPE, NOTICE_SOURCE_PREFIX

MONITOR_RATE_SECONDS = 300  # the health report and its metrics, every five minutes
RECONCILE_RATE_SECONDS = 6 * 3600  # a full read of every pair: often enough to measure, never a burden on the ERP
DIGEST_RATE_SECONDS = 24 * 3600  # the daily digest e-mail
TOKEN_REFRESH_RATE_SECONDS = 600  # OAuth2 tokens refreshed ahead of expiry (handlers.token_refresher)
OUTBOX_DRAIN_RATE_SECONDS = 60  # an OMS that is a source: its outbox drained onto the bus (handlers.outbox_drainer)
WEBHOOK_ROUTE = "/webhooks/{source}"


def notice_archive_name(bus_name: str) -> str:
    """The EventBridge archive of every notice on the bus (the CDK app's NoticeBus; read by `syncline replay`)."""
    return f"{bus_name}-notices"


def webhook_secret_id(source: str) -> str:
    """How a FunctionSpec names the signing secret of a webhook source (systems are named plainly)."""
    return f"webhook:{source}"


def alert_channel_id(channel: str) -> str:
    """How a FunctionSpec names an alert channel's secret, and the key of its endpoint in SYNCLINE_ENDPOINTS."""
    return f"alert:{channel}"


NOTIFY_QUEUE = "notify"
NOTIFIER = "notifier"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True)


class IndexSpec(_Spec):
    """A global secondary index with string keys, projecting every attribute."""

    name: str
    partition_key: str
    sort_key: str


# The conflict list (CF#{id} items) by status, oldest first: pending / escalated / resolved. Sparse: only
# items with both string attributes are in it (JOB# items have a status but no created_at).
CONFLICT_STATUS_INDEX = IndexSpec(name="by-status", partition_key="status", sort_key="created_at")


class TableSpec(_Spec):
    name: str
    partition_key: str = "pk"
    ttl_attribute: str = "expires_at"
    indexes: tuple[IndexSpec, ...] = (CONFLICT_STATUS_INDEX,)


class FunctionSpec(_Spec):
    id: str
    handler: str = Field(description="module.function under functions/")
    timeout_seconds: int = 30
    memory_mb: int = 512
    reserved_concurrency: int | None = None
    description: str = ""
    environment: dict[str, str] = Field(default_factory=dict, description="function-specific settings")
    # What the function touches: the CDK app grants exactly this, the local stack wires exactly this.
    table_access: Literal["read", "readwrite"] | None = None
    publishes_notices: bool = False
    dead_letters_to: str | None = Field(None, description="QueueSpec.id whose DLQ it writes directly")
    secrets: tuple[str, ...] = Field(
        (),
        description="systems whose connection secret it reads; webhook_secret_id(source) for a webhook source's, "
        "alert_channel_id(channel) for an alert channel's",
    )
    inspects_queues: bool = Field(
        False, description="reads every work queue's depth and peeks every DLQ without consuming (the monitor)"
    )
    escalates: bool = Field(False, description="publishes to the escalation topic (the conflict sweeper)")
    sends_email_as: str | None = Field(None, description="SES identity (address) it sends e-mail from (the digest)")


class QueueSpec(_Spec):
    id: str
    name: str
    consumer: str = Field(description="FunctionSpec.id that consumes it")
    pairs: tuple[str, ...] = Field((), description="the sync pairs whose work it carries")
    batch_size: int = 10
    max_batching_window_seconds: int = 1
    max_receive_count: int = 5
    retention_days: int = 4
    dlq_retention_days: int = 14

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


class RuleSpec(_Spec):
    id: str
    name: str
    pattern: dict[str, Any]
    queue: str = Field(description="QueueSpec.id of the target")
    bus: str | None = Field(None, description="the partner event bus it is on (None: Syncline's notice bus)")


class ScheduleSpec(_Spec):
    id: str
    rate_seconds: int
    function: str


class RouteSpec(_Spec):
    method: str
    path: str
    function: str


class TopicSpec(_Spec):
    id: str
    name: str
    description: str = ""


class Topology(_Spec):
    app: str
    table: TableSpec
    bus_name: str
    functions: tuple[FunctionSpec, ...]
    queues: tuple[QueueSpec, ...]
    rules: tuple[RuleSpec, ...]
    schedules: tuple[ScheduleSpec, ...]
    routes: tuple[RouteSpec, ...] = ()
    escalation_topic: TopicSpec | None = None
    partner_buses: tuple[str, ...] = Field(
        (), description="SaaS partner event sources (Salesforce Event Relay) to receive on a bus of their own name"
    )

    def function(self, function_id: str) -> FunctionSpec:
        return next(f for f in self.functions if f.id == function_id)

    def queue(self, queue_id: str) -> QueueSpec:
        return next(q for q in self.queues if q.id == queue_id)

    def visibility_timeout(self, queue: QueueSpec) -> int:
        """AWS's advice: at least 6x the consumer's timeout, so a slow batch is not redelivered mid-run."""
        return 6 * self.function(queue.consumer).timeout_seconds


# System kinds the two-way worker can read and write as records (``syncline.systems.SystemFactory``).
TWO_WAY_KINDS = frozenset({"postgres", "shopify", "hubspot", "oms", "salesforce", "rest"})
# Kinds whose two-way record view serves one entity only: CRM contacts and OMS customers, keyed by e-mail.
TWO_WAY_ENTITIES: dict[str, frozenset[str]] = {
    "hubspot": frozenset({"contact"}),
    "oms": frozenset({"contact"}),
    "salesforce": frozenset({"contact"}),
}
# System kinds the one-way inventory worker can write ERP stock into.
INVENTORY_TARGET_KINDS = frozenset({"postgres", "shopify", "fracttal", "rest"})
# Salesforce Change Data Capture: the change event (EventBridge detail-type through Event Relay) of each entity.
SALESFORCE_CHANGE_EVENTS = {
    "contact": "ContactChangeEvent",
    "account": "AccountChangeEvent",
    "deal": "OpportunityChangeEvent",
}
# One-way pairs a worker serves: entity -> (source kind, target kind) combinations, and the worker.
ONE_WAY_KINDS: dict[str, frozenset[tuple[str, str]]] = {
    "inventory_level": frozenset(("sage300", target) for target in INVENTORY_TARGET_KINDS),
    "order": frozenset({("shopify", "oms")}),
    "shipment": frozenset({("oms", "shopify")}),
    "price": frozenset({("sage300", "postgres"), ("sage300", "shopify")}),
}
ONE_WAY_WORKERS = {
    "inventory_level": (
        "handlers.sync_worker.handler",
        "Fetch-on-notify sync into {target}: source -> canonical -> state cache -> write",
    ),
    "order": ("handlers.order_worker.handler", "Orders into {target}: fetched fresh from the store, guarded upsert"),
    "shipment": (
        "handlers.shipment_worker.handler",
        "Shipments into {target} fulfilments: read fresh from the OMS, fulfilled once with tracking",
    ),
    "price": (
        "handlers.price_worker.handler",
        "ERP prices into {target}: fetched fresh from ICPRICP -> canonical -> state cache -> guarded write",
    ),
}


def outbox_schedule_id(system: str) -> str:
    """The schedule draining an OMS system's outbox (``LocalStack.drain_outbox`` runs them all)."""
    return f"drain_outbox_{system}"


def cdc_relay_id(system: str) -> str:
    """The queue and function relaying a Salesforce system's change events (Event Relay) onto the notice bus."""
    return f"cdc_{system}"


def _salesforce_sources(config: SynclineConfig) -> dict[str, set[str]]:
    """Salesforce systems whose changes some pair reads (either side of a two-way pair, the source of a one-way
    one) -> the entities read."""
    read: dict[str, set[str]] = {}
    for pair in config.pairs:
        for name in (pair.source, pair.target) if pair.direction == "two_way" else (pair.source,):
            if config.systems[name].kind == "salesforce":
                read.setdefault(name, set()).add(pair.entity)
    return read


def _add_salesforce_relays(
    config: SynclineConfig, functions: list[FunctionSpec], queues: list[QueueSpec], rules: list[RuleSpec]
) -> tuple[str, ...]:
    """Per Salesforce source: a rule on its Event Relay's partner bus -> a queue -> the relay function, which
    turns each CDC event into ChangeNotices on the notice bus (Syncline's own writes dropped by changeOrigin).
    The partner buses to create."""
    buses = []
    for name, entities in sorted(_salesforce_sources(config).items()):
        system = config.systems[name]
        event_source = getattr(system, "event_source", None)
        if not event_source:
            raise ConfigError(
                f"system {name!r}: a pair reads its changes, so it needs event_source (the partner event source "
                "your Salesforce Event Relay created: aws.partner/salesforce.com/<org id>/<channel id>)"
            )
        ident = cdc_relay_id(name)
        # No pairs listed: a pair's status names its worker's queue, and the relay's alarms keep the defaults.
        queue = QueueSpec(id=ident, name=f"{config.app}-cdc-{name}", consumer=ident)
        functions.append(
            FunctionSpec(
                id=ident,
                handler="handlers.salesforce_cdc.handler",
                timeout_seconds=30,
                description=f"Salesforce {name} Change Data Capture (Event Relay) -> ChangeNotices; echoes dropped",
                environment={"SYNCLINE_SOURCE": name},
                publishes_notices=True,
                dead_letters_to=queue.id,
            )
        )
        queues.append(queue)
        rules.append(
            RuleSpec(
                id=ident,
                name=f"{config.app}-cdc-{name}",
                pattern={
                    "source": [event_source],
                    "detail-type": sorted(
                        SALESFORCE_CHANGE_EVENTS[e] for e in entities if e in SALESFORCE_CHANGE_EVENTS
                    ),
                },
                queue=queue.id,
                bus=event_source,
            )
        )
        buses.append(event_source)
    return tuple(dict.fromkeys(buses))


def rest_poll_schedule_id(system: str) -> str:
    """The schedule listing a REST system's records for changes (``handlers.rest_poller``)."""
    return f"poll_rest_{system}"


def _rest_sources(config: SynclineConfig) -> dict[str, set[str]]:
    """REST systems on either side of a two-way pair -> the entities those pairs carry."""
    read: dict[str, set[str]] = {}
    for pair in config.pairs:
        if pair.direction == "two_way":
            for name in (pair.source, pair.target):
                if config.systems[name].kind == "rest":
                    read.setdefault(name, set()).add(pair.entity)
    return read


def _check_rest_records(config: SynclineConfig) -> None:
    """A REST system in a two-way pair is polled and written as records: one entity, declared with list, get and
    upsert endpoints, and an ``updated_at`` mapping (the time its copy speaks with in a conflict)."""
    for name, entities in _rest_sources(config).items():
        if len(entities) > 1:
            raise ConfigError(
                f"system {name!r}: two-way pairs of one rest system carry one entity, not {sorted(entities)}"
            )
        (entity,) = entities
        declared = getattr(config.systems[name], "entities", {}).get(entity)
        if declared is None:
            raise ConfigError(f"system {name!r}: a two-way pair carries {entity}, which it does not declare")
        missing = [part for part in ("list", "get", "upsert") if not declared.get(part)]
        if "updated_at" not in (declared.get("fields") or {}):
            missing.append("fields.updated_at")
        if missing:
            raise ConfigError(
                f"system {name!r}: two-way {entity} needs {', '.join(missing)} (it is polled, read and written as "
                "records; updated_at is the time its copy speaks with in a conflict)"
            )


def _add_rest_pollers(config: SynclineConfig, functions: list[FunctionSpec], schedules: list[ScheduleSpec]) -> None:
    """A scheduled poller per REST system in a two-way pair: its records listed, the changed ones as notices."""
    for name in sorted(_rest_sources(config)):
        poller = FunctionSpec(
            id=f"rest_poller_{name}",
            handler="handlers.rest_poller.handler",
            timeout_seconds=120,
            reserved_concurrency=1,
            description=f"Lists {name}'s records; the ones whose content changed -> ChangeNotices",
            environment={"SYNCLINE_SOURCE": name},
            table_access="readwrite",
            publishes_notices=True,
            secrets=(name,),
        )
        functions.append(poller)
        rate = getattr(config.systems[name], "poll_seconds", 300)
        schedules.append(ScheduleSpec(id=rest_poll_schedule_id(name), rate_seconds=rate, function=poller.id))


def _add_saas_change_sources(
    config: SynclineConfig,
    functions: list[FunctionSpec],
    queues: list[QueueSpec],
    rules: list[RuleSpec],
    schedules: list[ScheduleSpec],
) -> tuple[str, ...]:
    """How SaaS systems that pairs read tell of their changes: Salesforce's Event Relay, a REST system's poller.
    The partner buses to create."""
    _add_rest_pollers(config, functions, schedules)
    return _add_salesforce_relays(config, functions, queues, rules)


def _check_deployable(config: SynclineConfig) -> None:
    _check_rest_records(config)
    for pair in config.pairs:
        kinds = (config.systems[pair.source].kind, config.systems[pair.target].kind)
        if pair.direction == "two_way":
            unsupported = [kind for kind in kinds if kind not in TWO_WAY_KINDS]
            if unsupported:
                raise ConfigError(
                    f"pair {pair.name!r}: two-way sync needs systems it can read and write as records "
                    f"({', '.join(sorted(TWO_WAY_KINDS))}); {unsupported[0]} is not one"
                )
            for kind in kinds:
                if kind in TWO_WAY_ENTITIES and pair.entity not in TWO_WAY_ENTITIES[kind]:
                    raise ConfigError(
                        f"pair {pair.name!r}: two-way {kind} serves {', '.join(sorted(TWO_WAY_ENTITIES[kind]))}, "
                        f"not {pair.entity}"
                    )
        elif pair.entity not in ONE_WAY_KINDS or kinds not in ONE_WAY_KINDS[pair.entity]:
            # Declared but not deployable yet: better refused here than deployed with a worker that cannot serve it.
            deployable = "; ".join(
                f"{entity} from {source} into {target}"
                for entity, combos in ONE_WAY_KINDS.items()
                for source, target in sorted(combos)
            )
            raise ConfigError(
                f"pair {pair.name!r}: one_way {pair.entity} sync from {kinds[0]} into {kinds[1]} has no worker yet "
                f"(deployable one-way today: {deployable})"
            )


def _oms_sources(config: SynclineConfig) -> set[str]:
    """OMS systems whose changes some pair reads: the source of a one-way pair, or either side of a two-way one."""
    named = {
        system
        for pair in config.pairs
        for system in ((pair.source, pair.target) if pair.direction == "two_way" else (pair.source,))
    }
    return {name for name in named if config.systems[name].kind == "oms"}


def _add_notifications(
    config: SynclineConfig, functions: list[FunctionSpec], queues: list[QueueSpec], rules: list[RuleSpec]
) -> None:
    """The notifier, when any rule exists: the canonical events the rules name, routed from the bus to a
    queue, alerted once each."""
    if not config.notifications:
        return
    used = sorted({name for rule in config.notifications for name in rule.channels})
    senders = sorted({c.sender for name in used if (c := config.alert_channels[name]).kind == "ses"})
    if len(senders) > 1:
        raise ConfigError(
            f"alert channels send e-mail from {', '.join(senders)}: the notifier sends as one SES identity; "
            "use one sender for every ses channel"
        )
    queue = QueueSpec(id=NOTIFY_QUEUE, name=f"{config.app}-notify", consumer=NOTIFIER)
    function = FunctionSpec(
        id=NOTIFIER,
        handler="handlers.notifier.handler",
        timeout_seconds=60,
        description="Notification rules: canonical events -> templated alerts (Slack, PagerDuty, SES), once each",
        table_access="readwrite",
        secrets=tuple(alert_channel_id(name) for name in used if config.alert_channels[name].kind != "ses"),
        sends_email_as=senders[0] if senders else None,
    )
    rule = RuleSpec(
        id=NOTIFY_QUEUE,
        name=f"{config.app}-notify",
        pattern={"detail-type": sorted({rule.event for rule in config.notifications})},
        queue=queue.id,
    )
    functions.append(function)
    queues.append(queue)
    rules.append(rule)


def build_topology(config: SynclineConfig) -> Topology:
    """Derive every resource from the configuration file: one queue and one worker per one-way target and
    per two-way pair, plus the conflict sweeper and its escalation topic when any pair is two-way."""
    _check_deployable(config)
    app = config.app
    erp_sources = sorted({p.source for p in config.pairs if config.systems[p.source].kind == "sage300"})
    poller = FunctionSpec(
        id="poller",
        handler="handlers.poller.handler",
        timeout_seconds=120,
        reserved_concurrency=1,  # one ERP reader at a time: the ERP must never be overloaded
        description="Sage 300 change detection (audit stamps, keyset pages, lookback) -> ChangeNotices",
        environment={"SYNCLINE_SOURCE": erp_sources[0]} if erp_sources else {},
        table_access="readwrite",
        publishes_notices=True,
        secrets=tuple(erp_sources),
    )
    functions = [poller]
    queues = []
    rules = []
    one_way = [pair for pair in config.pairs if pair.direction == "one_way"]
    two_way = [pair for pair in config.pairs if pair.direction == "two_way"]
    for target, entity in sorted({(pair.target, pair.entity) for pair in one_way}):
        pairs = [p for p in one_way if (p.target, p.entity) == (target, entity)]
        handler, description = ONE_WAY_WORKERS[entity]
        # Inventory keeps the plain names (sync_<target>): the first path, and what operators know.
        suffix = "" if entity == "inventory_level" else f"_{entity}"
        queue = QueueSpec(
            id=f"sync_{target}{suffix}",
            name=f"{app}-sync-{target}{suffix.replace('_', '-')}",
            consumer=f"sync_{target}{suffix}",
            pairs=tuple(p.name for p in pairs),
        )
        functions.append(
            FunctionSpec(
                id=queue.consumer,
                handler=handler,
                timeout_seconds=30,
                description=description.format(target=target),
                environment={"SYNCLINE_TARGET": target},
                table_access="readwrite",
                dead_letters_to=queue.id,
                # Stock alerts go on the bus as StockLevelCrossed events; orders as OrderReceived and
                # OrderStatusChanged events; fulfilled shipments as ShipmentCreated events.
                publishes_notices=(entity == "inventory_level" and config.monitoring.stock.enabled)
                or entity in ("order", "shipment"),
                secrets=tuple(sorted({target, *(p.source for p in pairs)})),
            )
        )
        queues.append(queue)
        rules.append(
            RuleSpec(
                id=f"to_{target}{suffix}",
                name=f"{app}-to-{target}{suffix.replace('_', '-')}",
                pattern={
                    "source": sorted({f"{NOTICE_SOURCE_PREFIX}{p.source}" for p in pairs}),
                    "detail-type": [NOTICE_DETAIL_TYPE],
                    "detail": {"entity": [entity]},
                },
                queue=queue.id,
            )
        )
    for pair in two_way:
        ident = pair.name.replace("-", "_")
        queue = QueueSpec(
            id=f"twoway_{ident}", name=f"{app}-twoway-{pair.name}", consumer=f"twoway_{ident}", pairs=(pair.name,)
        )
        functions.append(
            FunctionSpec(
                id=queue.consumer,
                handler="handlers.twoway_worker.handler",
                timeout_seconds=60,
                description=f"Two-way sync of {pair.entity} between {pair.source} and {pair.target}: read both, "
                "resolve by policy, write where they differ; unresolved -> conflict review list",
                environment={"SYNCLINE_PAIR": pair.name},
                table_access="readwrite",
                dead_letters_to=queue.id,
                secrets=tuple(sorted({pair.source, pair.target})),
            )
        )
        queues.append(queue)
        rules.append(
            RuleSpec(
                id=f"between_{ident}",
                name=f"{app}-between-{pair.name}",
                pattern={
                    "source": sorted(f"{NOTICE_SOURCE_PREFIX}{system}" for system in {pair.source, pair.target}),
                    "detail-type": [NOTICE_DETAIL_TYPE],
                    "detail": {"entity": [pair.entity]},
                },
                queue=queue.id,
            )
        )
    schedules = []
    escalation_topic = None
    if two_way:
        escalation_topic = TopicSpec(
            id="escalations",
            name=f"{app}-escalations",
            description="conflicts that waited longer than [review] escalate_after_hours",
        )
        sweeper = FunctionSpec(
            id="conflict_sweeper",
            handler="handlers.conflict_sweeper.handler",
            timeout_seconds=300,
            reserved_concurrency=1,
            description="Recheck open conflicts with the rules; escalate the old ones (SNS)",
            table_access="readwrite",
            escalates=True,
            secrets=tuple(sorted({system for p in two_way for system in (p.source, p.target)})),
        )
        functions.append(sweeper)
        schedules.append(
            ScheduleSpec(id="sweep_conflicts", rate_seconds=config.review.sweep_rate_seconds, function=sweeper.id)
        )
    oauth = sorted(name for name, system in config.systems.items() if system.kind in {"fracttal", "salesforce"})
    if oauth:
        refresher = FunctionSpec(
            id="token_refresher",
            handler="handlers.token_refresher.handler",
            timeout_seconds=60,
            reserved_concurrency=1,
            description="Keeps each OAuth2 system's shared token (TK#) fresh ahead of the workers",
            table_access="readwrite",
            secrets=tuple(oauth),
        )
        functions.append(refresher)
        schedules.append(
            ScheduleSpec(id="refresh_tokens", rate_seconds=TOKEN_REFRESH_RATE_SECONDS, function=refresher.id)
        )
    for oms in sorted(_oms_sources(config)):
        drainer = FunctionSpec(
            id=f"outbox_drainer_{oms}",
            handler="handlers.outbox_drainer.handler",
            timeout_seconds=120,
            reserved_concurrency=1,  # one reader: the outbox's claims make more safe, but they would only contend
            description=f"The {oms} outbox -> ChangeNotices on the bus (Syncline's own writes dropped as echoes)",
            environment={"SYNCLINE_SOURCE": oms},
            publishes_notices=True,
            secrets=(oms,),
        )
        functions.append(drainer)
        schedules.append(
            ScheduleSpec(id=outbox_schedule_id(oms), rate_seconds=OUTBOX_DRAIN_RATE_SECONDS, function=drainer.id)
        )
    _add_notifications(config, functions, queues, rules)
    partner_buses = _add_saas_change_sources(config, functions, queues, rules, schedules)
    routes = []
    if config.webhooks:
        webhook = FunctionSpec(
            id="webhook",
            handler="handlers.webhook.handler",
            timeout_seconds=10,
            memory_mb=512,
            description="Webhook ingress: verify signature -> dedupe delivery id -> ChangeNotices on the bus -> 2xx",
            table_access="readwrite",
            publishes_notices=True,
            secrets=tuple(webhook_secret_id(source) for source in sorted(config.webhooks)),
        )
        functions.append(webhook)
        routes.append(RouteSpec(method="POST", path=WEBHOOK_ROUTE, function=webhook.id))
    monitor = FunctionSpec(
        id="monitor",
        handler="handlers.monitor.handler",
        timeout_seconds=60,
        reserved_concurrency=1,
        description="Health report (lag, backlog, DLQ depth and age, failures per hour) -> EMF metrics + HEALTH#latest",
        table_access="readwrite",
        inspects_queues=True,
    )
    functions.append(monitor)
    reconciler = FunctionSpec(
        id="reconciler",
        handler="handlers.reconciler.handler",
        timeout_seconds=900,
        memory_mb=1024,
        reserved_concurrency=1,
        description="Full compare of every pair, never a repair -> ConsistencyRatio metrics + RECONCILE#<pair>",
        table_access="readwrite",
        secrets=tuple(sorted({system for p in config.pairs for system in (p.source, p.target)})),
    )
    functions.append(reconciler)
    digest = FunctionSpec(
        id="digest",
        handler="handlers.digest.handler",
        timeout_seconds=300,
        reserved_concurrency=1,
        description="Daily digest (syncs, failures, conflicts, consistency) -> e-mail through SES",
        table_access="read",
        inspects_queues=True,
        sends_email_as=config.monitoring.digest.sender,
    )
    functions.append(digest)
    return Topology(
        app=app,
        table=TableSpec(name=f"{app}-state"),
        bus_name=app,
        functions=tuple(functions),
        queues=tuple(queues),
        rules=tuple(rules),
        schedules=(
            ScheduleSpec(id="poll_erp", rate_seconds=config.poller.rate_seconds, function=poller.id),
            ScheduleSpec(id="monitor", rate_seconds=MONITOR_RATE_SECONDS, function=monitor.id),
            ScheduleSpec(id="reconcile", rate_seconds=RECONCILE_RATE_SECONDS, function=reconciler.id),
            ScheduleSpec(id="digest", rate_seconds=DIGEST_RATE_SECONDS, function=digest.id),
            *schedules,
        ),
        routes=tuple(routes),
        escalation_topic=escalation_topic,
        partner_buses=partner_buses,
    )
