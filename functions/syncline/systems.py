"""Systems as the workers read and write them, built from their configuration: one place for the functions
and the CLI. ``syncline.topology.TWO_WAY_KINDS`` and ``INVENTORY_TARGET_KINDS`` list what can take part.

Where a system is reached over HTTP, its base URL is the configured one (``base_url``, else the service's
own), unless ``SYNCLINE_ENDPOINTS`` names another for it: that is how the local stack points the very same
code at its sandboxes, as ``AWS_ENDPOINT_URL`` points boto3 at the moto server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from syncline.canonical.entities import Order, Shipment
from syncline.config import (
    FracttalSystem,
    HubSpotSystem,
    OmsSystem,
    PostgresSystem,
    RestSystem,
    SalesforceSystem,
    ShopifySystem,
    SynclineConfig,
)
from syncline.identity import IdentityStore
from syncline.models import KEY_SEPARATOR, ChangeNotice, split_inventory_key
from syncline.ports import InventoryTarget, PriceTarget
from syncline.twoway import Copy, RecordSystem

if TYPE_CHECKING:
    from syncline.connectors.hubspot import HubSpotContactsByEmail
    from syncline.connectors.oms_pg import OmsCustomersByEmail
    from syncline.connectors.salesforce import SalesforceContactsByEmail

ENV_ENDPOINTS = "SYNCLINE_ENDPOINTS"
INVENTORY_ITEM = "inventory_item"  # identity map entity: SKU -> each store's InventoryItem id
PRODUCT_PAGE_VARIANTS = 25  # variants read per product in a page of products (Shopify's query cost cap)
OAUTH_KINDS = frozenset({"fracttal", "salesforce"})  # systems whose token the scheduled refresher keeps fresh


class UnknownRecord(LookupError):
    """A notice names a record the pair cannot identify (no identity mapped): it will not sync by retrying."""


def parse_endpoints(value: str | None) -> dict[str, str]:
    """``SYNCLINE_ENDPOINTS``: a JSON object of system name -> base URL."""
    if not value:
        return {}
    endpoints = json.loads(value)
    if not isinstance(endpoints, dict) or not all(isinstance(v, str) for v in endpoints.values()):
        raise ValueError(f"{ENV_ENDPOINTS} must be a JSON object of system name -> base URL")
    return endpoints


def shopify_gid(kind: str, value: str) -> str:
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


@dataclass
class SystemFactory:
    """Builds each system's adapters. ``secret(name)`` reads system ``name``'s secret (JSON, cached by the caller),
    ``connection(name)`` returns a callable giving its (cached) database connection, ``identity`` is the
    identity map, ``dynamodb``/``table`` hold the shared limiters' state."""

    config: SynclineConfig
    secret: Callable[[str], Mapping[str, Any]]
    connection: Callable[[str], Callable[[], Any]]
    identity: IdentityStore | None = None
    dynamodb: Any = None
    table: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    _admins: dict[str, Any] = field(default_factory=dict)

    def base_url(self, name: str, default: str | None = None) -> str | None:
        """The configured base URL (else ``default``); an endpoint override replaces its scheme and host and
        keeps its path, as a sandbox serves the API's own paths."""
        configured = self.config.systems[name].base_url or default
        override = self.endpoints.get(name)
        if override is None:
            return configured
        return override.rstrip("/") + (urlsplit(configured).path.rstrip("/") if configured else "")

    # -- Shopify -------------------------------------------------------------------------------------
    def shopify(self, name: str) -> Any:
        """The shop's Admin API client, its cost bucket shared through the state table (one per process)."""
        if name not in self._admins:
            from syncline.connectors.shopify import ShopifyAdmin  # noqa: PLC0415 - httpx only where used
            from syncline.connectors.shopify_rate_limit import CostLimiter  # noqa: PLC0415

            system = self._shopify_system(name)
            limiter = None
            if self.dynamodb is not None and self.table:
                from syncline.adapters.rate_limit_dynamodb import DynamoBucketStore  # noqa: PLC0415

                limiter = CostLimiter(DynamoBucketStore(self.dynamodb, self.table), system.shop)
            self._admins[name] = ShopifyAdmin(
                system.shop,
                access_token=lambda: str(self.secret(name)["access_token"]),
                api_version=system.api_version,
                base_url=self.base_url(name),
                limiter=limiter,
            )
        return self._admins[name]

    def _shopify_system(self, name: str) -> ShopifySystem:
        system = self.config.systems[name]
        if not isinstance(system, ShopifySystem):
            raise LookupError(f"system {name!r} is {system.kind}, not shopify")
        return system

    def shopify_identity(self, name: str) -> Callable[[str, str], tuple[str, str] | None]:
        """(SKU, location code) -> (InventoryItem GID, Location GID) from the identity map and the config."""
        system = self._shopify_system(name)
        identity = self.identity

        def ids(sku: str, location: str) -> tuple[str, str] | None:
            where = system.locations.get(location)
            if where is None or identity is None:
                return None
            mapped = identity.get(INVENTORY_ITEM, sku)
            item = mapped.ids.get(name) if mapped else None
            return (shopify_gid("InventoryItem", item), shopify_gid("Location", where)) if item else None

        return ids

    def shopify_record_key(self, name: str, key: str) -> str:
        """A Shopify notice key (``inventory item id|location id``) as the canonical ``SKU|LOCATION``."""
        system = self._shopify_system(name)
        item, location = split_inventory_key(key)
        codes = {shopify_gid("Location", value): code for code, value in system.locations.items()}
        code = codes.get(shopify_gid("Location", location))
        sku = self.identity.key_of(INVENTORY_ITEM, name, shopify_gid("InventoryItem", item)) if self.identity else None
        if code is None or sku is None:
            raise UnknownRecord(
                f"{name}: inventory item {item} at location {location} is not mapped "
                f"({'no location code' if code is None else 'no SKU'}; see `syncline map`)"
            )
        return f"{sku}{KEY_SEPARATOR}{code}"

    def shopify_levels(self, name: str, page_size: int = 100) -> Iterator[list[tuple[str, str, Any]]]:
        """Every level the store holds at its configured locations, as (SKU, location code, level) pages; the SKU is
        the identity map's (levels of items nobody mapped are not Syncline's and are left out)."""
        system = self._shopify_system(name)
        admin, identity = self.shopify(name), self.identity
        skus: dict[str, str | None] = {}  # one identity lookup per item, whatever the number of its locations
        for code, location in sorted(system.locations.items()):
            page: list[tuple[str, str, Any]] = []
            for level in admin.iter_inventory_levels(shopify_gid("Location", location), page_size=page_size):
                item = shopify_gid("InventoryItem", level.inventory_item_id)
                if item not in skus:
                    skus[item] = identity.key_of(INVENTORY_ITEM, name, item) if identity is not None else None
                sku = skus[item]
                if sku is not None:
                    page.append((sku, code, level))
                if len(page) >= page_size:
                    yield page
                    page = []
            yield page

    # -- HubSpot ------------------------------------------------------------------------------------------
    def hubspot(self, name: str) -> Any:
        """The portal's CRM client (private-app token from the secret, re-read on every attempt)."""
        if name not in self._admins:
            from syncline.connectors.hubspot import HUBSPOT_API, HubSpotClient  # noqa: PLC0415

            system = self.config.systems[name]
            if not isinstance(system, HubSpotSystem):
                raise LookupError(f"system {name!r} is {system.kind}, not hubspot")
            self._admins[name] = HubSpotClient(
                lambda: str(self.secret(name)["token"]), base_url=self.base_url(name, HUBSPOT_API) or HUBSPOT_API
            )
        return self._admins[name]

    # -- OAuth2 client credentials (one token per system, shared through the state table: TK#<system>) ------
    def oauth_tokens(self, name: str, *, refresh_skew_seconds: float | None = None) -> Any:
        """The system's token provider (Fracttal, Salesforce). ``refresh_skew_seconds``: refresh when less
        than this is left (the scheduled refresher uses a wider one than the workers, so they never wait)."""
        from syncline.connectors.oauth2 import (  # noqa: PLC0415 - httpx only where used
            ClientCredentials,
            InMemoryTokenStore,
            OAuth2ClientCredentials,
            OAuth2Settings,
        )

        system = self.config.systems[name]
        if isinstance(system, FracttalSystem):
            token_url = system.token_url
        elif isinstance(system, SalesforceSystem):
            token_url = f"{system.login_url.rstrip('/')}/services/oauth2/token"
        else:
            raise LookupError(f"system {name!r} ({system.kind}) does not use OAuth2 client credentials")
        if name in self.endpoints:  # the sandbox serves the token endpoint at the same path
            token_url = self.endpoints[name].rstrip("/") + urlsplit(token_url).path
        store: Any = InMemoryTokenStore()
        if self.dynamodb is not None and self.table:
            from syncline.adapters.tokens_dynamodb import DynamoTokenStore  # noqa: PLC0415

            store = DynamoTokenStore(self.dynamodb, self.table)

        def credentials() -> ClientCredentials:
            secret = self.secret(name)
            return ClientCredentials(str(secret["client_id"]), str(secret["client_secret"]))

        options = {} if refresh_skew_seconds is None else {"refresh_skew_seconds": refresh_skew_seconds}
        return OAuth2ClientCredentials(
            OAuth2Settings(provider=name, token_url=token_url, **options), credentials, store
        )

    def fracttal(self, name: str) -> Any:
        if name not in self._admins:
            from syncline.connectors.fracttal import FracttalClient, FracttalSettings  # noqa: PLC0415

            system = self.config.systems[name]
            if not isinstance(system, FracttalSystem):
                raise LookupError(f"system {name!r} is {system.kind}, not fracttal")
            base = self.base_url(name, FracttalSettings.model_fields["base_url"].default)
            settings = FracttalSettings(warehouse_code=system.warehouse_code, **({"base_url": base} if base else {}))
            self._admins[name] = FracttalClient(settings, self.oauth_tokens(name))
        return self._admins[name]

    # -- Salesforce ---------------------------------------------------------------------------------------
    def salesforce(self, name: str) -> Any:
        """The org's REST client (OAuth2 client credentials, the token shared through the state table)."""
        if name not in self._admins:
            from syncline.connectors.salesforce import SalesforceClient, SalesforceSettings  # noqa: PLC0415

            system = self.config.systems[name]
            if not isinstance(system, SalesforceSystem):
                raise LookupError(f"system {name!r} is {system.kind}, not salesforce")
            settings = SalesforceSettings(
                login_url=self.base_url(name, system.login_url) or system.login_url,
                api_version=system.api_version,
                call_client=system.call_client,
                external_id_field=system.external_id_field,
            )
            self._admins[name] = SalesforceClient(settings, self.oauth_tokens(name))
        return self._admins[name]

    # -- generic REST ---------------------------------------------------------------------------------------
    def rest(self, name: str) -> Any:
        """The declared REST system's connector; its credential read from the secret on every attempt."""
        if name not in self._admins:
            from syncline.connectors.rest import RestConnector, RestSystemConfig  # noqa: PLC0415

            system = self.config.systems[name]
            if not isinstance(system, RestSystem):
                raise LookupError(f"system {name!r} is {system.kind}, not rest")
            config = RestSystemConfig.model_validate(
                {
                    "system": name,
                    "base_url": self.base_url(name) or system.base_url,
                    "auth": system.auth,
                    "entities": system.entities,
                }
            )
            field = "api_key" if config.auth.kind == "api_key" else "token"
            credential = None if config.auth.kind == "none" else (lambda: str(self.secret(name)[field]))
            self._admins[name] = RestConnector(config, credential=credential)
        return self._admins[name]

    def listing_control(self, name: str) -> ShopifyListings:
        """The store's listings (product status) for business alerts' ``disable_listing_when_out``."""
        self._shopify_system(name)
        return ShopifyListings(self.shopify(name), name, self.identity)

    # -- roles ---------------------------------------------------------------------------------------
    def record_system(self, name: str) -> RecordSystem:
        """``name`` as two-way sync reads and writes it."""
        system = self.config.systems[name]
        if isinstance(system, PostgresSystem):
            from syncline.adapters.pg_records import PostgresRecords  # noqa: PLC0415 - psycopg only where used

            return PostgresRecords(name, self.connection(name), system.table)
        if isinstance(system, ShopifySystem):
            from syncline.connectors.shopify import ShopifyInventoryRecords  # noqa: PLC0415

            return ShopifyInventoryRecords(
                self.shopify(name), self.shopify_identity(name), name=system.quantity, system_name=name
            )
        if isinstance(system, HubSpotSystem | OmsSystem | SalesforceSystem):
            return self.contact_view(name)
        if isinstance(system, RestSystem):
            from syncline.connectors.rest import RestRecords  # noqa: PLC0415

            entities = {
                p.entity for p in self.config.pairs if p.direction == "two_way" and name in (p.source, p.target)
            }
            if len(entities) != 1:
                raise LookupError(f"system {name!r}: two-way pairs carry {sorted(entities)}; a rest system serves one")
            return RestRecords(self.rest(name), entities.pop(), name=name)
        raise LookupError(f"system {name!r} ({system.kind}) cannot take part in two-way sync")

    def record_copies(self, name: str, page_size: int = 500) -> Iterator[list[tuple[str, Copy]]]:
        """Every record ``name`` holds as two-way sync reads it, as (key, copy) pages (for reconcile's full compare)."""
        system = self.config.systems[name]
        if isinstance(system, ShopifySystem):
            quantity = system.quantity
            for page in self.shopify_levels(name, min(page_size, 250)):
                yield [
                    (
                        f"{sku}{KEY_SEPARATOR}{code}",
                        Copy({quantity: level.quantity(quantity)}, level.updated_at or datetime.now(UTC)),
                    )
                    for sku, code, level in page
                ]
            return
        records: Any = self.record_system(name)
        yield from records.iter_copies(page_size)

    def contact_view(self, name: str) -> HubSpotContactsByEmail | OmsCustomersByEmail | SalesforceContactsByEmail:
        """Contacts keyed by e-mail (the key a CRM and the OMS share): HubSpot or Salesforce contacts, OMS
        customers."""
        system = self.config.systems[name]
        if isinstance(system, SalesforceSystem):
            from syncline.connectors.salesforce import SalesforceContactsByEmail  # noqa: PLC0415

            return SalesforceContactsByEmail(self.salesforce(name), name=name)
        if isinstance(system, HubSpotSystem):
            from syncline.connectors.hubspot import HubSpotContactsByEmail  # noqa: PLC0415 - httpx only where used

            return HubSpotContactsByEmail(self.hubspot(name), name=name)
        if isinstance(system, OmsSystem):
            from syncline.connectors.oms_pg import OmsCustomersByEmail  # noqa: PLC0415 - psycopg only where used

            return OmsCustomersByEmail(name, self.connection(name))
        raise LookupError(f"system {name!r} ({system.kind}) has no contacts keyed by e-mail")

    def record_key(self, notice: ChangeNotice) -> str:
        """The pair's record key a notice speaks of: Shopify's own ids translated through the identity map; a
        HubSpot contact id or an OMS customer id to the contact's e-mail (one read)."""
        system = self.config.systems.get(notice.source_system)
        if isinstance(system, ShopifySystem):
            return self.shopify_record_key(notice.source_system, notice.key)
        if isinstance(system, HubSpotSystem | OmsSystem | SalesforceSystem):
            what = "customer" if isinstance(system, OmsSystem) else "contact"
            if notice.operation == "delete":
                raise UnknownRecord(
                    f"{notice.source_system}: {what} {notice.key} was deleted; two-way sync does not propagate deletions"
                )
            key = self.contact_view(notice.source_system).key_of(notice.key)
            if key is None:
                raise UnknownRecord(f"{notice.source_system}: {what} {notice.key} is gone or has no e-mail to key on")
            return key
        return notice.key

    def order_source(self, name: str) -> Callable[[str], Order | None]:
        """Fetch one order, fresh, by the key its notice carries (a Shopify order id)."""
        system = self.config.systems[name]
        if isinstance(system, ShopifySystem):
            admin = self.shopify(name)

            def fetch(key: str) -> Order | None:
                order = admin.order(shopify_gid("Order", key))
                return order.to_canonical() if order is not None else None

            return fetch
        raise LookupError(f"system {name!r} ({system.kind}) cannot be an order source")

    def shipment_source(self, name: str) -> Callable[[str], Shipment | None]:
        """Fetch one shipment, fresh, by the key its notice carries (the OMS's shipment id)."""
        system = self.config.systems[name]
        if isinstance(system, OmsSystem):
            from syncline.connectors.oms_pg import OmsDatabase  # noqa: PLC0415

            return OmsDatabase(self.connection(name)).get_shipment
        raise LookupError(f"system {name!r} ({system.kind}) cannot be a shipment source")

    def fulfillment_target(self, name: str) -> Any:
        """Where shipments become fulfilments (a Shopify store: each order fulfilled once, with tracking)."""
        system = self.config.systems[name]
        if isinstance(system, ShopifySystem):
            from syncline.connectors.shopify import ShopifyFulfillments  # noqa: PLC0415

            return ShopifyFulfillments(self.shopify(name))
        raise LookupError(f"system {name!r} ({system.kind}) cannot be a fulfilment target")

    def order_target(self, name: str) -> Any:
        """Where orders are written (the OMS: guarded upserts, statuses never backwards)."""
        system = self.config.systems[name]
        if isinstance(system, OmsSystem):
            from syncline.connectors.oms_pg import OmsDatabase  # noqa: PLC0415

            return OmsDatabase(self.connection(name))
        raise LookupError(f"system {name!r} ({system.kind}) cannot be an order target")

    def inventory_target(self, name: str) -> InventoryTarget:
        """``name`` as a one-way inventory target."""
        system = self.config.systems[name]
        if isinstance(system, PostgresSystem):
            from syncline.adapters.storefront_pg import PostgresStorefront  # noqa: PLC0415

            return PostgresStorefront(self.connection(name))
        if isinstance(system, ShopifySystem):
            from syncline.connectors.shopify import ShopifyInventoryTarget  # noqa: PLC0415

            return ShopifyInventoryTarget(self.shopify(name), self.shopify_identity(name), name=system.quantity)
        if isinstance(system, FracttalSystem):
            from syncline.connectors.fracttal import FracttalInventoryTarget  # noqa: PLC0415

            return FracttalInventoryTarget(self.fracttal(name), system.warehouse_code)
        if isinstance(system, RestSystem):
            from syncline.connectors.rest import RestInventoryTarget  # noqa: PLC0415

            return RestInventoryTarget(self.rest(name))
        raise LookupError(f"system {name!r} ({system.kind}) cannot be an inventory target")

    def price_target(self, name: str) -> PriceTarget:
        """``name`` as a one-way price target: the storefront's prices table, or a Shopify store's variants."""
        system = self.config.systems[name]
        if isinstance(system, PostgresSystem):
            from syncline.adapters.storefront_pg import PostgresStorefrontPrices  # noqa: PLC0415

            return PostgresStorefrontPrices(self.connection(name))
        if isinstance(system, ShopifySystem):
            from syncline.connectors.shopify import ShopifyPriceTarget  # noqa: PLC0415

            return ShopifyPriceTarget(self.shopify(name), self.shopify_inventory_item(name))
        raise LookupError(f"system {name!r} ({system.kind}) cannot be a price target")

    def shopify_inventory_item(self, name: str) -> Callable[[str], str | None]:
        """SKU -> the store's InventoryItem GID from the identity map (None: the store does not sell it)."""
        identity = self.identity

        def inventory_item(sku: str) -> str | None:
            mapped = identity.get(INVENTORY_ITEM, sku) if identity else None
            item = mapped.ids.get(name) if mapped else None
            return shopify_gid("InventoryItem", item) if item else None

        return inventory_item

    def shopify_prices(self, name: str, page_size: int = 10) -> Iterator[list[tuple[str, Any]]]:
        """Every variant the store sells whose inventory item the identity map names, as (SKU, variant) pages, one
        page per page of products (variants of items nobody mapped are not Syncline's and are left out)."""
        self._shopify_system(name)
        admin, identity = self.shopify(name), self.identity
        after: str | None = None
        while True:
            products = admin.products_page(first=min(page_size, 10), after=after, variants=PRODUCT_PAGE_VARIANTS)
            page: list[tuple[str, Any]] = []
            for listed in products.items:
                # A product listed with as many variants as a page reads may have more: read it whole.
                whole = admin.product(listed.id) if len(listed.variants) >= PRODUCT_PAGE_VARIANTS else None
                product = whole or listed
                for variant in product.variants:
                    item = (
                        shopify_gid("InventoryItem", variant.inventory_item_id) if variant.inventory_item_id else None
                    )
                    sku = identity.key_of(INVENTORY_ITEM, name, item) if identity is not None and item else None
                    if sku is not None:
                        page.append((sku, variant))
            yield page
            if not products.has_next_page:
                return
            after = products.end_cursor


@dataclass
class ShopifyListings:
    """``ListingControl`` over a Shopify store: a SKU's product set ACTIVE or DRAFT (unlisted, kept)."""

    admin: Any
    system: str
    identity: IdentityStore | None

    def set_listing(self, sku: str, active: bool) -> None:
        mapped = self.identity.get(INVENTORY_ITEM, sku) if self.identity else None
        item_id = mapped.ids.get(self.system) if mapped else None
        if item_id is None:
            raise UnknownRecord(f"{self.system}: SKU {sku} has no inventory item mapped (see `syncline map`)")
        item = self.admin.inventory_item(shopify_gid("InventoryItem", item_id))
        if item is None or item.product_id is None:
            raise UnknownRecord(f"{self.system}: no product for SKU {sku}")
        self.admin.update_product(item.product_id, status="ACTIVE" if active else "DRAFT")
