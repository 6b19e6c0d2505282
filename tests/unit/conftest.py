"""Unit tests run with sockets blocked: the engine must not need a network."""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> object:
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()
