"""Salesforce and generic REST systems in pairs, without the network: the documented configurations build their
queues and rules, what cannot work is refused with the reason, the CDC relay turns Event Relay events into
notices (echoes dropped), and a pair narrowed to the fields both sides store never clears the others."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncline.config import DEFAULT_PATH, ConfigError, SynclineConfig, load_config
from syncline.models import ChangeNotice, DeadLetter, UnparsableMessage
from syncline.rest_poll import poll_records
from syncline.salesforce_cdc import event_relay_entry, relay_change_events
from syncline.topology import build_topology
from syncline.twoway import Copy, FieldSubset, StaleWrite, shared_fields
from tests.fakes import ListPublisher, MemoryState

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
EVENT_SOURCE = "aws.partner/salesforce.com/00DSB0000000001EAA/0YLSB0000000001AAA"


def _config(tmp_path: Path, extra: str) -> SynclineConfig:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text() + extra)
    return load_config(path)


def _doc_toml(name: str, heading: str) -> str:
    """The TOML block under ``heading`` in docs/connectors/<name>."""
    text = (DOCS / name).read_text()
    section = text[text.index(heading) :]
    found = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert found, f"no TOML example under {heading!r} in {name}"
    return found.group(1)


def test_the_documented_salesforce_pair_deploys_its_relay_and_worker(tmp_path: Path) -> None:
    topology = build_topology(_config(tmp_path, _doc_toml("SALESFORCE.md", "## In a sync pair")))
    assert topology.partner_buses == (EVENT_SOURCE,)
    relay = next(rule for rule in topology.rules if rule.id == "cdc_sfdc")
    assert relay.bus == EVENT_SOURCE
    assert relay.pattern == {"source": [EVENT_SOURCE], "detail-type": ["ContactChangeEvent"]}
    assert topology.function("cdc_sfdc").handler == "handlers.salesforce_cdc.handler"
    assert topology.function("cdc_sfdc").secrets == ()  # it relays; it reads nothing from Salesforce
    # `syncline status` reports the pair on its worker's queue, not on the relay's.
    assert [q.id for q in topology.queues if "sf-customers" in q.pairs] == ["twoway_sf_customers"]
    pair_rule = next(rule for rule in topology.rules if rule.id == "between_sf_customers")
    assert pair_rule.bus is None and pair_rule.pattern["source"] == ["syncline.oms", "syncline.sfdc"]


def test_the_documented_rest_target_deploys_a_sync_worker(tmp_path: Path) -> None:
    topology = build_topology(_config(tmp_path, _doc_toml("REST.md", "## As a one-way inventory target")))
    assert topology.function("sync_pos").handler == "handlers.sync_worker.handler"
    assert topology.function("sync_pos").secrets == ("pos", "sage300")


def test_a_salesforce_pair_without_an_event_source_is_refused(tmp_path: Path) -> None:
    extra = _doc_toml("SALESFORCE.md", "## In a sync pair").replace(f'event_source = "{EVENT_SOURCE}"', "")
    with pytest.raises(ConfigError, match="needs event_source"):
        build_topology(_config(tmp_path, extra))


def test_a_rest_system_with_oauth2_or_a_bad_mapping_is_refused_at_its_line(tmp_path: Path) -> None:
    extra = _doc_toml("REST.md", "## As a one-way inventory target")
    with pytest.raises(ConfigError, match=r"systems\.pos\.auth\.kind: .*oauth2 is not available"):
        _config(tmp_path, extra.replace('kind = "api_key"', 'kind = "oauth2"'))
    with pytest.raises(ConfigError, match=r"line \d+: systems\.pos\.entities\.inventory_level.*key_field"):
        _config(tmp_path, extra.replace('key_field = "key"', 'key_field = "nope"'))


# --- the CDC relay -------------------------------------------------------------------------------------


class Published:
    def __init__(self) -> None:
        self.notices: list[ChangeNotice] = []
        self.letters: list[DeadLetter | UnparsableMessage] = []

    def publish(self, notices: Sequence[ChangeNotice]) -> None:
        self.notices.extend(notices)

    def send(self, letters: Sequence[DeadLetter | UnparsableMessage]) -> None:
        self.letters.extend(letters)


def _relayed(entity: str, ids: list[str], origin: str = "", change: str = "UPDATE") -> str:
    """A CDC message as the sandbox records it, made into the EventBridge event Event Relay delivers."""
    header = {
        "entityName": entity,
        "recordIds": ids,
        "changeType": change,
        "changeOrigin": origin,
        "transactionKey": "0001a2b3",
        "sequenceNumber": 1,
        "commitTimestamp": 1_795_000_000_000,
        "commitNumber": 10_000_001,
    }
    entry = event_relay_entry({"data": {"schema": "s", "payload": {"ChangeEventHeader": header}}}, EVENT_SOURCE)
    envelope = {"source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])}
    return json.dumps(envelope)


def test_the_relay_publishes_a_notice_per_record_and_drops_our_echoes() -> None:
    out = Published()
    result = relay_change_events(
        [
            _relayed("Contact", ["003A", "003B"], origin="com/salesforce/api/rest/62.0;client=someone-else"),
            _relayed("Contact", ["003C"], origin="com/salesforce/api/rest/62.0;client=syncline"),
            _relayed("Lead", ["00QA"]),
            "not json",
        ],
        system="sfdc",
        client="syncline",
        publisher=out,
        dead_letters=out,
        clock=lambda: NOW,
    )
    assert [(n.source_system, n.entity, n.key) for n in out.notices] == [
        ("sfdc", "contact", "003A"),
        ("sfdc", "contact", "003B"),
    ]
    assert out.notices[0].delivery_id == "0001a2b3:1:003A"
    assert (result.echoes, result.ignored, len(result.unparsable)) == (1, 1, 1)
    assert out.letters == result.unparsable and out.letters[0].body == "not json"


def test_an_event_relay_entry_is_named_after_the_change_event() -> None:
    entry = event_relay_entry({"data": {"payload": {"ChangeEventHeader": {"entityName": "Contact"}}}}, EVENT_SOURCE)
    assert (entry["Source"], entry["DetailType"]) == (EVENT_SOURCE, "ContactChangeEvent")
    assert set(json.loads(entry["Detail"])) == {"payload", "schemaId", "id"}


# --- pairs narrowed to the fields both sides store -----------------------------------------------------


class Records:
    """An in-memory record system with versions (a compare-and-swap store)."""

    def __init__(self, name: str, synced_fields: tuple[str, ...] | None = None) -> None:
        self.name = name
        self.rows: dict[str, Copy] = {}
        if synced_fields is not None:
            self.synced_fields = synced_fields

    def read(self, key: str) -> Copy | None:
        return self.rows.get(key)

    def write(self, key: str, values: Mapping[str, Any], *, expected_version: int | None) -> Copy:
        current = self.rows.get(key)
        if (current.version if current else None) != expected_version:
            raise StaleWrite(key)
        self.rows[key] = Copy(dict(values), NOW, (current.version or 0) + 1 if current else 1)
        return self.rows[key]


def test_a_pair_is_narrowed_to_the_common_fields_and_a_write_keeps_the_others() -> None:
    crm, oms = Records("crm", ("email", "first_name")), Records("oms")
    oms.rows["a@x.io"] = Copy({"email": "a@x.io", "first_name": "A", "lifecycle_stage": "customer"}, NOW, 3)
    narrowed = shared_fields([crm, oms])
    assert narrowed[0] is crm and isinstance(narrowed[1], FieldSubset)
    assert narrowed[1].read("a@x.io") == Copy({"email": "a@x.io", "first_name": "A"}, NOW, 3)

    stored = narrowed[1].write("a@x.io", {"email": "a@x.io", "first_name": "Ada"}, expected_version=3)
    assert stored.values == {"email": "a@x.io", "first_name": "Ada"}
    assert oms.rows["a@x.io"].values["lifecycle_stage"] == "customer"  # kept, not cleared
    with pytest.raises(StaleWrite):
        narrowed[1].write("a@x.io", {"first_name": "B"}, expected_version=3)


def test_systems_that_declare_no_fields_are_left_as_they_are() -> None:
    a, b = Records("a"), Records("b")
    assert shared_fields([a, b]) == [a, b]


# --- a REST system polled as a two-way source ----------------------------------------------------------

PIM = """
[systems.pim]
kind = "rest"
secret = "syncline/pim"
base_url = "https://pim.example.com"
poll_seconds = 120
[systems.pim.entities.product]
key_field = "sku"
list = { path = "/api/products" }
get = { path = "/api/products/{key}" }
upsert = { path = "/api/products/{key}", method = "PUT" }
fields = { sku = "code", title = "name", updated_at = "updated_at" }

