from datetime import UTC, datetime, timedelta

import pytest

from syncline.erp.sage300 import ICILOC_STREAM
from syncline.erp.sql import in_list, keyset_after, keyset_params
from syncline.stamps import StampError, parse_stamp, shift_stamp, stamp_of, version_of


def test_stamp_round_trips_to_the_centisecond() -> None:
    moment = datetime(2026, 11, 23, 9, 5, 7, 120_000, tzinfo=UTC)
    assert stamp_of(moment) == (20261123, 9050712)
    assert parse_stamp(20261123, 9050712) == moment


@pytest.mark.parametrize(
    ("audit_date", "audit_time", "fragment"),
    [
        (0, 0, "AUDTDATE 0"),
        (20261323, 0, "AUDTDATE 20261323"),
        (20261123, 25000000, "AUDTTIME 25000000"),
        (20261123, -1, "AUDTTIME -1"),
    ],
)
def test_impossible_stamps_are_named_in_the_error(audit_date: int, audit_time: int, fragment: str) -> None:
    with pytest.raises(StampError, match=fragment):
        parse_stamp(audit_date, audit_time)


def test_versions_sort_like_stamps_and_shift_crosses_midnight() -> None:
    assert version_of(20261123, 23595999) < version_of(20261124, 0)
    assert shift_stamp(20261124, 100, -timedelta(minutes=5)) == (20261123, 23550100)


def test_keyset_predicate_is_expanded_without_row_values() -> None:
    # Given the ICILOC order columns, when the predicate is built, then it is an OR of conjunctions.
    predicate = keyset_after(("A", "B", "C"))
    assert predicate == "(A >= %s AND ((A > %s) OR (A = %s AND B > %s) OR (A = %s AND B = %s AND C > %s)))"
    assert keyset_params([1, 2, 3]) == [1, 1, 1, 2, 1, 2, 3]
    assert predicate.count("%s") == len(keyset_params([1, 2, 3]))


def test_change_scan_sql_is_ansi_paged() -> None:
    sql = ICILOC_STREAM.scan_after_sql()
    assert sql.endswith("ORDER BY AUDTDATE, AUDTTIME, ITEMNO, LOCATION OFFSET 0 ROWS FETCH NEXT %s ROWS ONLY")
    assert "LIMIT" not in sql and "TOP" not in sql
    assert in_list("x", 3) == "x IN (%s, %s, %s)"
    with pytest.raises(ValueError, match="at least one"):
        in_list("x", 0)
