"""In-memory implementations of the engine's ports, for unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncline.erp.sage300 import ChangeStream, StampedKey
from syncline.models import ChangeNotice, DeadLetter, InventoryLevel, UnparsableMessage
from syncline.ports import Checkpoint, CheckpointMoved, KnownState


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[tuple[str, str], Checkpoint] = {}

    def load(self, source: str, stream: str) -> Checkpoint:
        return self.saved.get((source, stream), Checkpoint())

    def save(self, source: str, stream: str, checkpoint: Checkpoint, *, expected_revision: int) -> None:
        if self.load(source, stream).revision != expected_revision:
            raise CheckpointMoved("moved")
        self.saved[(source, stream)] = checkpoint


@dataclass
class ListPublisher:
    published: list[ChangeNotice] = field(default_factory=list)
    calls: int = 0

    def publish(self, notices: Sequence[ChangeNotice]) -> None:
        self.calls += 1
        self.published.extend(notices)


class MemoryState:
    def __init__(self) -> None:
        self.items: dict[str, KnownState] = {}
        self.fail_commit = False

    def get_many(self, pair: str, entity: str, keys: Sequence[str]) -> Mapping[str, KnownState]:
        return {key: self.items[f"{pair}/{entity}/{key}"] for key in keys if f"{pair}/{entity}/{key}" in self.items}

    def commit_many(self, pair: str, entity: str, states: Mapping[str, KnownState]) -> set[str]:
        if self.fail_commit:
            raise ConnectionError("state store unavailable")
        written = set()
        for key, state in states.items():
            current = self.items.get(f"{pair}/{entity}/{key}")
            if current is None or current.version <= state.version:
                self.items[f"{pair}/{entity}/{key}"] = state
                written.add(key)
        return written


class MemoryTarget:
    def __init__(self) -> None:
        self.rows: dict[str, InventoryLevel] = {}
        self.writes = 0
        self.reject_all = False

    def upsert_inventory(self, levels: Sequence[InventoryLevel]) -> set[str]:
        written = set()
        for level in levels:
            current = self.rows.get(level.key)
            if self.reject_all:
                continue
            if current is None or current.source_version <= level.source_version:
                self.rows[level.key] = level
                self.writes += 1
                written.add(level.key)
        return written


@dataclass
class ListDeadLetters:
    letters: list[DeadLetter | UnparsableMessage] = field(default_factory=list)

    def send(self, letters: Sequence[DeadLetter | UnparsableMessage]) -> None:
        self.letters.extend(letters)


class MemoryErp:
    """ICILOC/ICITEM rows in memory, with the ordering the SQL gives."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.fetches = 0
        self.down = False

    def put(self, item: str, location: str, on_hand: int, stamp: tuple[int, int], committed: int = 0) -> None:
        self.items.setdefault(item, {"DESC": f"Item {item}", "STOCKUNIT": "EA", "INACTIVE": 0, "stamp": stamp})
        self.rows[(item, location)] = {"QTYONHAND": on_hand, "QTYCOMMIT": committed, "stamp": stamp}

    def scan_changes(
        self,
        stream: ChangeStream,
        *,
        from_stamp: tuple[int, int] | None,
        after: tuple[object, ...] | None,
        page_size: int,
    ) -> list[StampedKey]:
        if stream.name == "ICILOC":
            keyed = [(row["stamp"], key) for key, row in self.rows.items()]
        else:
            keyed = [(item["stamp"], (name,)) for name, item in self.items.items()]
        ordered = sorted((*stamp, *key) for stamp, key in keyed)
        if after is not None:
            ordered = [row for row in ordered if row > tuple(after)]
        else:
            ordered = [row for row in ordered if row[:2] >= tuple(from_stamp or (0, 0))]
        return [StampedKey(int(row[0]), int(row[1]), tuple(str(v) for v in row[2:])) for row in ordered[:page_size]]

    def fetch_items(self, items: Iterable[str]) -> list[dict[str, Any]]:
        if self.down:
            raise ConnectionError("cannot reach SQL Server at erp:1433")
        self.fetches += 1
        wanted = set(items)
        records = []
        for (item, location), row in sorted(self.rows.items()):
            if item not in wanted:
                continue
            master = self.items[item]
            records.append(
                {
                    "ITEMNO": item,
                    "LOCATION": location,
                    "QTYONHAND": row["QTYONHAND"],
                    "QTYCOMMIT": row["QTYCOMMIT"],
                    "QTYSALORDR": 0,
                    "QTYONORDER": 0,
                    "AUDTDATE": row["stamp"][0],
                    "AUDTTIME": row["stamp"][1],
                    "DESC": master["DESC"],
                    "STOCKUNIT": master["STOCKUNIT"],
                    "INACTIVE": master["INACTIVE"],
                    "ITEM_AUDTDATE": master["stamp"][0],
                    "ITEM_AUDTTIME": master["stamp"][1],
                }
            )
        return records
