"""SQLite: the secondary indexes of ``videos`` and its search table built after the rows.

Keeping the 7 secondary indexes and the FTS5 trigram search table row by row costs more than
building them once over every row when at least as many rows go in as were there (per 100k
videos: rows 0.6 s, the 7 index builds 0.75 s, the search table 0.10 s). Those whose keys grow
with the new rows' ids stay (``KEPT_INDEXES``: rows go in at their end); the 4 others are dropped.
Two forms:

- within one write transaction (``drop_for_insert``): a big bulk write drops them and makes
  them again before it commits, so they are back (or never gone) whatever happens;
- across the many transactions of a streamed first index (``begin`` ... ``finish``): dropped at
  the first batch, made again after the last. Meanwhile the ``bulk_loads`` table (migration
  0008) holds one row, committed with the drop: the first video id the search table lacks, and
  the statements that make the dropped indexes and triggers again. Each batch adds its videos
  to the search table and moves that id past them (``fill_search``), so the fill overlaps the
  walk. A kill in between leaves the row; the next start calls ``finish_bulk_load`` (the load
  finished from its marker).

While a load is open the search table stays right for the videos it holds: the delete and
rename triggers are kept for the ids below the marker's, as it is when they fire (the others
were never added to it: FTS5 must not be told to delete what it never held), and a name search
matches the videos from the marker's id on by their names (``reads.py``). ``KEPT_INDEXES`` stay,
among them the unique (folder_id, name) one, which guards the rows going in. Queries stay right; those the dropped
indexes served get slower.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from gql_media.adapters.store.db import Db, RawConnection

_MARKER_ID = 1
_INSERT_TRIGGER = "videos_search_insert"
# The search table's triggers that a load keeps for the videos the table already holds.
_GUARDED_TRIGGERS = ("videos_search_delete", "videos_search_update")
_TRIGGER_BODY = " ON videos BEGIN"
_FILL_FROM = "INSERT INTO videos_search (rowid, name_fold) SELECT id, name_fold FROM videos WHERE id >= ?"
_FILL_SEARCH = f"{_FILL_FROM} ORDER BY id"
_REBUILD_SEARCH = "INSERT INTO videos_search (videos_search) VALUES ('rebuild')"
# The guarded triggers compare with the marker's id as it is when they fire (``fill_search`` moves it).
_MARKER_SQL = f"(SELECT first_video_id FROM bulk_loads WHERE id = {_MARKER_ID})"


async def _secondary_indexes(conn: RawConnection) -> list[tuple[str, str]]:
    """Every index on ``videos`` written by a statement (those on expressions too), as written."""
    rows = await conn.fetch(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'videos' AND sql IS NOT NULL"
        " ORDER BY name"
    )
    return [(str(name), str(sql)) for name, sql in rows]


async def _triggers(conn: RawConnection) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'videos'"
        " AND name LIKE 'videos_search_%'"
    )
    return {str(name): str(sql) for name, sql in rows}


# The indexes a load keeps: their keys grow with the ids of new rows (which a first index gives in
# path order, a folder's videos by name), so each row goes in at the right end of the index, where
# a build after the load would sort (100k new videos, plain sqlite3, CPU: 7 builds 0.67-0.89 s
# after 0.26-0.44 s of rows; 4 builds 0.48-0.56 s after 0.41-0.59 s). Their cost moves from the
# builds, which nothing overlaps, into the batches, whose writes overlap the walk.
# (duration_s is NULL until probed: the duration key is then (-1.0, id).)
KEPT_INDEXES = frozenset({"ix_videos_duration_key", "ix_videos_folder_name"})


async def _drop_indexes(conn: RawConnection) -> list[str]:
    """Drop the secondary indexes of ``videos`` but ``KEPT_INDEXES``; the statements that make them again."""
    indexes = [(name, sql) for name, sql in await _secondary_indexes(conn) if name not in KEPT_INDEXES]
    for name, _sql in indexes:
        await conn.execute(f'DROP INDEX "{name}"')
    return [sql for _name, sql in indexes]


async def drop_for_insert(conn: RawConnection, inserting: int) -> list[str]:
    """Within one transaction: when ``videos`` holds no more rows than ``inserting``, drop its
    secondary indexes and the search table's insert trigger; returns the statements that make
    them again (the search table rebuilt whole), to run before the transaction commits.

    50k videos into an index of 50k: 2.6 s of CPU kept row by row, 1.9 s dropped and built again.
    """
    # Counted no further than the rows going in: the answer costs what the write does at most.
    held = await conn.fetch_one("SELECT COUNT(*) FROM (SELECT 1 FROM videos LIMIT ?) AS held", (inserting + 1,))
    if held is None or int(held[0]) > inserting or await marker(conn) is not None:
        return []
    statements = await _drop_indexes(conn)
    trigger = (await _triggers(conn)).get(_INSERT_TRIGGER)
    if trigger is not None:
        await conn.execute(f"DROP TRIGGER {_INSERT_TRIGGER}")
        statements += [_REBUILD_SEARCH, trigger]
    return statements


async def marker(conn: RawConnection) -> int | None:
    """The first video id of the open bulk load (the search table lacks it and those after); None: none open."""
    row = await conn.fetch_one("SELECT first_video_id FROM bulk_loads WHERE id = ?", (_MARKER_ID,))
    return None if row is None else int(row[0])


async def begin(conn: RawConnection, first_video_id: int) -> bool:
    """Open a bulk load in the caller's transaction: drop the indexes (but ``KEPT_INDEXES``), keep the
    search table's delete and rename triggers for the ids below the marker's only, and write the
    marker (``first_video_id``); whether ``fill_search`` may move it on (the triggers read it).

    Every video inserted from here on must have an id of at least ``first_video_id`` (ids are
    handed out in increasing order, and the rows of this transaction are given).
    """
    indexes = await _drop_indexes(conn)
    triggers = await _triggers(conn)
    full_rebuild = False
    for name, sql in sorted(triggers.items()):
        await conn.execute(f"DROP TRIGGER {name}")
        if name in _GUARDED_TRIGGERS:
            guarded = sql.replace(_TRIGGER_BODY, f" ON videos WHEN old.id < {_MARKER_SQL} BEGIN", 1)
            if guarded == sql:  # not the trigger migration 0006 made: the search table is built whole
                full_rebuild = True
            else:
                await conn.execute(guarded)
    restore = {"indexes": indexes, "triggers": sorted(triggers.items()), "full_rebuild": full_rebuild}
    await conn.execute(
        "INSERT INTO bulk_loads (id, first_video_id, restore, started_at) VALUES (?, ?, ?, ?)",
        (_MARKER_ID, first_video_id, json.dumps(restore), time.time()),
    )
    return bool(triggers) and not full_rebuild


async def fill_search(conn: RawConnection, next_video_id: int) -> None:
    """In a batch's transaction, after its rows: add the videos from the marker's id up to
    ``next_video_id`` to the search table, and move the marker there (for a load ``begin`` said may).

    Each batch's fill overlaps the walk of the next ones, instead of one fill after the last batch
    that nothing overlaps (0.10 s per 100k videos); the search table then lacks nothing committed.
    """
    await conn.execute(f"{_FILL_FROM} AND id < ? ORDER BY id", (await marker(conn), next_video_id))
    await conn.execute("UPDATE bulk_loads SET first_video_id = ? WHERE id = ?", (next_video_id, _MARKER_ID))


async def finish(conn: RawConnection) -> bool:
    """Close the open bulk load in the caller's transaction (indexes made, the search table filled,
    its triggers as they were, the marker gone); whether one was open."""
    row = await conn.fetch_one("SELECT first_video_id, restore FROM bulk_loads WHERE id = ?", (_MARKER_ID,))
    if row is None:
        return False
    first_video_id = int(row[0])
    restore: dict[str, Any] = json.loads(str(row[1]))
    present = {name for name, _sql in await _secondary_indexes(conn)}
    builds = [str(sql) for sql in restore["indexes"] if _index_name(str(sql)) not in present]
    triggers: list[tuple[str, str]] = [(str(name), str(sql)) for name, sql in restore["triggers"]]
    for name, _sql in triggers:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    if triggers:  # the search table exists
        builds.append(_REBUILD_SEARCH if restore["full_rebuild"] else _FILL_SEARCH)
    await build(conn, builds, (first_video_id,))
    for _name, sql in triggers:
        await conn.execute(sql)
    await conn.execute("DELETE FROM bulk_loads WHERE id = ?", (_MARKER_ID,))
    return True


# Helper threads SQLite's sorter may use while building indexes (PRAGMA threads; 0 by default).
_SORT_THREADS = max(0, min(2, (os.cpu_count() or 1) - 1))


async def build(conn: RawConnection, statements: list[str], params: tuple[Any, ...] = ()) -> None:
    """Run index builds (and the search table's fill, which alone takes ``params``) in the caller's
    transaction, their sorts on helper threads.

    The 7 index builds of a million videos (plain sqlite3, on a copy of a scanned index, 2 loaded
    cores, reps alternating): 11.7 and 8.7 s of wall on one thread, 9.4 and 6.2 s with 2 helper
    threads, for the same CPU (6.5/5.0 s and 5.3/4.8 s) and the same peak RSS.
    """
    await conn.execute(f"PRAGMA threads = {_SORT_THREADS}")
    try:
        for statement in statements:
            await conn.execute(statement, params if statement == _FILL_SEARCH else ())
    finally:
        await conn.execute("PRAGMA threads = 0")


def _index_name(sql: str) -> str:
    """The name in ``CREATE [UNIQUE] INDEX name ON ...`` as SQLite keeps it (possibly quoted)."""
    before_on = sql.split(" ON ", 1)[0].split()
    return before_on[-1].strip('"')


async def finish_bulk_load(db: Db) -> bool:
    """At start-up: finish a bulk load a kill interrupted (SQLite; PostgreSQL never opens one).

    Whether one was finished. One write transaction: a sync's batches land before or after it.
    """
    if db.dialect != "sqlite":
        return False
    async with db.reading() as conn:
        if await marker(conn) is None:
            return False
    async with db.writing() as conn:
        return await finish(conn)
