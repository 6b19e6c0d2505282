"""The declarative configuration file (``syncline.toml``): systems, sync pairs, schedules.

The CDK app and the functions read the same file, so what is deployed and what runs cannot drift.
Credentials appear only as references (Secrets Manager names), never as values.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Re-exported: every reader of the configuration imports them from here.
from syncline.configfile import DEFAULT_PATH as DEFAULT_PATH  # noqa: PLC0414
from syncline.configfile import ConfigError as ConfigError  # noqa: PLC0414
from syncline.configfile import read_toml
from syncline.conflicts import LastWriterWinsSpec, PolicySpec, RecordPolicy, build_rule
from syncline.monitoring_config import MonitoringConfig
from syncline.notify import NotificationRule
from syncline.webhooks.sources import WebhookSource, check_source_names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SystemBase(_Strict):
    secret: str = Field(description="Secrets Manager name or ARN holding the connection settings or credentials")
    timezone: str = "UTC"
    base_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="HTTP systems: the API's base URL (default: the service's own); the local stack points it at "
        "its sandbox through SYNCLINE_ENDPOINTS",
    )


class Sage300System(_SystemBase):
    """Sage 300 on SQL Server, read-only. Secret: {engine, host, port, database, user, password}."""

    kind: Literal["sage300"]


class PostgresSystem(_SystemBase):
    """A PostgreSQL database: the storefront (one-way inventory target) or a table of records (two-way)."""

    kind: Literal["postgres"]
    table: str = Field(
        "synced_records",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="two-way pairs: the table of records (key, doc, version, changed_at)",
    )


class ShopifySystem(_SystemBase):
    """A Shopify store (Admin GraphQL). Secret: {"access_token": "shpat_..."}."""

    kind: Literal["shopify"]
    shop: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$", description="the shop's myshopify.com domain")
    api_version: str = Field("2026-01", pattern=r"^\d{4}-\d{2}$")
    quantity: Literal["available", "on_hand"] = Field("available", description="the quantity Syncline sets")
    locations: dict[str, str] = Field(
        default_factory=dict, description="canonical location code -> Shopify location id (numeric or GID)"
    )


class HubSpotSystem(_SystemBase):
    """HubSpot CRM (private app). Secret: {"token": "pat-..."}."""

    kind: Literal["hubspot"]
    app_id: str = Field(description="the private app's id: its own changes come back with this sourceId (echoes)")


class OmsSystem(_SystemBase):
    """The PostgreSQL order management database (orders, shipments, customers, outbox)."""

    kind: Literal["oms"]


class SalesforceSystem(_SystemBase):
    """Salesforce (REST, OAuth2 client credentials). Secret: {"client_id", "client_secret"}."""

    kind: Literal["salesforce"]
    login_url: str = Field("https://login.salesforce.com", pattern=r"^https?://")
    api_version: str = "62.0"
    event_source: str | None = Field(
        None,
        pattern=r"^aws\.partner/salesforce\.com/[A-Za-z0-9]{15,18}/[A-Za-z0-9]{15,18}$",
        description="the partner event source the org's Event Relay created (aws.partner/salesforce.com/<org id>/"
        "<relay channel id>): its Change Data Capture events are Syncline's notices of this system",
    )
    call_client: str = Field(
        "syncline",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="client id sent in Sforce-Call-Options: change events carrying it are Syncline's own (echoes)",
    )
    external_id_field: str = Field(
        "Syncline_Id__c", pattern=r"^\w+$", description="the external id field contacts Syncline creates carry"
    )


class RestSystem(_SystemBase):
    """A system reached through the generic REST connector (a POS, a WMS): endpoints, auth and field mapping
    declared here (``syncline.connectors.rest``). Secret: {"api_key": ...} or {"token": ...} (by ``auth.kind``);
    none for ``auth.kind = "none"``."""

    kind: Literal["rest"]
    base_url: str = Field(pattern=r"^https?://", description="the API's base URL (required: there is no default)")
    auth: dict[str, Any] = Field(default_factory=dict, description="RestAuthConfig: kind, header, prefix")
    entities: dict[str, dict[str, Any]] = Field(
        min_length=1, description="RestEntityConfig per canonical entity: key_field, fields, get/upsert endpoints"
    )
    poll_seconds: int = Field(
        300, ge=60, description="two-way pairs: how often its records are listed for changes (it sends no notices)"
    )

    @model_validator(mode="after")
    def _declared_api_is_valid(self) -> RestSystem:
        from syncline.connectors.rest import RestAuthConfig, RestEntityConfig  # noqa: PLC0415 - httpx only if used

        if RestAuthConfig.model_validate(self.auth).kind == "oauth2":
            # The connector takes an OAuth2 provider, but no token endpoint is declared for a rest system yet.
            raise Located(("auth", "kind"), 'oauth2 is not available for a rest system yet: use "bearer" or "api_key"')
        for name, entity in self.entities.items():
            try:
                RestEntityConfig.model_validate(entity)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise Located(("entities", name, *first["loc"]), f"{where}: {first['msg']}") from None
        return self


class FracttalSystem(_SystemBase):
    """Fracttal CMMS (OAuth2 client credentials). Secret: {"client_id", "client_secret"}."""

    kind: Literal["fracttal"]
    token_url: str = Field(pattern=r"^https?://", description="the OAuth2 token endpoint your account was given")
    warehouse_code: str


System = Annotated[
    Sage300System
    | PostgresSystem
    | ShopifySystem
    | HubSpotSystem
    | OmsSystem
    | SalesforceSystem
    | FracttalSystem
    | RestSystem,
    Field(discriminator="kind"),
]


class PollerConfig(_Strict):
    rate_seconds: int = Field(60, ge=1)
    page_size: int = Field(500, ge=1, le=10_000)
    max_rows_per_run: int = Field(20_000, ge=1)
    lookback_seconds: int = Field(300, ge=0)
    lookback_rescan_seconds: int = Field(60, ge=0)
    notices_per_event: int = Field(100, ge=1, le=500)


Entity = Literal[
    "inventory_level", "price", "product", "order", "shipment", "contact", "account", "deal", "asset", "record"
]


class PairFilters(_Strict):
    """Which records a pair carries; the rest are skipped (not dead-lettered: they are simply not its business)."""

    sku_prefixes: list[str] = Field(default_factory=list, description="only SKUs starting with one of these")
    locations: list[str] = Field(default_factory=list, description="only these source location codes")

    def accepts(self, sku: str, location: str | None = None) -> bool:
        if self.sku_prefixes and not any(sku.startswith(prefix) for prefix in self.sku_prefixes):
            return False
        return not (self.locations and location is not None and location not in self.locations)


class PairPrices(_Strict):
    """Which ERP prices a one-way ``price`` pair carries: Sage 300's base price (ICPRICP, DPRICETYPE 1) of one
    price list in one currency, per the item's stock unit; optionally a second list's base price as the
    struck-through 'compare at' price (dropped where it is not above the price)."""

    price_list: str = Field(min_length=1, max_length=6, description="ICPRICP.PRICELIST, e.g. WEB")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ICPRICP.CURRENCY, the store's currency, e.g. USD")
    compare_at_price_list: str | None = Field(
        None, min_length=1, max_length=6, description="a second list (e.g. MSRP) whose base price is 'compare at'"
    )


class FieldGroup(_Strict):
    """Fields decided together by one conflict policy (e.g. the ERP owns price and on-hand)."""

    fields: list[str] = Field(min_length=1)
    policy: PolicySpec


class Pair(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    source: str
    target: str
    entity: Entity
    direction: Literal["one_way", "two_way"] = "one_way"
    locations: dict[str, str] = Field(default_factory=dict, description="source location code -> target location code")
    filters: PairFilters = PairFilters()
    fields: dict[str, str] = Field(default_factory=dict, description="target field -> source field, where names differ")
    policy: PolicySpec = Field(
        default=LastWriterWinsSpec(rule="last_writer_wins"), description="default conflict policy"
    )
    field_groups: list[FieldGroup] = Field(default_factory=list)
    prices: PairPrices | None = Field(None, description="price pairs: the ERP price list and currency they carry")

    @model_validator(mode="after")
    def _price_pair_names_its_prices(self) -> Pair:
        if self.entity == "price" and self.direction == "one_way" and self.prices is None:
            raise ValueError("a one-way price pair needs prices = { price_list = ..., currency = ... }")
        if self.prices is not None and self.entity != "price":
            raise ValueError(f"`prices` is for price pairs; this pair syncs {self.entity}")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Pair:
        if self.entity == "inventory_level" and self.direction == "one_way" and not self.locations:
            # Two-way pairs speak canonical codes on both sides (each store maps them to its own locations).
            raise ValueError("a one-way inventory_level pair needs [pairs.locations] (source code -> target code)")
        seen: dict[str, int] = {}
        for index, group in enumerate(self.field_groups):
            for name in group.fields:
                if name in seen:
                    raise ValueError(
                        f"field {name!r} is in field_groups {seen[name]} and {index}; one policy per field"
                    )
                seen[name] = index
        for spec in [self.policy, *(group.policy for group in self.field_groups)]:
            owner = getattr(spec, "owner", None)
            if owner is not None and owner not in {self.source, self.target}:
                raise ValueError(f"source_authority owner {owner!r} is neither {self.source!r} nor {self.target!r}")
        return self

    def record_policy(self) -> RecordPolicy:
        """The conflict policy of this pair, per field group, as the engine applies it."""
        return RecordPolicy(
            build_rule(self.policy),
            [(frozenset(group.fields), build_rule(group.policy)) for group in self.field_groups],
        )


class NetworkConfig(_Strict):
    """VPC placement of the functions that reach a system on a private network (an on-premises SQL Server).

    The VPC, subnets and security groups already exist; the CDK app references them by id, never looks
    them up. The subnets need a route to the site (VPN, Direct Connect) and to the AWS APIs (NAT or VPC
    endpoints).
    """

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    subnet_ids: list[str] = Field(min_length=1, description="private subnets, ideally one per availability zone")
    security_group_ids: list[str] = Field(min_length=1, max_length=5, description="allowing egress to the systems")
    systems: list[str] = Field(
        min_length=1, description="systems on that network: every function reading one's secret runs in the VPC"
    )

    @model_validator(mode="after")
    def _ids_are_ids(self) -> NetworkConfig:
        for field, prefix in (("subnet_ids", "subnet"), ("security_group_ids", "sg")):
            for value in getattr(self, field):
                if not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", value):
                    raise ValueError(f"{field}: {value!r} is not a {prefix}-... id")
        return self


class DeployConfig(_Strict):
    """Where and how the CDK app deploys. ``CDK_DEFAULT_ACCOUNT`` / ``CDK_DEFAULT_REGION`` win when set."""

    account: str | None = Field(None, pattern=r"^\d{12}$", description="AWS account id (12 digits)")
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$", description="e.g. eu-west-1")
    web_acl_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[A-Za-z0-9_-]+/[0-9a-f-]+$",
        description="an existing regional WAFv2 web ACL, associated with the webhook API's stage",
    )

    @model_validator(mode="after")
    def _web_acl_in_the_stack_region(self) -> DeployConfig:
        # A regional web ACL can only be associated with an API in its own region.
        if self.web_acl_arn and self.region and self.web_acl_arn.split(":")[3] != self.region:
            raise ValueError(f"web_acl_arn is in {self.web_acl_arn.split(':')[3]}, not in region {self.region}")
        return self


class ReviewConfig(_Strict):
    """The conflict review list: how often the sweeper retries the rules, and when a person is told."""

    sweep_rate_seconds: int = Field(900, ge=60, description="how often open conflicts are rechecked")
    escalate_after_hours: float = Field(4.0, gt=0, description="a conflict pending longer is escalated (SNS)")


class Located(ValueError):
    """A cross-field problem at a known place in the file: ``load_config`` reports ``loc`` with its line."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc, self.message = loc, message


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class SlackChannelConfig(_Strict):
    """A Slack incoming webhook. The secret holds the webhook URL (the URL is the credential): the plain
    string, or ``{"url": "https://hooks.slack.com/services/..."}``."""

    kind: Literal["slack"]
    secret: str = Field(description="Secrets Manager name or ARN holding the webhook URL")


