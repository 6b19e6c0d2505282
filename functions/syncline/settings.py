"""Runtime settings of a function, read once from its environment at cold start.

Only names and references live in the environment (table, bus, queue URL, configuration path);
credentials are fetched from Secrets Manager by the names the configuration file gives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ENV_TABLE = "SYNCLINE_TABLE"
ENV_BUS = "SYNCLINE_BUS"
ENV_CONFIG = "SYNCLINE_CONFIG"
ENV_SOURCE = "SYNCLINE_SOURCE"
ENV_TARGET = "SYNCLINE_TARGET"
ENV_DLQ_URL = "SYNCLINE_DLQ_URL"
ENV_STATE_COMMIT = "SYNCLINE_STATE_COMMIT"
ENV_PAIR = "SYNCLINE_PAIR"
ENV_ESCALATION_TOPIC = "SYNCLINE_ESCALATION_TOPIC"
ENV_ENDPOINTS = "SYNCLINE_ENDPOINTS"  # JSON: system name -> base URL (the local stack's sandboxes)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=1)
    bus_name: str | None = None
    config_path: str | None = None
    source: str | None = None
    target: str | None = None
    dead_letter_queue_url: str | None = None
    state_commit: Literal["transaction", "per_key"] = "transaction"
    pair: str | None = None
    escalation_topic_arn: str | None = None
    endpoints: str | None = None  # SYNCLINE_ENDPOINTS as given (hashable: settings key a cache)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            table_name=env.get(ENV_TABLE, ""),
            bus_name=env.get(ENV_BUS) or None,
            config_path=env.get(ENV_CONFIG) or None,
            source=env.get(ENV_SOURCE) or None,
            target=env.get(ENV_TARGET) or None,
            dead_letter_queue_url=env.get(ENV_DLQ_URL) or None,
            state_commit=env.get(ENV_STATE_COMMIT) or "transaction",
            pair=env.get(ENV_PAIR) or None,
            escalation_topic_arn=env.get(ENV_ESCALATION_TOPIC) or None,
            endpoints=env.get(ENV_ENDPOINTS) or None,
        )
