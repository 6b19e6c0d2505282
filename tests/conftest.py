"""Shared test helpers: paths to events and the externally authored fixtures."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Every boto3 client of the suite checks its requests against the service model (syncline.adapters.aws).
os.environ["SYNCLINE_AWS_PARAMETER_VALIDATION"] = "1"

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


def load_event(name: str) -> dict[str, Any]:
    """One real-shaped event from events/ (mutate a copy where a test cares)."""
    document: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return document


@pytest.fixture
def event() -> Any:
    return load_event


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """One moto server and one PostgreSQL for the whole session (each test gets fresh resources)."""
    from syncline.local.moto_server import MotoServer
    from syncline.local.postgres import PostgresServer

    work = tmp_path_factory.mktemp("services")
    moto = MotoServer.start(log_file=work / "moto.log")
    postgres = PostgresServer.start(os.environ.get("DATABASE_URL"), work / "pgdata")
    yield moto, postgres
    moto.stop()
    postgres.stop()


@pytest.fixture
def stack(services: tuple[Any, Any], tmp_path: Path) -> Iterator[Any]:
    """A fresh local stack (empty moto, new ERP and storefront databases) on the session's services."""
    from syncline.local.stack import LocalStack

    moto, postgres = services
    moto.reset()
    local = LocalStack.up(moto=moto, postgres=postgres, work_dir=tmp_path)
    yield local
    local.down()