class PagerDutyChannelConfig(_Strict):
    """PagerDuty Events API v2. The secret holds the integration (routing) key: the plain string, or
    ``{"routing_key": "..."}``."""

    kind: Literal["pagerduty"]
    secret: str = Field(description="Secrets Manager name or ARN holding the routing key")
    base_url: str = Field("https://events.pagerduty.com", pattern=r"^https?://", description="e.g. the EU service")


class SesChannelConfig(_Strict):
    """E-mail through Amazon SES from a verified identity; addresses are configuration, not secrets."""

    kind: Literal["ses"]
    sender: str = Field(pattern=EMAIL_PATTERN, description="a verified SES identity (address or its domain)")
    recipients: list[str] = Field(min_length=1, max_length=50)
    configuration_set: str | None = None
    subject_prefix: str = Field("[Syncline]", max_length=50)

    @model_validator(mode="after")
    def _addresses(self) -> SesChannelConfig:
        for index, address in enumerate(self.recipients):
            if not re.fullmatch(EMAIL_PATTERN, address):
                raise Located(("recipients", index), f"{address!r} is not an e-mail address")
        return self


AlertChannelConfig = Annotated[
    SlackChannelConfig | PagerDutyChannelConfig | SesChannelConfig, Field(discriminator="kind")
]
ALERT_CHANNEL_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class SynclineConfig(_Strict):
    app: str = "syncline"
    systems: dict[str, System]
    poller: PollerConfig = PollerConfig()
    review: ReviewConfig = ReviewConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    pairs: list[Pair] = Field(min_length=1)
    webhooks: dict[str, WebhookSource] = Field(default_factory=dict)
    network: NetworkConfig | None = None
    deploy: DeployConfig = DeployConfig()
    alert_channels: dict[str, AlertChannelConfig] = Field(
        default_factory=dict, description="outbound alert channels by name: slack, pagerduty or ses"
    )
    notifications: list[NotificationRule] = Field(
        default_factory=list, description="rules sending a templated message when a canonical event matches"
    )

    @model_validator(mode="after")
    def _notifications_name_known_channels(self) -> SynclineConfig:
        for name in self.alert_channels:
            if not re.fullmatch(ALERT_CHANNEL_PATTERN, name):
                raise Located(("alert_channels", name), "use letters, digits, '_', '.' and '-' (at most 64)")
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.notifications):
            if rule.name in seen:
                raise Located(
                    ("notifications", index, "name"),
                    f"rule name {rule.name!r} is used by notifications {seen[rule.name]} too",
                )
            seen[rule.name] = index
            for position, channel in enumerate(rule.channels):
                if channel not in self.alert_channels:
                    configured = ", ".join(sorted(self.alert_channels)) or "none: declare [alert_channels.<name>]"
                    raise Located(
                        ("notifications", index, "channels", position),
                        f"rule {rule.name!r}: channel {channel!r} is not declared under [alert_channels] "
                        f"(declared: {configured})",
                    )
        return self

    @model_validator(mode="after")
    def _webhook_sources_are_url_safe(self) -> SynclineConfig:
        check_source_names(self.webhooks)
        return self

    @model_validator(mode="after")
    def _pairs_name_known_systems(self) -> SynclineConfig:
        for pair in self.pairs:
            for role, system in (("source", pair.source), ("target", pair.target)):
                if system not in self.systems:
                    raise ValueError(f"pair {pair.name!r}: {role} {system!r} is not declared under [systems]")
        return self

    @model_validator(mode="after")
    def _two_way_systems_are_distinct(self) -> SynclineConfig:
        for pair in self.pairs:
            a, b = self.systems[pair.source], self.systems[pair.target]
            if (
                pair.direction == "two_way"
                and isinstance(a, PostgresSystem)
                and isinstance(b, PostgresSystem)
                and (a.secret, a.table) == (b.secret, b.table)
            ):
                raise ValueError(
                    f"pair {pair.name!r}: {pair.source} and {pair.target} are the same table ({a.secret}, {a.table}); "
                    "give one of them another `table` or `secret`"
                )
        return self

    @model_validator(mode="after")
    def _monitoring_names_known_pairs(self) -> SynclineConfig:
        unknown = self.monitoring.unknown_pairs(pair.name for pair in self.pairs)
        if unknown:
            raise ValueError(
                f"[monitoring.pairs.{unknown[0]}]: no sync pair of that name; declared: "
                f"{', '.join(pair.name for pair in self.pairs)}"
            )
        return self

    @model_validator(mode="after")
    def _network_names_known_systems(self) -> SynclineConfig:
        for system in self.network.systems if self.network else []:
            if system not in self.systems:
                raise ValueError(f"network: system {system!r} is not declared under [systems]")
        return self

    def one_way_pair(self, target: str, entity: str) -> Pair:
        """The one-way pair feeding ``target`` with ``entity`` (one source per target and entity)."""
        pairs = [p for p in self.pairs if (p.target, p.entity, p.direction) == (target, entity, "one_way")]
        if len(pairs) != 1:
            raise ConfigError(f"expected one one-way {entity} pair into {target}, found {len(pairs)}")
        return pairs[0]

    def pair(self, name: str) -> Pair:
        for pair in self.pairs:
            if pair.name == name:
                return pair
        raise ConfigError(f"no sync pair named {name!r}; declared: {', '.join(p.name for p in self.pairs)}")


