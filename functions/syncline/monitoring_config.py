"""``[monitoring]`` in syncline.toml: health thresholds (defaults and per pair), stock alerts, the daily digest.

```toml
[monitoring]                          # defaults for every pair (these are the built-in values)
max_lag_seconds = 300                 # unhealthy: work waiting and nothing synced for longer
max_errors_per_hour = 10              # unhealthy: more records dead-lettered in the last hour
max_pending_conflicts = 0             # degraded: more conflicts waiting for a person (pending + escalated)
max_backlog = 5000                    # degraded: more messages waiting in the pair's queue
max_dlq = 0                           # degraded: more messages in the pair's DLQ

[monitoring.pairs.erp-storefront-inventory]   # only what differs for this pair
max_lag_seconds = 120
```

A pair's lag and conflicts are its own; errors, backlog and DLQ are figures of a queue, which several pairs
into one target share, so a queue is held to the strictest limit among its pairs. Pair names are checked
against ``[[pairs]]`` by ``SynclineConfig`` (``unknown_pairs``), so a typo fails the deployment.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

LIMIT_FIELDS = ("max_lag_seconds", "max_errors_per_hour", "max_pending_conflicts", "max_backlog", "max_dlq")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """The limits of the health report's levels (``syncline.ops.health``)."""

    max_lag_seconds: float = Field(300, gt=0, description="unhealthy: work waits and nothing synced for longer")
    max_errors_per_hour: int = Field(10, ge=0, description="unhealthy: more dead letters in the last hour")
    max_pending_conflicts: int = Field(0, ge=0, description="degraded: more conflicts waiting for a person")
    max_backlog: int = Field(5000, ge=0, description="degraded: more messages waiting in the queue")
    max_dlq: int = Field(0, ge=0, description="degraded: more messages in the DLQ")

    def overridden(self, overrides: ThresholdOverrides | None) -> Thresholds:
        """These limits with the values ``overrides`` sets."""
        if overrides is None:
            return self
        return self.model_copy(update=overrides.model_dump(exclude_none=True))

    @staticmethod
    def strictest(limits: Iterable[Thresholds]) -> Thresholds:
        """The lowest of every limit (a queue shared by pairs with different limits)."""
        found = list(limits)
        if not found:
            return Thresholds()
        return Thresholds.model_validate({name: min(getattr(t, name) for t in found) for name in LIMIT_FIELDS})


class ThresholdOverrides(_Strict):
    """``[monitoring.pairs.<pair>]``: the limits that differ for one pair (the rest are the defaults)."""

    max_lag_seconds: float | None = Field(None, gt=0)
    max_errors_per_hour: int | None = Field(None, ge=0)
    max_pending_conflicts: int | None = Field(None, ge=0)
    max_backlog: int | None = Field(None, ge=0)
    max_dlq: int | None = Field(None, ge=0)


class StockAlertsConfig(_Strict):
    """``[monitoring.stock]``: business alerts on stock levels (``syncline.business_alerts``).

    Off unless ``enabled``. A level alerts when it *crosses*: to at or below its reorder point, to zero
    available (out of stock), and from zero back above it; never on every change below the point.
    """

    enabled: bool = False
    default_reorder_point: Decimal | None = Field(
        None, ge=0, description="for SKUs not in reorder_points; none = only out-of-stock alerts for them"
    )
    reorder_points: dict[str, Decimal] = Field(default_factory=dict, description="SKU -> reorder point")
    disable_listing_when_out: bool = Field(
        False, description="deactivate the store listing when a SKU is out at every listing location"
    )
    listing_locations: list[str] = Field(
        default_factory=list, description="target location codes the store sells from (empty: every mapped one)"
    )

    def reorder_point(self, sku: str) -> Decimal | None:
        return self.reorder_points.get(sku, self.default_reorder_point)


class DigestConfig(_Strict):
    """``[monitoring.digest]``: the daily e-mail (``syncline.digest``); off until it has a sender and recipients."""

    sender: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$", description="an SES-verified address")
    recipients: list[str] = Field(default_factory=list)
    top_errors: int = Field(5, ge=1, le=50)

    @property
    def enabled(self) -> bool:
        return bool(self.sender and self.recipients)


class MonitoringConfig(Thresholds):
    """``[monitoring]``: the default thresholds, per-pair overrides, stock alerts and the daily digest."""

    pairs: dict[str, ThresholdOverrides] = Field(default_factory=dict, description="pair name -> its limits")
    stock: StockAlertsConfig = StockAlertsConfig()
    digest: DigestConfig = DigestConfig()

    @property
    def defaults(self) -> Thresholds:
        return Thresholds.model_validate({name: getattr(self, name) for name in LIMIT_FIELDS})

    def thresholds(self, pair: str | None = None) -> Thresholds:
        """The limits of ``pair`` (the defaults with its overrides), or the defaults."""
        return self.defaults.overridden(self.pairs.get(pair) if pair else None)

    def unknown_pairs(self, declared: Iterable[str]) -> list[str]:
        """Override sections naming no declared pair (a typo would silently keep the defaults)."""
        known = set(declared)
        return sorted(name for name in self.pairs if name not in known)
