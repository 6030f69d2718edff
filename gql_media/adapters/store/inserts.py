"""The rows of new videos as the store inserts them (``IndexStore.insert_videos``).

On PostgreSQL each row's values go to ``executemany``; on SQLite rows go in many to a statement
(``SQLITE_ROWS_PER_INSERT``), their values in one flat parameter list. A first index's videos come
as runs, a folder's at a time and column by column (``VideoRun``): their rows are zipped from the
columns by calls in C, with no Python line per video.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from itertools import chain, repeat
from typing import Any

from gql_media.core.models import NewVideo, VideoRun

__all__ = [
    "INSERT_VIDEO",
    "ROWS_PER_STATEMENT",
    "run_rows",
    "sqlite_inserts",
    "sqlite_run_inserts",
    "to_i64",
    "video_rows",
]

_U64 = 1 << 64
_I63 = 1 << 63


def to_i64(value: int) -> int:
    """st_ino/st_dev are unsigned 64-bit; BIGINT is signed."""
    return value - _U64 if value >= _I63 else value


_INSERT_VIDEO_INTO = (
    "INSERT INTO videos (id, root_id, folder_id, path_bytes, name, name_fold, size, mtime_ns, inode,"
    " device, created_at, status) VALUES "
)
_VIDEO_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'PENDING')"
_VIDEO_PARAMS = _VIDEO_VALUES.count("?")
INSERT_VIDEO = _INSERT_VIDEO_INTO + _VIDEO_VALUES
# On SQLite the name-search index's trigger (migration 0006) costs per *statement*, not per row:
# a statement firing a trigger runs in a savepoint, and FTS5 writes out its pending terms at each.
# So rows go in many to a statement (11 parameters each, 22,528 a statement: under SQLite's 32,766):
# 50k videos into an index of 50k took 4-5 s of CPU one statement a row, about 1.2 s 1,000 rows to a
# statement (plain sqlite3). 2,048 rows to a statement: 50 round trips through the event loop per
# 100k rows instead of 100, and less CPU (plain sqlite3, 100k rows: 1,000 to a statement 0.39/0.41 s,
# 2,500 0.36/0.35 s). A statement is compiled once per connection and size, in time growing with its
# rows (1,000 rows: 4-8 ms, 2,500: 18 ms), so the rows left over are sent in statements of powers of
# two (a few sizes, each compiled once), not of each batch's own remainder (compiled every batch).
SQLITE_ROWS_PER_INSERT = 2048
ROWS_PER_STATEMENT = 2 * SQLITE_ROWS_PER_INSERT


def video_rows(rows: Sequence[NewVideo], now: float) -> list[tuple[Any, ...]]:
    """Each row's values, in ``INSERT_VIDEO``'s order (PostgreSQL's ``executemany``)."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    for video_id, root_id, folder_id, entry in rows:
        path = entry.path
        name = path.rpartition("/")[2]
        inode, device = entry.inode, entry.device
        append((video_id, root_id, folder_id, entry.raw_path, name, name.casefold(), entry.size,
                entry.mtime_ns, inode - _U64 if inode >= _I63 else inode, device - _U64 if device >= _I63 else device,
                now))  # fmt: skip
    return out


@functools.lru_cache(maxsize=16)
def _sqlite_insert_sql(rows: int) -> str:
    return _INSERT_VIDEO_INTO + ", ".join([_VIDEO_VALUES] * rows)


def sqlite_inserts(rows: Sequence[NewVideo], now: float) -> list[tuple[str, list[Any]]]:
    """The statements inserting ``rows`` on SQLite, ``SQLITE_ROWS_PER_INSERT`` rows to a statement
    and the rest in statements of powers of two (see ``SQLITE_ROWS_PER_INSERT``).

    The values of ``video_rows``, straight into each statement's flat parameter list (no tuple
    per video): a first index makes one per file.
    """
    statements: list[tuple[str, list[Any]]] = []
    for start, end in _statement_rows(len(rows)):
        params: list[Any] = []
        extend = params.extend
        for video_id, root_id, folder_id, (_kind, path, raw_path, size, mtime_ns, inode, device) in rows[start:end]:
            name = path[path.rfind("/") + 1 :]
            extend((video_id, root_id, folder_id, raw_path, name, name.casefold(), size, mtime_ns,
                    inode - _U64 if inode >= _I63 else inode,
                    device - _U64 if device >= _I63 else device, now))  # fmt: skip
        statements.append((_sqlite_insert_sql(end - start), params))
    return statements


def _statement_rows(count: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` of each statement's rows: ``SQLITE_ROWS_PER_INSERT`` to a statement, the rest
    in statements of powers of two (see ``SQLITE_ROWS_PER_INSERT``)."""
    start = 0
    while start < count:
        size = min(SQLITE_ROWS_PER_INSERT, 1 << ((count - start).bit_length() - 1))
        yield start, start + size
        start += size


def _run_columns(run: VideoRun, now: float) -> Iterator[tuple[Any, ...]]:
    """A run's rows in ``_INSERT_VIDEO``'s order, zipped from its columns (in C: nothing per video in Python)."""
    count = len(run.names)
    inodes, devices = run.inodes, run.devices
    if inodes and max(inodes) >= _I63:  # (64-bit stamps past the signed range: rare)
        inodes = [to_i64(inode) for inode in inodes]
    if devices and max(devices) >= _I63:
        devices = [to_i64(device) for device in devices]
    return zip(range(run.first_id, run.first_id + count), repeat(run.root_id, count), repeat(run.folder_id, count),
               repeat(None, count), run.names, map(str.casefold, run.names), run.sizes, run.mtimes_ns, inodes, devices,
               repeat(now, count), strict=True)  # fmt: skip


def run_rows(runs: Sequence[VideoRun], now: float) -> list[tuple[Any, ...]]:
    """The runs' rows for ``executemany`` (PostgreSQL)."""
    return list(chain.from_iterable(_run_columns(run, now) for run in runs))


def sqlite_run_inserts(runs: Sequence[VideoRun], now: float) -> list[tuple[str, list[Any]]]:
    """The statements inserting the runs' videos on SQLite, cut as ``sqlite_inserts`` cuts rows."""
    params = list(chain.from_iterable(chain.from_iterable(_run_columns(run, now) for run in runs)))
    return [(_sqlite_insert_sql(end - start), params[start * _VIDEO_PARAMS : end * _VIDEO_PARAMS])
            for start, end in _statement_rows(len(params) // _VIDEO_PARAMS)]  # fmt: skip