def load_config(path: Path | str | None = None) -> SynclineConfig:
    """Read and validate the configuration file; errors say which field is wrong and how."""
    source, text, raw = read_toml(path)
    try:
        return SynclineConfig.model_validate(raw)
    except ValidationError as exc:
        lines = _line_index(text)
        problems = "; ".join(
            f"{_where(lines, loc)}{'.'.join(str(part) for part in loc) or '(top level)'}: {message}"
            for error in exc.errors()
            for loc, message in [_located(error)]
        )
        raise ConfigError(f"{source}: {problems}") from None


SYSTEM_KINDS = ("sage300", "postgres", "shopify", "hubspot", "oms", "salesforce", "fracttal", "rest")


ALERT_CHANNEL_KINDS = ("slack", "pagerduty", "ses")


def _without_union_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """pydantic puts the system's kind in the location of an error inside it (systems.x.shopify.shop): drop it."""
    if len(loc) >= 3 and loc[0] == "systems" and loc[2] in SYSTEM_KINDS:
        return (*loc[:2], *loc[3:])
    if len(loc) >= 3 and loc[0] == "alert_channels" and loc[2] in ALERT_CHANNEL_KINDS:
        return (*loc[:2], *loc[3:])
    return loc


def _located(error: Any) -> tuple[tuple[int | str, ...], str]:
    """Where an error is and what it says; a ``Located`` problem carries a place deeper than its validator's."""
    loc, message = _without_union_tag(tuple(error["loc"])), str(error["msg"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, Located):
        loc, message = (*loc, *cause.loc), cause.message
    return loc, message


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Dotted path (array members as their index) -> the line that defines it, for error messages.

    A light scan of headers and ``key =`` lines, enough for this file's style (no multi-line values).
    """
    index: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()  # keys here never contain '#'; only the key part is used
        if stripped.startswith("[["):
            name = tuple(_key_parts(stripped[2:].split("]]", 1)[0]))
            counts[name] = counts.get(name, -1) + 1
            table = (*name, str(counts[name]))
            index.setdefault(table, number)
        elif stripped.startswith("["):
            name = tuple(_key_parts(stripped[1:].split("]", 1)[0]))
            # A sub-table of the latest array member: [pairs.locations] after the 2nd [[pairs]].
            parent = next((t for t in sorted(counts, key=len, reverse=True) if name[: len(t)] == t), None)
            table = (*parent, str(counts[parent]), *name[len(parent) :]) if parent else name
            index.setdefault(table, number)
        elif "=" in stripped:
            index.setdefault((*table, *_key_parts(stripped.split("=", 1)[0])), number)
    return index


def _key_parts(dotted: str) -> list[str]:
    return [part.strip().strip('"').strip("'") for part in dotted.split(".") if part.strip()]


def _where(lines: dict[tuple[str, ...], int], loc: tuple[int | str, ...]) -> str:
    path = tuple(str(part) for part in loc)
    for size in range(len(path), 0, -1):
        if path[:size] in lines:
            return f"line {lines[path[:size]]}: "
    return ""


@cache
def cached_config(path: str | None = None) -> SynclineConfig:
    """The configuration, read once per process (Lambda cold start)."""
    return load_config(path)
