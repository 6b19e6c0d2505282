"""Fixtures shared by the integration suite."""

from __future__ import annotations

from typing import Any

import pytest

from syncline.db import DbSettings, connect
from syncline.erp.sage300 import Sage300Reader
from syncline.local.postgres import ERP_READER
from syncline.local.stack import ERP_DATABASE


@pytest.fixture
def reader(stack: Any) -> Sage300Reader:
    """The ERP reader as the poller uses it: the read-only role on the local stack's Sage-300-shaped database."""
    settings = DbSettings.model_validate(
        stack.postgres.secret_for(ERP_DATABASE, user=ERP_READER, password=stack.postgres.reader_password)
    )
    connection = connect(settings, read_only=True)
    stack._connections.append(connection)
    return Sage300Reader(lambda: connection)
