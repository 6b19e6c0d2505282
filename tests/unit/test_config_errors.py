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


TWO_WAY = """
[systems.store-a]
kind = "postgres"
secret = "syncline/store-a"

[systems.store-b]
kind = "postgres"
secret = "syncline/store-b"

[[pairs]]
name = "stores"
source = "store-a"
target = "store-b"
entity = "price"
direction = "two_way"
policy = { rule = "last_writer_wins", priority = ["store-a"] }

[pairs.filters]
sku_prefixes = ["A-"]

[[pairs.field_groups]]
fields = ["base", "compare_at"]
policy = { rule = "source_authority", owner = "store-a" }

[[pairs.field_groups]]
fields = ["status"]
policy = { rule = "business_order", order = [["draft"], ["active"], ["archived"]], fallback = { rule = "manual_review" } }
"""


def test_a_two_way_pair_declares_its_policy_per_field_group(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from syncline.conflicts import Side, resolve

    pair = load_config(_write(tmp_path, TWO_WAY)).pair("stores")
    assert pair.filters.accepts("A-1") and not pair.filters.accepts("B-1")
    policy = pair.record_policy()
    now = datetime(2026, 11, 23, tzinfo=UTC)
    a = Side("store-a", {"base": 10, "status": "active", "title": "old"}, now)
    b = Side("store-b", {"base": 12, "status": "draft", "title": "new"}, now.replace(hour=1))
    result = resolve(None, a, b, policy)
    assert result.values == {"base": 10, "status": "active", "title": "new"}
    assert result.rules == {"base": "source_authority", "status": "business_order", "title": "last_writer_wins"}


def test_a_field_in_two_groups_or_a_foreign_owner_is_refused(tmp_path: Path) -> None:
    twice = TWO_WAY.replace('fields = ["status"]', 'fields = ["status", "base"]')
    with pytest.raises(ConfigError, match="field 'base' is in field_groups 0 and 1"):
        load_config(_write(tmp_path, twice))
    foreign = TWO_WAY.replace('owner = "store-a"', 'owner = "erp"')
    with pytest.raises(ConfigError, match="owner 'erp' is neither 'store-a' nor 'store-b'"):
        load_config(_write(tmp_path, foreign))


def test_an_inventory_pair_without_locations_is_refused_with_its_line(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text().replace(
        '[pairs.locations]          # Sage 300 LOCATION -> storefront location code\n"1" = "main"\n"2" = "east"\n"3" = "west"\n',
        "",
    )
    assert "[pairs.locations]" not in text
    with pytest.raises(
        ConfigError, match=r"line \d+: pairs\.0: Value error, a one-way inventory_level pair needs \[pairs\.locations\]"
    ):
        load_config(_write(tmp_path, text))


def test_a_two_way_pair_gets_its_queue_worker_rule_and_the_conflict_sweeper(tmp_path: Path) -> None:
    from syncline.topology import build_topology

    topology = build_topology(load_config(_write(tmp_path, TWO_WAY)))
    queue = topology.queue("twoway_stores")
    worker = topology.function(queue.consumer)
    assert worker.handler == "handlers.twoway_worker.handler" and worker.environment == {"SYNCLINE_PAIR": "stores"}
    assert set(worker.secrets) == {"store-a", "store-b"}
    (rule,) = [r for r in topology.rules if r.queue == queue.id]
    assert rule.pattern["source"] == ["syncline.store-a", "syncline.store-b"]
    assert rule.pattern["detail"] == {"entity": ["price"]}
    assert topology.function("conflict_sweeper").escalates and topology.escalation_topic is not None
    assert any(s.function == "conflict_sweeper" for s in topology.schedules)


def test_a_pair_without_a_worker_yet_is_refused_at_topology_not_deployed(tmp_path: Path) -> None:
    from syncline.topology import build_topology

    one_way_price = TWO_WAY.replace('direction = "two_way"', 'direction = "one_way"').replace(
        'entity = "price"', 'entity = "price"\nprices = { price_list = "WEB", currency = "USD" }'
    )
    with pytest.raises(
        ConfigError, match="pair 'stores': one_way price sync from postgres into postgres has no worker yet"
    ):
        build_topology(load_config(_write(tmp_path, one_way_price)))
    with_erp = TWO_WAY.replace('kind = "postgres"\nsecret = "syncline/store-a"', 'kind = "sage300"\nsecret = "x"')
    with pytest.raises(ConfigError, match="two-way sync needs systems it can read and write"):
        build_topology(load_config(_write(tmp_path, with_erp)))


def test_a_one_way_price_pair_must_name_its_price_list_and_currency(tmp_path: Path) -> None:
    one_way_price = TWO_WAY.replace('direction = "two_way"', 'direction = "one_way"')
    with pytest.raises(ConfigError, match=r"line \d+: pairs\.0: Value error, a one-way price pair needs prices = "):
        load_config(_write(tmp_path, one_way_price))
    bad_currency = one_way_price.replace(
        'entity = "price"', 'entity = "price"\nprices = { price_list = "WEB", currency = "usd" }'
    )
    with pytest.raises(ConfigError, match=r"pairs\.0\.prices\.currency: String should match pattern"):
        load_config(_write(tmp_path, bad_currency))
    on_stock = DEFAULT_PATH.read_text().replace(
        'entity = "inventory_level"\n',
        'entity = "inventory_level"\nprices = { price_list = "WEB", currency = "USD" }\n',
        1,
    )
    with pytest.raises(ConfigError, match="`prices` is for price pairs; this pair syncs inventory_level"):
        load_config(_write(tmp_path, on_stock))


def test_two_systems_of_a_two_way_pair_cannot_be_the_same_table(tmp_path: Path) -> None:
    same = TWO_WAY.replace('secret = "syncline/store-b"', 'secret = "syncline/store-a"')
    with pytest.raises(ConfigError, match="store-a and store-b are the same table"):
        load_config(_write(tmp_path, same))
