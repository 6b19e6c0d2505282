"""Sage 300 audit stamps: AUDTDATE (numeric yyyymmdd) and AUDTTIME (numeric hhmmsscc).

A stamp is turned into one sortable integer, the record's *source version*:
``yyyymmdd * 10**8 + hhmmsscc``. Sage writes local ERP-server time; ``tz`` says which.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

_TIME_SCALE = 10**8


class StampError(ValueError):
    """An audit stamp that does not name a real date and time."""


def version_of(audit_date: int, audit_time: int) -> int:
    """Sortable version of a stamp; defined for any numbers, valid or not, so ordering never fails."""
    return int(audit_date) * _TIME_SCALE + int(audit_time)


def parse_stamp(audit_date: int, audit_time: int, tz: tzinfo = UTC) -> datetime:
    """The moment a stamp names, or ``StampError`` saying which part is wrong."""
    date_value, time_value = int(audit_date), int(audit_time)
    if not 0 <= time_value < 24_000_000:
        raise StampError(f"AUDTTIME {time_value} is not hhmmsscc")
    hours, rest = divmod(time_value, 1_000_000)
    minutes, rest = divmod(rest, 10_000)
    seconds, centis = divmod(rest, 100)
    try:
        year, rest = divmod(date_value, 10_000)
        month, day = divmod(rest, 100)
        return datetime(year, month, day, hours, minutes, seconds, centis * 10_000, tzinfo=tz)
    except (ValueError, OverflowError) as exc:  # OverflowError: a year beyond C's int
        raise StampError(f"AUDTDATE {date_value} / AUDTTIME {time_value} is not a valid stamp: {exc}") from None


def stamp_of(moment: datetime, tz: tzinfo = UTC) -> tuple[int, int]:
    """The (AUDTDATE, AUDTTIME) pair Sage would write at ``moment``."""
    local = moment.astimezone(tz)
    audit_date = local.year * 10_000 + local.month * 100 + local.day
    audit_time = local.hour * 1_000_000 + local.minute * 10_000 + local.second * 100 + local.microsecond // 10_000
    return audit_date, audit_time


def shift_stamp(audit_date: int, audit_time: int, delta: timedelta, tz: tzinfo = UTC) -> tuple[int, int]:
    """A stamp moved by ``delta`` (used for the poller's lookback window)."""
    return stamp_of(parse_stamp(audit_date, audit_time, tz) + delta, tz)
