"""Configuration errors name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncline.config import DEFAULT_PATH, ConfigError, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncline.toml"
    path.write_text(text)
    return path


def test_the_shipped_configuration_is_valid() -> None:
    config = load_config(DEFAULT_PATH)
    assert config.pair("erp-storefront-inventory").locations["1"] == "main"


def test_a_bad_field_in_the_second_pair_is_located_by_line(tmp_path: Path) -> None:
    text = (
        DEFAULT_PATH.read_text()
        + """
[[pairs]]
name = "Bad Name!"
source = "sage300"
target = "storefront"
entity = "inventory_level"

[pairs.locations]
"1" = "main"
"""
    )
    path = _write(tmp_path, text)
    bad_line = text.splitlines().index('name = "Bad Name!"') + 1
    with pytest.raises(
        ConfigError, match=rf"syncline.toml: line {bad_line}: pairs\.1\.name: String should match pattern"
    ):
        load_config(path)


def test_an_unknown_key_and_a_missing_section_are_reported_with_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[systems.sage300]
kind = "sage300"
secret = "s"
colour = "blue"
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "line 5: systems.sage300.colour: Extra inputs are not permitted" in message
    assert "pairs: Field required" in message


def test_a_pair_naming_an_undeclared_system_says_which(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text().replace('target = "storefront"', 'target = "shopify-store-z"', 1)
    with pytest.raises(
        ConfigError, match="pair 'erp-storefront-inventory': target 'shopify-store-z' is not declared under"
    ):
        load_config(_write(tmp_path, text))


def test_invalid_toml_is_reported_with_its_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        load_config(_write(tmp_path, "app = 'x'\n[systems\n"))
