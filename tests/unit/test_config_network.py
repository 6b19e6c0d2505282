"""The optional [network] section: ids checked where they are written, systems must be declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncline.config import DEFAULT_PATH, ConfigError, load_config

NETWORK = """
[network]
vpc_id = "vpc-0123456789abcdef0"
subnet_ids = ["subnet-0123456789abcdef0"]
security_group_ids = ["sg-0123456789abcdef0"]
systems = ["sage300"]
"""


def _with(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text() + section)
    return path


def test_the_shipped_configuration_places_nothing_in_a_vpc() -> None:
    assert load_config(DEFAULT_PATH).network is None


def test_a_network_section_is_read(tmp_path: Path) -> None:
    network = load_config(_with(tmp_path, NETWORK)).network
    assert network is not None
    assert network.subnet_ids == ["subnet-0123456789abcdef0"]
    assert network.security_group_ids == ["sg-0123456789abcdef0"]
    assert network.systems == ["sage300"]


def test_a_network_for_an_undeclared_system_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="network: system 'erp-2' is not declared under"):
        load_config(_with(tmp_path, NETWORK.replace('["sage300"]', '["erp-2"]')))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"subnet-0123456789abcdef0"', '"10.0.1.0/24"', "subnet_ids: '10.0.1.0/24' is not a subnet-... id"),
        ('"sg-0123456789abcdef0"', '"default"', "security_group_ids: 'default' is not a sg-... id"),
        ('"vpc-0123456789abcdef0"', '"my-vpc"', r"network\.vpc_id: String should match pattern"),
        ('subnet_ids = ["subnet-0123456789abcdef0"]', "subnet_ids = []", r"network\.subnet_ids: List should have"),
    ],
)
def test_a_network_id_that_is_not_an_id_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_with(tmp_path, NETWORK.replace(old, new)))
