"""The daily digest: gathered from a fake source, rendered as text and HTML, sent through a channel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncline.connectors.alerts import Alert, Delivery
from syncline.digest import (
    DeadLetterFigure,
    DigestAlert,
    DigestEmail,
    build_digest,
    render_html,
    render_text,
    send_digest,
)
from syncline.review import Conflict, ConflictSide, Decision, Status

UNTIL = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
PAIR, OTHER = "erp-storefront-inventory", "stores-products"


def _conflict(number: int, pair: str, status: Status, created: datetime, decided: datetime | None = None) -> Conflict:
    sides = (ConflictSide("a", {"price": 1}, created, 1), ConflictSide("b", {"price": 2}, created, 1))
    decision = Decision("a", {"price": 1}, "ops", decided) if decided else None
    return Conflict(
        f"cf-{number}",
        pair,
        "product",
        f"P-{number}",
        sides,
        None,
        ("price",),
        {},
        (),
        status,
        created,
        created,
        decision=decision,
    )


@dataclass
class FakeSource:
    synced_counts: dict[str, int] = field(default_factory=lambda: {PAIR: 1200, OTHER: 3})
    letters: list[DeadLetterFigure] = field(default_factory=list)
    conflict_list: list[Conflict] = field(default_factory=list)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest_health: dict[str, Any] | None = None
    asked: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def synced(self, pair: str, since: datetime, until: datetime) -> int:
        self.asked.append((pair, since, until))
        return self.synced_counts.get(pair, 0)

    def dead_letters(self) -> Sequence[DeadLetterFigure]:
        return self.letters

    def conflicts(self) -> Sequence[Conflict]:
        return self.conflict_list

    def reconcile(self, pair: str) -> Mapping[str, Any] | None:
        return self.reports.get(pair)

    def health(self) -> Mapping[str, Any] | None:
        return self.latest_health


def _busy_day() -> FakeSource:
    hour = timedelta(hours=1)
    return FakeSource(
        letters=[
            DeadLetterFigure("sync_storefront", UNTIL - 2 * hour, "negative quantity: QTYONHAND = -5.0000"),
            DeadLetterFigure("sync_storefront", UNTIL - 3 * hour, "negative quantity: QTYONHAND = -3.0000"),
            DeadLetterFigure("sync_storefront", UNTIL - 4 * hour, "location 'QC' is not mapped for this pair"),
            DeadLetterFigure("sync_storefront", UNTIL - 30 * hour, "yesterday's <b>failure</b>"),  # before the window
        ],
        conflict_list=[
            _conflict(1, OTHER, "pending", UNTIL - 5 * hour),
            _conflict(2, OTHER, "resolved", UNTIL - 40 * hour, decided=UNTIL - hour),
            _conflict(3, OTHER, "resolved", UNTIL - 50 * hour, decided=UNTIL - 30 * hour),
            _conflict(4, OTHER, "escalated", UNTIL - 48 * hour),
        ],
        reports={PAIR: {"consistency": 0.99, "compared": 500, "finished_at": "2026-11-24T00:00:00+00:00"}},
        latest_health={"level": "degraded", "reasons": ["sync_storefront: 4 message(s) in the DLQ"]},
    )


def test_the_digest_counts_the_window_only() -> None:
    source = _busy_day()
    digest = build_digest(source, [PAIR, OTHER], until=UNTIL, top_errors=2)
    assert source.asked == [(PAIR, UNTIL - timedelta(days=1), UNTIL), (OTHER, UNTIL - timedelta(days=1), UNTIL)]
    erp, stores = digest.pairs
    assert (erp.synced, erp.consistency, erp.compared) == (1200, 0.99, 500)
    assert (stores.conflicts_opened, stores.conflicts_resolved, stores.conflicts_open) == (1, 1, 2)
    assert (stores.consistency, stores.reconciled_at) == (None, None)
    assert (digest.dead_letters, dict(digest.dlq_depth)) == (3, {"sync_storefront": 4})
    assert digest.top_errors == (
        ("negative quantity: QTYONHAND = #", 2),
        ("location 'QC' is not mapped for this pair", 1),
    )
    assert (digest.level, digest.needs_attention) == ("degraded", True)


def test_a_quiet_day_is_all_well() -> None:
    source = FakeSource(
        reports={PAIR: {"consistency": 1.0, "compared": 10}, OTHER: {"consistency": 1.0, "compared": 10}},
        latest_health={"level": "healthy", "reasons": []},
    )
    digest = build_digest(source, [PAIR, OTHER], until=UNTIL)
    assert not digest.needs_attention
    assert render_text(digest).splitlines()[0] == "syncline daily digest 2026-11-24: all well"


def test_the_text_names_every_figure_and_what_to_run() -> None:
    text = render_text(build_digest(_busy_day(), [PAIR, OTHER], until=UNTIL))
    assert text.splitlines()[:2] == [
        "syncline daily digest 2026-11-24: needs attention",
        "window 2026-11-23 06:00 to 2026-11-24 06:00 UTC",
    ]
    for expected in (
        "health: degraded",
        "  ! sync_storefront: 4 message(s) in the DLQ",
        "  records synced      1200",
        "  conflicts           1 opened, 1 resolved, 2 open",
        "  consistency         99.00% of 500 compared (reconcile 2026-11-24T00:00:00+00:00)",
        "failures: 3 dead-lettered in the window; DLQ now: sync_storefront 4",
        "      2  negative quantity: QTYONHAND = #",
        "next: `syncline status`",
    ):
        assert expected in text, expected


def test_the_html_escapes_what_comes_from_the_data() -> None:
    source = _busy_day()
    source.letters.append(DeadLetterFigure("sync_storefront", UNTIL - timedelta(hours=1), "bad <script>x</script>"))
    page = render_html(build_digest(source, [PAIR, OTHER], until=UNTIL))
    assert "<script>" not in page
    assert "bad &lt;script&gt;x&lt;/script&gt;" in page
    assert "<td>erp-storefront-inventory</td><td>1200</td><td>0</td><td>0</td><td>0</td><td>99.00%</td>" in page


@dataclass
class RecordingChannel:
    name: str = "ops-slack"
    sent: list[Alert] = field(default_factory=list)

    def send(self, alert: Alert) -> Delivery:
        self.sent.append(alert)
        return Delivery(self.name, "ref-1")


def test_any_channel_gets_the_text_and_the_subject() -> None:
    digest = build_digest(_busy_day(), [PAIR, OTHER], until=UNTIL)
    channel = RecordingChannel()
    assert send_digest(digest, channel) == Delivery("ops-slack", "ref-1")
    (alert,) = channel.sent
    assert (alert.title, alert.severity, alert.dedup_key) == (
        "syncline daily digest 2026-11-24: needs attention",
        "warning",
        "digest:2026-11-24",
    )
    assert alert.summary == render_text(digest)


class FakeSes:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"MessageId": "ses-1"}


def test_the_email_carries_text_and_html_parts() -> None:
    digest = build_digest(_busy_day(), [PAIR, OTHER], until=UNTIL)
    ses = FakeSes()
    channel = DigestEmail("digest", "syncline@example.com", ["ops@example.com"], client=ses)
    assert send_digest(digest, channel).reference == "ses-1"
    (request,) = ses.requests
    body = request["Content"]["Simple"]["Body"]
    assert body["Text"]["Data"].startswith(render_text(digest))  # SesEmail adds a source line
    assert body["Html"]["Data"] == render_html(digest)
    assert request["Content"]["Simple"]["Subject"]["Data"] == (
        "[Syncline] WARNING: syncline daily digest 2026-11-24: needs attention"
    )
    assert request["Destination"] == {"ToAddresses": ["ops@example.com"]}


def test_a_plain_alert_through_the_digest_email_has_no_html_part() -> None:
    channel = DigestEmail("digest", "syncline@example.com", ["ops@example.com"], client=FakeSes())
    assert "Html" not in channel.message(Alert(summary="x"))["Content"]["Simple"]["Body"]
    assert "Html" in channel.message(DigestAlert(summary="x", html="<p>x</p>"))["Content"]["Simple"]["Body"]


@pytest.mark.parametrize("level", [None, "unhealthy"])
def test_no_report_or_an_unhealthy_one_needs_attention(level: str | None) -> None:
    source = FakeSource(latest_health={"level": level, "reasons": []} if level else None)
    digest = build_digest(source, [PAIR], until=UNTIL)
    assert digest.needs_attention is (level is not None)
    assert ("no report from the monitor" in render_text(digest)) is (level is None)
