"""The reconcile engine with in-memory sides: one compare model for every pair, and which pairs it covers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from syncline.config import DEFAULT_PATH, load_config
from syncline.ops.reconcile import ApplyReport, Discrepancy, Entry, Unmappable, apply, compare
from syncline.ops.reconcile_sides import coverage


class Listed:
    def __init__(self, *entries: Entry | Unmappable, page: int = 2) -> None:
        self.entries, self.page = list(entries), page

    def pages(self, page_size: int) -> Iterator[Sequence[Entry | Unmappable]]:
        for start in range(0, len(self.entries), self.page):
            yield self.entries[start : start + self.page]


def test_every_key_on_either_side_is_classified_once() -> None:
    # Given a source and a target that agree on one key and differ on the others
    source = Listed(
        Entry("A|main", {"on_hand": Decimal("2.0000")}, 5),
        Entry("B|main", {"on_hand": Decimal(3)}, 5),
        Entry("C|main", {"on_hand": Decimal(4)}, 5),
        Entry("D|main", {"on_hand": Decimal(5)}, 5),
        Entry("E|main", {"on_hand": Decimal(6)}, 9),
        Unmappable("F|QC", "location 'QC' is not mapped"),
        Unmappable("G|1", "negative quantity", key="G|main"),
    )
    target = Listed(
        Entry("A|main", {"on_hand": Decimal(2)}, 5),  # equal as numbers: agreement
        Entry("B|main", {"on_hand": Decimal(30)}, 5),
        Entry("C|main", {"on_hand": Decimal(40)}, 7),  # newer in the target: never overwritten
        Entry("E|main", {"on_hand": Decimal(6)}, 8),  # equal, older version: informational
        Entry("G|main", {"on_hand": Decimal(1)}, 1),  # its source row is unmappable, not deleted
        Entry("Z|main", {"on_hand": Decimal(1)}, 1),
    )

    # When compared
    report = compare(
        source=source, target=target, pair="p", entity="inventory_level", notes={"missing_in_source": "left"}
    )

    # Then
    assert {(d.kind, d.key) for d in report.discrepancies} == {
        ("mismatch", "B|main"),
        ("target_ahead", "C|main"),
        ("missing_in_target", "D|main"),
        ("missing_in_source", "Z|main"),
    }
    assert (report.in_agreement, report.stale_versions, report.unmappable, report.compared) == (2, 1, 2, 6)
    assert report.consistency == 2 / 6
    mismatch = next(d for d in report.discrepancies if d.key == "B|main")
    assert mismatch.fields == {"on_hand": ("3", "30")}
    assert next(d for d in report.discrepancies if d.key == "Z|main").as_dict()["note"] == "left"
    assert report.as_dict()["counts"] == {
        "missing_in_target": 1,
        "missing_in_source": 1,
        "mismatch": 1,
        "target_ahead": 1,
    }


def test_without_versions_a_difference_is_a_plain_mismatch() -> None:
    report = compare(
        source=Listed(Entry("k", {"title": "a", "price": 1})),
        target=Listed(Entry("k", {"price": 1, "title": "b", "extra": None})),
        pair="two-way",
        entity="product",
    )
    (only,) = report.discrepancies
    assert (only.kind, only.fields) == ("mismatch", {"title": ("a", "b")})


def test_apply_hands_every_discrepancy_to_the_repair_in_batches() -> None:
    report = compare(
        source=Listed(*(Entry(f"k{i}", {"v": i}) for i in range(5))), target=Listed(), pair="p", entity="product"
    )
    batches: list[list[str]] = []

    def repair(batch: Sequence[Discrepancy], result: ApplyReport) -> None:
        batches.append([d.key for d in batch])
        result.resynced += len(batch)

    result = apply(report, repair, batch_size=2)
    assert batches == [["k0", "k1"], ["k2", "k3"], ["k4"]]
    assert result.as_dict()["resynced"] == 5


def test_coverage_names_what_is_covered_for_a_pair_it_does_not_cover(tmp_path: Path) -> None:
    path = tmp_path / "syncline.toml"
    path.write_text(
        DEFAULT_PATH.read_text()
        + """
[systems.shop]
kind = "shopify"
secret = "s"
shop = "s.myshopify.com"

[systems.oms]
kind = "oms"
secret = "o"

[systems.cmms]
kind = "fracttal"
secret = "f"
token_url = "https://example.com/token"
warehouse_code = "W"

[[pairs]]
name = "shop-orders"
source = "shop"
target = "oms"
entity = "order"

[[pairs]]
name = "oms-shipments"
source = "oms"
target = "shop"
entity = "shipment"

[[pairs]]
name = "oms-to-shop-contacts"
source = "oms"
target = "shop"
entity = "contact"

[[pairs]]
name = "erp-cmms"
source = "sage300"
target = "cmms"
entity = "inventory_level"
[pairs.locations]
"1" = "main"
"2" = "east"
"""
    )
    config = load_config(path)
    assert coverage(config, config.pair("erp-storefront-inventory")) is None
    assert coverage(config, config.pair("shop-orders")) is None
    assert coverage(config, config.pair("oms-shipments")) is None
    # Declared, though no worker serves it (the topology refuses to deploy it): reconcile says what it covers.
    contacts = coverage(config, config.pair("oms-to-shop-contacts"))
    assert contacts is not None and "one_way contact, oms -> shopify (not covered yet" in contacts
    assert "one-way shipment from oms into shopify" in contacts
    assert "two-way pairs between hubspot, oms, postgres, rest, salesforce, shopify" in contacts
    cmms = coverage(config, config.pair("erp-cmms"))
    assert cmms is not None and "one location" in cmms
