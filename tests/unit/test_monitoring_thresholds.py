"""[monitoring] thresholds: defaults, per-pair overrides, CLI overrides, and conflicts in the health report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from syncline.config import DEFAULT_PATH, ConfigError, load_config
from syncline.monitoring_config import MonitoringConfig, Thresholds
from syncline.ops.health import (
    ConflictFigures,
    PairFigures,
    QueueFigures,
    assess,
    conflict_figures,
    pair_thresholds,
)
from syncline.review import Conflict, ConflictSide, MemoryConflictStore, Status

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
STRICT, LOOSE = "strict-pair", "loose-pair"


def _config(tmp_path: Path, monitoring: str) -> Path:
    path = tmp_path / "syncline.toml"
    path.write_text(DEFAULT_PATH.read_text() + "\n" + monitoring)
    return path


def test_without_a_monitoring_section_the_limits_are_the_built_in_ones() -> None:
    limits = load_config().monitoring.thresholds("erp-storefront-inventory")
    assert limits == Thresholds(
        max_lag_seconds=300, max_errors_per_hour=10, max_pending_conflicts=0, max_backlog=5000, max_dlq=0
    )


def test_the_file_sets_defaults_and_a_pair_overrides_only_what_it_names(tmp_path: Path) -> None:
    config = load_config(
        _config(
            tmp_path,
            """
[monitoring]
max_lag_seconds = 600
max_backlog = 100

