"""The declarative configuration file (``syncline.toml``): systems, sync pairs, schedules.

The CDK app and the functions read the same file, so what is deployed and what runs cannot drift.
Credentials appear only as references (Secrets Manager names), never as values.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "syncline.toml"


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class System(_Strict):
    kind: Literal["sage300", "postgres"]
    secret: str = Field(description="Secrets Manager name or ARN holding the connection settings")
    timezone: str = "UTC"


class PollerConfig(_Strict):
    rate_seconds: int = Field(60, ge=1)
    page_size: int = Field(500, ge=1, le=10_000)
    max_rows_per_run: int = Field(20_000, ge=1)
    lookback_seconds: int = Field(300, ge=0)
    notices_per_event: int = Field(100, ge=1, le=500)


class Pair(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    source: str
    target: str
    entity: Literal["inventory_level"]
    locations: dict[str, str] = Field(description="source location code -> target location code")


class SynclineConfig(_Strict):
    app: str = "syncline"
    systems: dict[str, System]
    poller: PollerConfig = PollerConfig()
    pairs: list[Pair] = Field(min_length=1)

    @model_validator(mode="after")
    def _pairs_name_known_systems(self) -> SynclineConfig:
        for pair in self.pairs:
            for role, system in (("source", pair.source), ("target", pair.target)):
                if system not in self.systems:
                    raise ValueError(f"pair {pair.name!r}: {role} {system!r} is not declared under [systems]")
        return self

    def pair(self, name: str) -> Pair:
        for pair in self.pairs:
            if pair.name == name:
                return pair
        raise ConfigError(f"no sync pair named {name!r}; declared: {', '.join(p.name for p in self.pairs)}")


def load_config(path: Path | str | None = None) -> SynclineConfig:
    """Read and validate the configuration file; errors say which field is wrong and how."""
    source = Path(path) if path else DEFAULT_PATH
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: configuration file not found (set SYNCLINE_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return SynclineConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


@cache
def cached_config(path: str | None = None) -> SynclineConfig:
    """The configuration, read once per process (Lambda cold start)."""
    return load_config(path)
