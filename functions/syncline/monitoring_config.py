"""``[monitoring]`` in syncline.toml: health thresholds, per integration, and business alerts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MonitoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
