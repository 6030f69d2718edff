"""P1's floor: the same index written by SQLite alone, the way the store writes a first index.

After P1's reps, the index the last one made is read back and written again into a fresh
database with the same schema, by plain ``sqlite3`` on one thread: no walk, no event loop, no
Python per row beyond binding. The folders go in first; then the videos in batches of
``BATCH_ROWS``, each its own transaction: ``ROWS_PER_INSERT`` rows to an INSERT, the name-search
table filled from the batch's rows, a commit and a passive checkpoint. The indexes a bulk load
drops (all but ``bulk.KEPT_INDEXES`` and the unique one) and the search table's insert trigger are
left out until the last batch, then made. That is what a first index asks of SQLite at the least.

Its wall time against the same bare walk is the part of P1 that SQLite itself takes, which no
change to the Python around it can take away: when it is near P1's goal, only a schema that writes
less per video (fewer or narrower indexes) can meet it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gql_media.adapters.store.bulk import KEPT_INDEXES
from gql_media.adapters.store.sqlite_backend import SQLITE_CONNECTION_PRAGMAS

__all__ = ["BATCH_ROWS", "ROWS_PER_INSERT", "replay_first_index"]

# As a first index of 100k files writes them (the sync's walk batch) and as the store's inserts go.
BATCH_ROWS = 20_000
ROWS_PER_INSERT = 2048

_VIDEO_COLUMNS = (
    "id", "root_id", "folder_id", "path_bytes", "name", "name_fold", "size", "mtime_ns", "inode", "device",
    "created_at", "status",
)  # fmt: skip
_SEARCH = "videos_search"


def _schema(source: sqlite3.Connection) -> tuple[list[str], list[str], list[str]]:
    """The statements that make the source's tables (the search table too), the indexes kept during a
    load, and those made after it (as bulk.py drops them)."""
    tables: list[str] = []
    kept: list[str] = []
    after: list[str] = []
    for kind, name, table, sql in source.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY rowid"
    ):
        if kind == "table" and (name == _SEARCH or not name.startswith(_SEARCH)):  # not FTS5's own tables
            tables.append(sql)
        elif kind == "index":
            (after if table == "videos" and name not in KEPT_INDEXES else kept).append(sql)
    return tables, kept, after


def _copy_all(source: sqlite3.Connection, target: sqlite3.Connection, table: str) -> None:
    rows = source.execute(f"SELECT * FROM {table}").fetchall()
    if rows:
        target.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _insert_sql(rows: int) -> str:
    one = f"({', '.join('?' * len(_VIDEO_COLUMNS))})"
    return f"INSERT INTO videos ({', '.join(_VIDEO_COLUMNS)}) VALUES {', '.join([one] * rows)}"


def _write_batch(target: sqlite3.Connection, batch: Sequence[tuple[Any, ...]], full_insert: str) -> None:
    target.execute("BEGIN")
    for start in range(0, len(batch), ROWS_PER_INSERT):
        part = batch[start : start + ROWS_PER_INSERT]
        sql = full_insert if len(part) == ROWS_PER_INSERT else _insert_sql(len(part))
        target.execute(sql, [value for row in part for value in row])
    target.execute(
        f"INSERT INTO {_SEARCH} (rowid, name_fold) SELECT id, name_fold FROM videos WHERE id >= ? AND id <= ?"
        " ORDER BY id",
        (batch[0][0], batch[-1][0]),
    )
    target.execute("COMMIT")
    target.execute("PRAGMA wal_checkpoint(PASSIVE)")


def replay_first_index(source_db: Path, target_db: Path) -> float:
    """Write ``source_db``'s folders and videos into a new database at ``target_db`` as described
    above; the wall seconds its writes took (the schema's making and the reads of the source untimed)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target_db}{suffix}").unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_db}?mode=ro", uri=True)
    target = sqlite3.connect(target_db, isolation_level=None)
    try:
        tables, kept, after = _schema(source)
        (page_bytes,) = source.execute("PRAGMA page_size").fetchone()
        target.execute(f"PRAGMA page_size = {int(page_bytes)}")  # (the store's own, before any table)
        target.execute("PRAGMA journal_mode = WAL")
        for pragma in SQLITE_CONNECTION_PRAGMAS:
            target.execute(pragma)
        target.execute("PRAGMA wal_autocheckpoint = 0")  # as during a bulk load: a checkpoint after each batch
        for statement in tables + kept:
            target.execute(statement)
        _copy_all(source, target, "roots")
        folders = source.execute(
            "SELECT * FROM folders ORDER BY path != '', length(path) - length(replace(path, '/', '')), id"
        ).fetchall()
        full_insert = _insert_sql(ROWS_PER_INSERT)
        # Only the writes are timed: the source is read a batch at a time (memory stays flat at 1M) between them.
        started = time.perf_counter()
        target.execute("BEGIN")
        target.executemany(f"INSERT INTO folders VALUES ({', '.join('?' * len(folders[0]))})", folders)
        target.execute("COMMIT")
        written_s = time.perf_counter() - started
        videos = source.execute(f"SELECT {', '.join(_VIDEO_COLUMNS)} FROM videos ORDER BY id")
        while batch := videos.fetchmany(BATCH_ROWS):
            started = time.perf_counter()
            _write_batch(target, batch, full_insert)
            written_s += time.perf_counter() - started
        started = time.perf_counter()
        target.execute("BEGIN")
        for statement in after:
            target.execute(statement)
        target.execute("COMMIT")
        return written_s + time.perf_counter() - started
    finally:
        source.close()
        target.close()