[monitoring.pairs.erp-storefront-inventory]
max_lag_seconds = 60
max_pending_conflicts = 4
""",
        )
    )
    monitoring = config.monitoring
    assert monitoring.thresholds() == Thresholds(max_lag_seconds=600, max_backlog=100)
    assert monitoring.thresholds("erp-storefront-inventory") == Thresholds(
        max_lag_seconds=60, max_backlog=100, max_pending_conflicts=4
    )
    assert monitoring.thresholds("another-pair") == monitoring.thresholds()
    assert monitoring.unknown_pairs(p.name for p in config.pairs) == []


def test_an_override_for_an_undeclared_pair_is_reported() -> None:
    monitoring = MonitoringConfig.model_validate({"pairs": {"erp-storefront-inventry": {"max_lag_seconds": 60}}})
    assert monitoring.unknown_pairs(["erp-storefront-inventory"]) == ["erp-storefront-inventry"]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("[monitoring]\nmax_lag = 60\n", "monitoring.max_lag: Extra inputs are not permitted"),
        ("[monitoring]\nmax_backlog = -1\n", "monitoring.max_backlog: Input should be greater than or equal to 0"),
        (
            "[monitoring.pairs.erp-storefront-inventory]\nmax_lag_seconds = 0\n",
            "monitoring.pairs.erp-storefront-inventory.max_lag_seconds: Input should be greater than 0",
        ),
        (
            "[monitoring.pairs.erp-storefront-inventory]\nmax_dlqs = 3\n",
            "monitoring.pairs.erp-storefront-inventory.max_dlqs: Extra inputs are not permitted",
        ),
    ],
)
def test_a_wrong_threshold_fails_with_its_line_and_field(tmp_path: Path, section: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="line ") as error:
        load_config(_config(tmp_path, section))
    assert problem in str(error.value)


def test_the_strictest_limits_of_the_pairs_on_one_queue() -> None:
    a = Thresholds(max_lag_seconds=60, max_backlog=9000)
    b = Thresholds(max_lag_seconds=900, max_backlog=10, max_dlq=3)
    assert Thresholds.strictest([a, b]) == Thresholds(max_lag_seconds=60, max_backlog=10, max_dlq=0)
    with pytest.raises(ValidationError):
        Thresholds(max_errors_per_hour=-1)


# -- the report with per-pair limits ------------------------------------------------------------------------

MONITORING = MonitoringConfig.model_validate(
    {"max_lag_seconds": 900, "pairs": {STRICT: {"max_lag_seconds": 60, "max_pending_conflicts": 2, "max_backlog": 5}}}
)


def _pairs(last_sync: datetime) -> list[PairFigures]:
    return [
        PairFigures(STRICT, "sync_a", last_sync, last_sync, last_sync),
        PairFigures(LOOSE, "sync_b", last_sync, last_sync, last_sync),
    ]


def _queues(waiting: int) -> list[QueueFigures]:
    return [QueueFigures(q, waiting, 0, 0, 0, None, 0) for q in ("sync_a", "sync_b")]


def test_the_same_lag_is_unhealthy_for_the_strict_pair_only() -> None:
    defaults, per_pair = pair_thresholds(MONITORING, [STRICT, LOOSE])
    report = assess(_pairs(NOW - timedelta(minutes=5)), _queues(3), now=NOW, thresholds=defaults, per_pair=per_pair)
    assert report.level == "unhealthy"
    assert report.reasons == [f"{STRICT}: 3 message(s) waiting and nothing synced for 300 s (limit 60 s)"]
    assert [p["thresholds"]["max_lag_seconds"] for p in report.pairs] == [60, 900]


def test_a_cli_flag_replaces_the_limit_for_every_pair() -> None:
    defaults, per_pair = pair_thresholds(MONITORING, [STRICT, LOOSE], {"max_lag_seconds": 100, "max_dlq": None})
    assert (per_pair[STRICT].max_lag_seconds, per_pair[LOOSE].max_lag_seconds, defaults.max_lag_seconds) == (
        100,
        100,
        100,
    )
    assert per_pair[STRICT].max_backlog == 5  # a flag not given keeps the pair's own limit
    report = assess(_pairs(NOW - timedelta(minutes=5)), _queues(3), now=NOW, thresholds=defaults, per_pair=per_pair)
    assert [reason.split(":")[0] for reason in report.reasons if "nothing synced" in reason] == [STRICT, LOOSE]


def test_a_queue_is_held_to_the_strictest_limits_of_the_pairs_it_serves() -> None:
    pairs = [PairFigures(STRICT, "sync_shared", NOW, NOW, NOW), PairFigures(LOOSE, "sync_shared", NOW, NOW, NOW)]
    queue = [QueueFigures("sync_shared", 0, 0, 6, 0, None, 0)]  # six delayed: backlog 6
    defaults, per_pair = pair_thresholds(MONITORING, [STRICT, LOOSE])
    report = assess(pairs, queue, now=NOW, thresholds=defaults, per_pair=per_pair)
    assert (report.level, report.reasons) == ("degraded", ["sync_shared: backlog 6 above 5"])
    alone = assess(pairs[1:], queue, now=NOW, thresholds=defaults, per_pair=per_pair)
    assert alone.level == "healthy"


# -- conflicts ----------------------------------------------------------------------------------------------


def _conflict(number: int, pair: str, status: Status, age_hours: float) -> Conflict:
    created = NOW - timedelta(hours=age_hours)
    sides = (ConflictSide("a", {"price": 1}, created, 1), ConflictSide("b", {"price": 2}, created, 1))
    return Conflict(
        f"cf-{number}",
        pair,
        "product",
        f"P-{number}",
        sides,
        None,
        ("price",),
        {},
        ("manual",),
        status,
        created,
        created,
    )


def test_conflict_figures_count_pending_and_escalated_per_pair_and_skip_closed_ones() -> None:
    store = MemoryConflictStore()
    for conflict in (
        _conflict(1, STRICT, "pending", 1),
        _conflict(2, STRICT, "escalated", 9),
        _conflict(3, STRICT, "resolved", 20),
        _conflict(4, LOOSE, "pending", 2),
        _conflict(5, LOOSE, "superseded", 2),
    ):
        store.add(conflict)
    assert conflict_figures(store) == [
        ConflictFigures(LOOSE, 1, 0, NOW - timedelta(hours=2)),
        ConflictFigures(STRICT, 1, 1, NOW - timedelta(hours=9)),
    ]


def test_conflicts_over_the_pairs_limit_degrade_and_are_in_the_report() -> None:
    defaults, per_pair = pair_thresholds(MONITORING, [STRICT, LOOSE])
    conflicts = [
        ConflictFigures(STRICT, 2, 1, NOW - timedelta(hours=6)),  # 3 waiting, limit 2
        ConflictFigures(LOOSE, 0, 0, None),
    ]
    report = assess(_pairs(NOW), _queues(0), now=NOW, thresholds=defaults, per_pair=per_pair, conflicts=conflicts)
    assert report.level == "degraded"
    assert report.reasons == [
        f"{STRICT}: 3 conflict(s) waiting for a person, 1 escalated (limit 2; `syncline conflicts list --pair {STRICT}`)"
    ]
    strict = report.pairs[0]
    assert (strict["conflicts_pending"], strict["conflicts_escalated"], strict["oldest_conflict_age_seconds"]) == (
        2,
        1,
        6 * 3600,
    )
    assert report.as_dict()["conflicts"] == {"pending": 2, "escalated": 1}
    within = [ConflictFigures(STRICT, 2, 0, NOW)]
    assert assess(_pairs(NOW), _queues(0), now=NOW, thresholds=defaults, per_pair=per_pair, conflicts=within).level == (
        "healthy"
    )


def test_conflicts_of_a_pair_no_longer_declared_still_count_against_the_defaults() -> None:
    report = assess(_pairs(NOW), _queues(0), now=NOW, conflicts=[ConflictFigures("old-pair", 1, 0, NOW)])
    assert report.level == "degraded"
    assert report.reasons[0].startswith("old-pair: 1 conflict(s) waiting")
    assert report.conflicts == {"pending": 1, "escalated": 0}


def test_an_override_for_an_undeclared_pair_fails_the_configuration(tmp_path: Path) -> None:
    path = _config(tmp_path, "[monitoring.pairs.erp-storefront-inventry]\nmax_lag_seconds = 60\n")
    with pytest.raises(
        ConfigError,
        match=r"\[monitoring.pairs.erp-storefront-inventry\]: no sync pair of that name; "
        r"declared: erp-storefront-inventory",
    ):
        load_config(path)
