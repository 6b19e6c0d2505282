"""Reconcile's coverage against the topology: every pair the topology accepts is either covered, with a reader for
each side and a repair that can be built, or refused with a message; never claimed and then missing a reader."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from syncline.config import DEFAULT_PATH, SynclineConfig, load_config
from syncline.ops.reconcile_sides import Collaborators, coverage, reconciliation
from syncline.systems import SystemFactory
from syncline.topology import ONE_WAY_KINDS, TWO_WAY_ENTITIES, TWO_WAY_KINDS, build_topology

REST_ENTITY = """
[systems.{name}.entities.{entity}]
key_field = "{key}"
list = {{ path = "/api/{entity}" }}
get = {{ path = "/api/{entity}/{{key}}" }}
upsert = {{ path = "/api/{entity}/{{key}}", method = "PUT" }}
fields = {{ {key} = "id", sku = "sku", location = "store", available = "qty", updated_at = "updated_at" }}
"""
SYSTEM = {
    "postgres": 'kind = "postgres"\nsecret = "s/{name}"\ntable = "{name}_records"\n',
    "shopify": 'kind = "shopify"\nsecret = "s/{name}"\nshop = "{name}.myshopify.com"\n[systems.{name}.locations]\nmain = "1"\n',
    "fracttal": 'kind = "fracttal"\nsecret = "s/{name}"\ntoken_url = "https://f.example.com/t"\nwarehouse_code = "W"\n',
    "oms": 'kind = "oms"\nsecret = "s/{name}"\n',
    "hubspot": 'kind = "hubspot"\nsecret = "s/{name}"\napp_id = "1"\n',
    "salesforce": (
        'kind = "salesforce"\nsecret = "s/{name}"\nlogin_url = "https://{name}.my.salesforce.com"\n'
        'event_source = "aws.partner/salesforce.com/00DSB0000000001EAA/0YLSB0000000001AAA"\n'
    ),
    "rest": 'kind = "rest"\nsecret = "s/{name}"\nbase_url = "https://{name}.example.com"\n',
}


def _system(kind: str, name: str, entity: str) -> str:
    text = f"\n[systems.{name}]\n" + SYSTEM[kind].format(name=name)
    if kind == "rest":
        text += REST_ENTITY.format(name=name, entity=entity, key="key" if entity == "inventory_level" else "code")
    return text


def _combinations() -> list[tuple[str, str, str, str]]:
    """(direction, entity, source kind, target kind) for every pair the topology can deploy."""
    one_way = [("one_way", entity, s, t) for entity, combos in ONE_WAY_KINDS.items() for s, t in sorted(combos)]
    two_way = []
    for s, t in itertools.product(sorted(TWO_WAY_KINDS), repeat=2):
        entities = TWO_WAY_ENTITIES.get(s, frozenset({"contact", "product"})) & TWO_WAY_ENTITIES.get(
            t, frozenset({"contact", "product"})
        )
        two_way += [("two_way", entity, s, t) for entity in sorted(entities)]
    return one_way + two_way


def _config(tmp_path: Path, direction: str, entity: str, source: str, target: str) -> SynclineConfig:
    names = ("sage300", "src") if source == "sage300" else ("src", "dst")
    text = DEFAULT_PATH.read_text()
    if source != "sage300":
        text += _system(source, "src", entity)
    text += _system(target, "dst", entity)
    pair = f'\n[[pairs]]\nname = "walked"\nsource = "{names[0]}"\ntarget = "dst"\nentity = "{entity}"\n'
    pair += f'direction = "{direction}"\n'
    if entity == "price":
        pair += 'prices = { price_list = "WEB", currency = "USD" }\n'
    if entity == "inventory_level" and direction == "one_way":
        pair += '[pairs.locations]\n"1" = "main"\n'
    path = tmp_path / "syncline.toml"
    path.write_text(text + pair)
    return load_config(path)


class _Lazy:
    """A collaborator nobody may call while a reconciliation is only built."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("building a reconciliation must not reach a system")


@pytest.mark.parametrize(("direction", "entity", "source", "target"), _combinations())
def test_coverage_claims_only_pairs_it_can_read(
    tmp_path: Path, direction: str, entity: str, source: str, target: str
) -> None:
    config = _config(tmp_path, direction, entity, source, target)
    build_topology(config)  # the topology accepts it: a worker serves this pair
    pair = config.pair("walked")
    reason = coverage(config, pair)
    if reason is not None:
        assert f"walked is {direction} {entity}, {source} -> {target}" in reason
        with pytest.raises(LookupError):
            reconciliation(config, pair, _collaborators(config))
        return
    plan = reconciliation(config, pair, _collaborators(config))
    assert plan.pair == "walked" and callable(plan.repair)
    if direction == "two_way":
        for name, kind in (("src", source), ("dst", target)):
            if kind != "shopify":  # Shopify's levels are listed by the factory itself
                assert callable(getattr(_factory(config).record_system(name), "iter_copies", None)), kind


def _collaborators(config: SynclineConfig) -> Collaborators:
    return Collaborators(_factory(config), erp=lambda name: _Lazy(), state=_Lazy(), twoway=_Lazy(), review=_Lazy())


def _factory(config: SynclineConfig) -> SystemFactory:
    def no_connection(name: str) -> Any:
        return _Lazy()

    return SystemFactory(config, secret=lambda name: {}, connection=no_connection)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ('list = { path = "/api/inventory_level" }\n', "declares no list endpoint"),
        ('key_field = "key"', "maps neither sku and location nor the canonical key"),
    ],
)
def test_a_rest_inventory_target_it_cannot_list_or_match_is_refused_precisely(
    tmp_path: Path, change: str, said: str
) -> None:
    _config(tmp_path, "one_way", "inventory_level", "sage300", "rest")
    text = (tmp_path / "syncline.toml").read_text()
    if change.startswith("key_field"):  # the key is the system's own id, and neither sku nor location is mapped
        text = text.replace(change, 'key_field = "id"').replace(
            '{ key = "id", sku = "sku", location = "store", available = "qty"', '{ id = "id", available = "qty"'
        )
    else:
        text = text.replace(change, "")
    (tmp_path / "syncline.toml").write_text(text)
    config = load_config(tmp_path / "syncline.toml")
    build_topology(config)  # still a pair the worker serves
    reason = coverage(config, config.pair("walked"))
    assert reason is not None and said in reason and "dst.entities.inventory_level" in reason
