"""Change detection for a REST system that sends no notices: list its records, notice the ones whose content changed.

Each run lists every record of the entity (the declared list endpoint and pagination), fingerprints its canonical
fields, and compares with the fingerprints the last run stored (the state table, under ``poll:<system>``). A record
new or changed since gets a ``ChangeNotice`` (the two-way worker fetches it fresh); the fingerprints are stored
only after the notices are published, so a failed run notices them again (at least once). Records that vanished
are not noticed: two-way sync does not propagate deletions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from syncline.models import ChangeNotice
from syncline.ports import KnownState, NoticePublisher, StateStore


def poll_state_pair(system: str) -> str:
    """Where a REST system's last-seen fingerprints live in the state table (no pair is named with a ':')."""
    return f"poll:{system}"


@dataclass
class RestPollResult:
    listed: int = 0
    changed: int = 0
    skipped: int = 0  # records without a key


def _fingerprint(record: Mapping[str, object]) -> str:
    encoded = json.dumps(dict(record), sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def poll_records(
    records: Iterable[Mapping[str, object]],
    *,
    system: str,
    entity: str,
    key_field: str,
    state: StateStore,
    publisher: NoticePublisher,
    clock: Callable[[], datetime],
    chunk: int = 500,
) -> RestPollResult:
    """Publish a notice for each listed record whose content differs from the last run's; store the new ones."""
    result = RestPollResult()
    now = clock()
    run_version = int(now.timestamp() * 1000)
    batch: dict[str, str] = {}

    def flush() -> None:
        known = state.get_many(poll_state_pair(system), entity, list(batch))
        changed = {
            key: digest for key, digest in batch.items() if (k := known.get(key)) is None or k.content_hash != digest
        }
        if changed:
            publisher.publish(
                [
                    ChangeNotice(
                        source_system=system, entity=entity, key=key, observed_at=now, source_version=run_version
                    )
                    for key in changed
                ]
            )
            state.commit_many(
                poll_state_pair(system),
                entity,
                {key: KnownState(digest, run_version) for key, digest in changed.items()},
            )
        result.changed += len(changed)
        batch.clear()

    for record in records:
        result.listed += 1
        key = record.get(key_field)
        if key in (None, ""):
            result.skipped += 1
            continue
        batch[str(key)] = _fingerprint(record)
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return result
