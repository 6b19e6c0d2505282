"""Portable SQL building blocks: the same text runs on SQL Server (pymssql) and PostgreSQL (psycopg).

Rules kept here so no query breaks them: ``%s`` parameters only, ANSI ``OFFSET … FETCH``, and keyset
predicates expanded into OR-ed conjunctions (SQL Server has no row-value comparison).
"""

from __future__ import annotations

from collections.abc import Sequence


def keyset_after(columns: Sequence[str]) -> str:
    """Predicate for "strictly after (c1, c2, …) = (%s, %s, …)" in ``ORDER BY c1, c2, …`` order.

    Expanded form: ``c1 >= ? AND (c1 > ? OR (c1 = ? AND c2 > ?) OR …)``; its parameters come from
    :func:`keyset_params`. The redundant leading ``c1 >= ?`` is what lets SQL Server and PostgreSQL
    seek the index and stop after one page, instead of sorting every remaining row for each page.
    """
    terms = []
    for i, column in enumerate(columns):
        equals = [f"{previous} = %s" for previous in columns[:i]]
        terms.append("(" + " AND ".join([*equals, f"{column} > %s"]) + ")")
    return f"({columns[0]} >= %s AND (" + " OR ".join(terms) + "))"


def keyset_params(values: Sequence[object]) -> list[object]:
    """Parameters for :func:`keyset_after` over the same columns, in placeholder order."""
    params: list[object] = [values[0]]
    for i, value in enumerate(values):
        params.extend(values[:i])
        params.append(value)
    return params


def in_list(column: str, count: int) -> str:
    """``column IN (%s, …)`` with ``count`` placeholders (callers chunk below SQL Server's 2,100)."""
    if count < 1:
        raise ValueError("an IN list needs at least one value")
    return f"{column} IN ({', '.join(['%s'] * count)})"


def first_rows(order_by: Sequence[str]) -> str:
    """ANSI paging tail: ORDER BY plus ``OFFSET 0 ROWS FETCH NEXT %s ROWS ONLY``."""
    return f"ORDER BY {', '.join(order_by)} OFFSET 0 ROWS FETCH NEXT %s ROWS ONLY"
