"""Builds the engine's collaborators once per cold start from settings, configuration and secrets.

Connections are cached across invocations and dropped when they fail, so the next invocation
reconnects instead of reusing a broken socket. Database drivers and the ERP/storefront engine are
imported where they are first used, so a function that never touches them (the webhook ingress)
does not pay for them at cold start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools.utilities import parameters

from syncline.adapters import aws
from syncline.adapters.deliveries import DynamoDeliveryStore
from syncline.adapters.dynamodb import DynamoCheckpointStore, DynamoStateStore
from syncline.adapters.eventbridge import EventBridgePublisher
from syncline.settings import Settings
from syncline.webhooks.ingress import Ingress, echo_filters, parse_webhook_secret
from syncline.webhooks.sources import IngressConfig, WebhookSource, cached_ingress_config

if TYPE_CHECKING:
    from syncline.adapters.sqs import SqsDeadLetterSink
    from syncline.adapters.storefront_pg import PostgresStorefront
    from syncline.business_alerts import StockAlerts
    from syncline.config import SynclineConfig
    from syncline.db import DbSettings
    from syncline.erp.sage300 import Sage300Reader
    from syncline.ops.wiring import OpsContext
    from syncline.poller import PollLimits
    from syncline.ports import InventoryTarget
    from syncline.review import ConflictReview
    from syncline.sync import PairContext
    from syncline.systems import SystemFactory
    from syncline.twoway import RecordSystem, TwoWaySync

SECRET_MAX_AGE_SECONDS = 300


class CachedConnection:
    """One database connection per process, opened on first use, dropped by ``reset``."""

    def __init__(self, opener: Callable[[], Any]) -> None:
        self._opener = opener
        self._connection: Any = None

    def get(self) -> Any:
        if self._connection is None or getattr(self._connection, "closed", False):
            self._connection = self._opener()
        return self._connection

    def reset(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closing a broken connection may fail; it is gone either way.
            with contextlib.suppress(Exception):
                connection.close()


class Dependencies:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connections: dict[str, CachedConnection] = {}
        self._ingress: Ingress | None = None
        self._systems: SystemFactory | None = None

    @cached_property
    def config(self) -> SynclineConfig:
        """The whole configuration, validated on first use (every function but the webhook ingress)."""
        from syncline.config import cached_config  # noqa: PLC0415 - see ingress_config

        return cached_config(self.settings.config_path)

    @cached_property
    def ingress_config(self) -> IngressConfig:
        """The webhook ingress's part of the configuration: it never imports the rest (cold start)."""
        return cached_ingress_config(self.settings.config_path)

    def db_settings(self, system: str) -> DbSettings:
        from syncline.db import DbSettings  # noqa: PLC0415 - see the module docstring

        secret = parameters.get_secret(
            self.config.systems[system].secret, transform="json", max_age=SECRET_MAX_AGE_SECONDS
        )
        return DbSettings.model_validate(secret)

    def connection(self, system: str, *, read_only: bool) -> CachedConnection:
        if system not in self._connections:
            from syncline.db import connect  # noqa: PLC0415

            self._connections[system] = CachedConnection(lambda: connect(self.db_settings(system), read_only=read_only))
        return self._connections[system]

    def reset_connections(self) -> None:
        for connection in self._connections.values():
            connection.reset()

    def erp_reader(self, system: str) -> Sage300Reader:
        from syncline.erp.sage300 import Sage300Reader  # noqa: PLC0415

        return Sage300Reader(self.connection(system, read_only=True).get)

    def storefront(self, system: str) -> PostgresStorefront:
        from syncline.adapters.storefront_pg import PostgresStorefront  # noqa: PLC0415

        return PostgresStorefront(self.connection(system, read_only=False).get)

    def checkpoints(self) -> DynamoCheckpointStore:
        return DynamoCheckpointStore(aws.dynamodb(), self.settings.table_name)

    def state(self) -> DynamoStateStore:
        return DynamoStateStore(aws.dynamodb(), self.settings.table_name, commit=self.settings.state_commit)

    def publisher(self) -> EventBridgePublisher:
        if not self.settings.bus_name:
            raise RuntimeError("SYNCLINE_BUS is not set for this function")
        return EventBridgePublisher(aws.events(), self.settings.bus_name, self.ingress_config.poller.notices_per_event)

    def webhook_secrets(self, source: WebhookSource) -> list[str]:
        """The source's active signing secrets: several while a rotation is under way (see docs/WEBHOOKS.md)."""
        value = parameters.get_secret(source.secret, max_age=SECRET_MAX_AGE_SECONDS)
        return parse_webhook_secret(value if isinstance(value, str) else str(value))

    def webhook_ingress(self) -> Ingress:
        if self._ingress is None:
            self._ingress = Ingress(
                sources=self.ingress_config.webhooks,
                secrets=self.webhook_secrets,
                deliveries=DynamoDeliveryStore(aws.dynamodb(), self.settings.table_name),
                publisher=self.publisher(),
                echoes=echo_filters(self.ingress_config),
            )
        return self._ingress

    def dead_letters(self) -> SqsDeadLetterSink:
        from syncline.adapters.sqs import SqsDeadLetterSink  # noqa: PLC0415

        if not self.settings.dead_letter_queue_url:
            raise RuntimeError("SYNCLINE_DLQ_URL is not set for this function")
        return SqsDeadLetterSink(aws.sqs(), self.settings.dead_letter_queue_url)

    def poll_limits(self, source: str) -> PollLimits:
        from syncline.poller import PollLimits  # noqa: PLC0415

        poller = self.config.poller
        return PollLimits(
            page_size=poller.page_size,
            max_rows_per_run=poller.max_rows_per_run,
            lookback=timedelta(seconds=poller.lookback_seconds),
            rescan_every=timedelta(seconds=poller.lookback_rescan_seconds),
            tz=ZoneInfo(self.config.systems[source].timezone),
        )

    def systems(self) -> SystemFactory:
        """Every system's adapters (connectors, record views, inventory targets), built once per cold start."""
        if self._systems is None:
            from syncline.adapters.identity_dynamodb import DynamoIdentityStore  # noqa: PLC0415
            from syncline.systems import SystemFactory, parse_endpoints  # noqa: PLC0415

            client, table = aws.dynamodb(), self.settings.table_name
            self._systems = SystemFactory(
                self.config,
                secret=lambda name: dict(
                    parameters.get_secret(
                        self.config.systems[name].secret, transform="json", max_age=SECRET_MAX_AGE_SECONDS
                    )
                ),
                connection=lambda name: self.connection(name, read_only=False).get,
                identity=DynamoIdentityStore(client, table),
                dynamodb=client,
                table=table,
                endpoints=parse_endpoints(self.settings.endpoints),
            )
        return self._systems

    def record_system(self, system: str) -> RecordSystem:
        return self.systems().record_system(system)

    def inventory_target(self, system: str) -> InventoryTarget:
        return self.systems().inventory_target(system)

    def twoway(self, pair_name: str, owner: str) -> TwoWaySync:
        from syncline.adapters.twoway_dynamodb import dynamo_twoway  # noqa: PLC0415

        return dynamo_twoway(
            self.config, pair_name, self.record_system, aws.dynamodb(), self.settings.table_name, owner
        )

    def conflict_review(self) -> ConflictReview:
        from syncline.adapters.conflicts_dynamodb import DynamoConflictStore  # noqa: PLC0415
        from syncline.adapters.sns_escalation import SnsEscalation  # noqa: PLC0415
        from syncline.review import ConflictReview  # noqa: PLC0415

        topic = self.settings.escalation_topic_arn
        return ConflictReview(
            DynamoConflictStore(aws.dynamodb(), self.settings.table_name),
            lambda: datetime.now(UTC),
            timedelta(hours=self.config.review.escalate_after_hours),
            SnsEscalation(aws.sns(), topic) if topic else None,
        )

    @cached_property
    def ops(self) -> OpsContext:
        """The operator's view (configuration, topology, clients) the scheduled monitor and digest read: built once
        per execution environment, not per invocation."""
        from syncline.ops.wiring import OpsContext, Target  # noqa: PLC0415

        return OpsContext(Target("this account"), self.settings.config_path)

    def stock_alerts(self, pair_name: str) -> StockAlerts | None:
        """Business alerts on the levels a pair writes ([monitoring.stock]); crossings go on the bus as
        StockLevelCrossed events (rules route them to alerting). None when stock alerts are off."""
        settings = self.config.monitoring.stock
        if not settings.enabled:
            return None
        from syncline.adapters.stock_bands_dynamodb import DynamoStockBands  # noqa: PLC0415
        from syncline.business_alerts import StockAlerts  # noqa: PLC0415

        pair = self.config.pair(pair_name)
        listing = None
        if settings.disable_listing_when_out and self.config.systems[pair.target].kind == "shopify":
            listing = self.systems().listing_control(pair.target)
        return StockAlerts(
            pair.name,
            pair.source,
            settings,
            DynamoStockBands(aws.dynamodb(), self.settings.table_name),
            self.publisher().publish_event,
            listing=listing,
            locations=tuple(pair.locations.values()),
        )

    def pair_into(self, target: str, entity: str) -> PairContext:
        """The pair feeding ``target`` with ``entity`` (one source per target and entity for now)."""
        from syncline.sync import pair_context  # noqa: PLC0415

        pairs = [p for p in self.config.pairs if (p.target, p.entity, p.direction) == (target, entity, "one_way")]
        if len(pairs) != 1:
            raise LookupError(f"expected one sync pair into {target} for {entity}, found {len(pairs)}")
        return pair_context(self.config, pairs[0])


def dependencies() -> Dependencies:
    """Built once per cold start (per distinct settings, so the local stack can host several functions)."""
    return _dependencies_for(Settings.from_env())


@cache
def _dependencies_for(settings: Settings) -> Dependencies:
    built = Dependencies(settings)
    _BUILT.append(built)
    return built


def reset_dependencies() -> None:
    """Forget every cached collaborator (the local stack calls it when it starts a new stack)."""
    for deps in _BUILT:
        deps.reset_connections()
    _BUILT.clear()
    _dependencies_for.cache_clear()


_BUILT: list[Dependencies] = []  # functools.cache offers no view of its values