[systems.catalog]
kind = "postgres"
secret = "syncline/catalog"
table = "catalog_records"

[[pairs]]
name = "pim-catalog"
source = "pim"
target = "catalog"
entity = "product"
direction = "two_way"
"""


def test_a_two_way_rest_system_gets_a_poller_on_its_schedule(tmp_path: Path) -> None:
    topology = build_topology(_config(tmp_path, PIM))
    poller = topology.function("rest_poller_pim")
    assert (poller.handler, poller.secrets, poller.publishes_notices) == (
        "handlers.rest_poller.handler",
        ("pim",),
        True,
    )
    assert any(s.function == poller.id and s.rate_seconds == 120 for s in topology.schedules)


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ('list = { path = "/api/products" }\n', "list"),
        (', updated_at = "updated_at"', "fields.updated_at"),
    ],
)
def test_a_two_way_rest_entity_must_be_listable_and_timed(tmp_path: Path, change: str, missing: str) -> None:
    with pytest.raises(ConfigError, match=rf"two-way product needs {re.escape(missing)}"):
        build_topology(_config(tmp_path, PIM.replace(change, "")))


def test_the_poller_notices_new_and_changed_records_once() -> None:
    state, publisher = MemoryState(), ListPublisher()

    def poll(records: list[dict[str, Any]]) -> list[str]:
        publisher.published.clear()
        options: dict[str, Any] = {"system": "pim", "entity": "product", "key_field": "sku", "chunk": 2}
        poll_records(records, state=state, publisher=publisher, clock=lambda: NOW, **options)
        return [notice.key for notice in publisher.published]

    first = [{"sku": "A", "title": "a"}, {"sku": "B", "title": "b"}, {"sku": "C", "title": "c"}, {"title": "no key"}]
    assert poll(first) == ["A", "B", "C"]
    assert poll(first) == []
    assert poll([{"sku": "A", "title": "a"}, {"sku": "B", "title": "B!"}]) == ["B"]


def test_the_documented_polled_rest_pair_builds(tmp_path: Path) -> None:
    topology = build_topology(_config(tmp_path, _doc_toml("REST.md", "## As a polled two-way source")))
    assert {"rest_poller_pim", "twoway_pim_catalog"} <= {f.id for f in topology.functions}
