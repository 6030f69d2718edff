"""Reads of many rows on SQLite as one JSON text: the GIL is taken back once a read, not once a row.

CPython's sqlite3 module lets the GIL go around each step of a statement and takes it back for
each row it hands over. While a sync's threads and the event loop run Python, each take-back
waits its turn. During bench P9's sync a page of 50 videos took 1-7.5 ms in its thread for
0.25-0.84 ms of CPU. With one thread running Python beside it, a page of 500 videos and their
folders took 76 ms (1.1 ms idle). Read as one row of one JSON array, built by SQLite in C within one
step, the same page took 2.3 ms (1.4 ms idle): 0.11 and 0.15 ms idle for 50 videos.

JSON cannot carry two kinds of values as they are:

- REAL: SQLite 3.40's JSON writes 15 significant digits, and a timestamp loses its microseconds.
  Each REAL column goes through ``quote()``, whose digits read back as the same double (it checks
  its shortest form with SQLite's own parser, which is off only below about 1e-290), embedded as a
  JSON number by ``json()``.
- BLOB: hex text, made bytes again here.

Row order: the rows are aggregated from a subquery with ORDER BY and LIMIT, which SQLite runs
as a co-routine feeding the aggregate in its order: it flattens no subquery with a LIMIT into an
aggregate query, nor leaves out the ORDER BY of a subquery that has one. A read whose order
matters therefore keeps its LIMIT; a read without one (``LibraryReads`` by ids) must not care
about the order.

PostgreSQL reads plain rows: asyncpg builds them in C, with the GIL held throughout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gql_media.adapters.store.db import Dialect, Params, RawConnection

__all__ = ["Columns", "fetch_rows"]


@dataclass(frozen=True)
class Columns:
    """The columns of a SELECT, and which of them hold REAL or BLOB values (by position)."""

    expressions: tuple[str, ...]
    reals: frozenset[int] = frozenset()
    blobs: frozenset[int] = frozenset()

    @classmethod
    def of(cls, *expressions: str, reals: Sequence[str] = (), blobs: Sequence[str] = ()) -> Columns:
        """Columns by their expressions; ``reals`` and ``blobs`` name some of them."""
        for named in (*reals, *blobs):
            if named not in expressions:
                raise ValueError(f"{named!r} is not one of the columns")
        return cls(
            expressions,
            frozenset(expressions.index(e) for e in reals),
            frozenset(expressions.index(e) for e in blobs),
        )

    @property
    def sql(self) -> str:
        """The column list of a SELECT."""
        return ", ".join(self.expressions)

    def __add__(self, other: Columns) -> Columns:
        width = len(self.expressions)
        return Columns(
            self.expressions + other.expressions,
            self.reals | {i + width for i in other.reals},
            self.blobs | {i + width for i in other.blobs},
        )

    def joined_select(self, rest: str) -> str:
        """SQLite: the rows of ``SELECT <columns> <rest>`` as one row of one JSON array of arrays."""
        inner = ", ".join(f"{expression} AS c{i}" for i, expression in enumerate(self.expressions))
        outer = ", ".join(self._outer(i) for i in range(len(self.expressions)))
        return f"SELECT json_group_array(json_array({outer})) FROM (SELECT {inner} {rest})"

    def _outer(self, i: int) -> str:
        if i in self.reals:
            return f"json(nullif(quote(c{i}), 'NULL'))"
        if i in self.blobs:
            return f"CASE WHEN c{i} IS NULL THEN NULL ELSE hex(c{i}) END"
        return f"c{i}"


async def fetch_rows(
    conn: RawConnection, dialect: Dialect, columns: Columns, rest: str, params: Params = ()
) -> Sequence[Sequence[Any]]:
    """The rows of ``SELECT <columns> <rest>``, in one statement on either engine.

    On SQLite ``rest`` must end in a LIMIT where the order matters (the module's docstring).
    """
    if dialect != "sqlite":
        return await conn.fetch(f"SELECT {columns.sql} {rest}", params)
    found = await conn.fetch_one(columns.joined_select(rest), params)
    rows: list[list[Any]] = json.loads(found[0]) if found is not None else []
    for i in columns.blobs:
        for row in rows:
            if row[i] is not None:
                row[i] = bytes.fromhex(row[i])
    return rows
