"""The index as the sync engine reads and writes it (the ``LibraryStore`` port).

One module though it passes 400 lines: it is that one port, the sync's only door to the index,
and its reads and writes share the row codecs (``to_i64``, with the inserted rows in ``inserts.py``)
and the write transactions' batching; the rest of the store (GraphQL reads, totals, roots, job
requests) lives beside it.
"""

from __future__ import annotations

import array
import asyncio
import binascii
import logging
import operator
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, groupby
from typing import Any

from gql_media.adapters.store import bulk as bulk_load
from gql_media.adapters.store.db import Db, RawConnection
from gql_media.adapters.store.inserts import (
    INSERT_VIDEO,
    ROWS_PER_STATEMENT,
    run_rows,
    sqlite_inserts,
    sqlite_run_inserts,
    to_i64,
    video_rows,
)
from gql_media.adapters.store.tables import VIDEOS_IN_FOLDERS, video_path
from gql_media.adapters.store.totals import TotalsDelta, VideoPlace
from gql_media.core.models import (
    EntryKind,
    IndexRow,
    Move,
    NewVideo,
    Root,
    Scope,
    SyncPlan,
    Update,
    VideoRun,
    name_of,
    run_videos,
)
from gql_media.core.scanner import FolderStamps

logger = logging.getLogger(__name__)

_ANALYZE_FIRST_AT = 10_000
_U64 = 1 << 64
_I63 = 1 << 63

# Moved rows step aside to a path (a folder) or a name (a video) no real one can have, so that
# swaps and chains of renames never trip the unique keys on place: (root_id, path) of folders,
# (folder_id, name) of videos.
_ASIDE_PREFIX = "/moving/"


def from_i64(value: int) -> int:
    return value + _U64 if value < 0 else value


def path_range(path: str) -> tuple[str, str]:
    """Bounds of the paths strictly under ``path`` in byte order ('0' sorts right after '/')."""
    return path + "/", path + "0"


class IndexStore:
    """Implements ``ports.LibraryStore`` on a ``Db``."""

    def __init__(self, db: Db) -> None:
        self.db = db
        # PostgreSQL plans by its statistics, and autovacuum gathers them a minute or more after a
        # bulk load: until then a fresh index of a million rows is planned as if it held a few
        # hundred (a depth-first page sorted the whole library). Each time the videos this store
        # inserted double, it gathers them itself (a sample: ~0.1-0.3 s at any size).
        self._inserted = 0
        self._analyze_at = _ANALYZE_FIRST_AT
        # The job that may open a bulk load across its write transactions (``bulk``), while it runs;
        # the last checkpoint of one that ended, while it runs (``end_bulk_load``).
        self._bulk: _BulkJob | None = None
        self._after_bulk: asyncio.Future[None] | None = None

    async def ensure_roots(self, paths: Sequence[str]) -> list[Root]:
        roots: list[Root] = []
        async with self.db.writing() as conn:
            for path in paths:
                row = await conn.fetch_one(
                    "SELECT r.id, f.id FROM roots r JOIN folders f ON f.root_id = r.id AND f.path = ''"
                    " WHERE r.path = ?",
                    (path,),
                )
                if row is None:
                    root_id = await take_ids(conn, "roots", 1)
                    folder_id = await take_ids(conn, "folders", 1)
                    now = time.time()
                    await conn.execute(
                        "INSERT INTO roots (id, path, created_at) VALUES (?, ?, ?)", (root_id, path, now)
                    )
                    await conn.execute(
                        "INSERT INTO folders (id, root_id, parent_id, path, name, created_at)"
                        " VALUES (?, ?, NULL, '', ?, ?)",
                        (folder_id, root_id, os.path.basename(path.rstrip("/")) or path, now),
                    )
                    row = (root_id, folder_id)
                roots.append(Root(id=int(row[0]), path=path, folder_id=int(row[1])))
        return roots

    async def list_roots(self) -> list[Root]:
        async with self.db.reading() as conn:
            rows = await conn.fetch(
                "SELECT r.id, r.path, f.id FROM roots r JOIN folders f ON f.root_id = r.id AND f.path = ''"
                " ORDER BY r.id"
            )
        return [Root(id=int(r[0]), path=str(r[1]), folder_id=int(r[2])) for r in rows]

    async def read_scope_rows(self, scope: Scope) -> tuple[list[IndexRow], list[IndexRow]]:
        """The folders and videos a scope covers, as tuples ``(id, root_id, path, size, mtime_ns, inode, device)``.

        The sync reads whole libraries through here: no object per row, and no per-row work
        on the event loop beyond fixing the rare negative (over 2**63) inode or device.
        """
        (folder_sql, folder_params), (video_sql, video_params) = _scope_queries(scope)
        async with self.db.reading() as conn:
            folders = await conn.fetch(folder_sql, folder_params)
            videos = await conn.fetch(video_sql, video_params)
        return _unsigned(folders), _unsigned(videos)

    async def read_scope_folders(self, scope: Scope) -> list[IndexRow]:
        """The folders a scope covers, as ``read_scope_rows`` gives them (its videos are read by folder)."""
        (folder_sql, params), _videos = _scope_queries(scope)
        async with self.db.reading() as conn:
            return _unsigned(await conn.fetch(folder_sql, params))

    async def read_folder_videos(self, folder_ids: Sequence[int]) -> list[IndexRow]:
        """The videos directly in these folders, as ``read_scope_rows`` gives them (an index search each)."""
        async with self.db.reading() as conn:
            if self.db.dialect == "sqlite":
                return await _sqlite_videos_in(conn, folder_ids)  # unsigned as read
            return _unsigned(await _fetch_by_ids(conn, _VIDEO_COLUMNS, "v.folder_id", folder_ids))

    async def read_folder_stamps(self, folder_ids: Sequence[int]) -> list[FolderStamps]:
        """The videos directly in these folders as a resync compares them: a ``FolderStamps`` per folder.

        Names in code point order (on SQLite the order of ``ix_videos_folder_name``: a folder read in
        another order is only compared file by file), no row per video (``_STAMPS_BY_FOLDER``).
        """
        async with self.db.reading() as conn:
            return await _stamps_in(conn, self.db.dialect, folder_ids)

    async def read_video_ids(self, root_id: int, paths: Sequence[str]) -> dict[str, int]:
        """The ids of the videos at these paths of a root (those indexed), by path.

        A statement per thousand paths: their folders' ids by the folders' (root_id, path) key, then
        the videos by their key on place, (folder_id, name); a video of one of those folders whose
        name another path of the chunk has, but not at that place, is read and left out here.
        """
        found: dict[str, int] = {}
        async with self.db.reading() as conn:
            for start in range(0, len(paths), _IDS_PER_STATEMENT):
                chunk = paths[start : start + _IDS_PER_STATEMENT]
                places = {path.rpartition("/")[::2]: path for path in chunk}
                parents = sorted({parent for parent, _name in places})
                names = sorted({name for _parent, name in places})
                rows = await conn.fetch(
                    f"SELECT vf.path, v.name, v.id FROM folders vf JOIN videos v ON v.folder_id = vf.id"
                    f" WHERE vf.root_id = ? AND vf.path IN ({', '.join('?' * len(parents))})"
                    f" AND v.name IN ({', '.join('?' * len(names))})",
                    (root_id, *parents, *names),
                )
                for parent, name, video_id in rows:
                    path = places.get((str(parent), str(name)))
                    if path is not None:
                        found[path] = int(video_id)
        return found

    async def reserve_ids(self, folders: int, videos: int) -> tuple[int, int]:
        async with self.db.writing() as conn:
            return await take_ids(conn, "folders", folders), await take_ids(conn, "videos", videos)

    async def return_ids(self, folder: int, folder_end: int, video: int, video_end: int) -> None:
        if folder >= folder_end and video >= video_end:
            return
        async with self.db.writing() as conn:
            ranges = (("folders", folder, folder_end), ("videos", video, video_end))
            await conn.executemany(
                "UPDATE id_counters SET next_id = ? WHERE name = ? AND next_id = ?",
                [(first, name, end) for name, first, end in ranges if first < end],
            )

    async def apply_structure(self, plan: SyncPlan) -> None:
        now = time.time()
        async with self.db.writing() as conn:
            removed_videos = [e.id for e in plan.removed if e.kind is EntryKind.VIDEO]
            removed_folders = [(e.id,) for e in plan.removed if e.kind is EntryKind.FOLDER]
            moved_videos = [m for m in plan.moves if m.kind is EntryKind.VIDEO]
            # Folder totals: every video that leaves its place (removed, moved, or taken along by a
            # removed folder) is counted out where it was, before any path changes; moved ones are
            # counted in at their new place once the folders are where they go.
            leaving = await _videos_leaving(conn, plan)
            totals = TotalsDelta()
            totals.add(leaving.values(), sign=-1)
            await totals.apply(conn)
            # A video taken along by its moved folder keeps its folder (the same id) and its name: its
            # row is its place already, so it neither steps aside nor changes but for its stamps (a
            # folder of 20k videos moved: two updates of each row and of its name's index entries,
            # now a look-up of each by id).
            staying = [m for m in moved_videos if _stays(m, leaving.get(m.id))]
            stays = {m.id for m in staying}
            # A thousand to a statement: on SQLite the search index's delete trigger costs per statement.
            for start in range(0, len(removed_videos), _IDS_PER_STATEMENT):
                chunk = removed_videos[start : start + _IDS_PER_STATEMENT]
                await conn.execute(f"DELETE FROM videos WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            for column, kind in (("folders SET path", EntryKind.FOLDER), ("videos SET name", EntryKind.VIDEO)):
                await conn.executemany(
                    f"UPDATE {column} = ? WHERE id = ?",
                    [(f"{_ASIDE_PREFIX}{m.id}", m.id) for m in plan.moves if m.kind is kind and m.id not in stays],
                )
            await conn.executemany(
                "INSERT INTO folders (id, root_id, parent_id, path, path_bytes, name, mtime_ns, inode, device,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (f.id, f.root_id, f.parent_id, f.entry.path, f.entry.raw_path, name_of(f.entry.path),
                     f.entry.mtime_ns, to_i64(f.entry.inode), to_i64(f.entry.device), now)
                    for f in sorted(plan.new_folders, key=lambda f: f.entry.path.count("/"))
                ],
            )  # fmt: skip
            await conn.executemany(
                "UPDATE folders SET root_id = ?, parent_id = ?, path = ?, path_bytes = ?, name = ?, mtime_ns = ?,"
                " inode = ?, device = ? WHERE id = ?",
                [
                    (m.root_id, m.parent_id, m.entry.path, m.entry.raw_path, name_of(m.entry.path), m.entry.mtime_ns,
                     to_i64(m.entry.inode), to_i64(m.entry.device), m.id)
                    for m in plan.moves if m.kind is EntryKind.FOLDER
                ],
            )  # fmt: skip
            # Only renamed videos set their case-folded name: on SQLite setting name_fold fires the search
            # index's update trigger, a statement (and a write of the search index) per video; the videos
            # of a moved folder keep their names (set back from aside).
            moved_videos = [m for m in moved_videos if m.id not in stays]
            renamed = [m for m in moved_videos if name_of(m.entry.path) != name_of(m.old_path)]
            await conn.executemany(
                "UPDATE videos SET root_id = ?, folder_id = ?, path_bytes = ?, name = ?, name_fold = ?,"
                " size = ?, mtime_ns = ?, inode = ?, device = ? WHERE id = ?",
                [
                    (m.root_id, m.parent_id, m.entry.raw_path, name_of(m.entry.path),
                     name_of(m.entry.path).casefold(), m.entry.size, m.entry.mtime_ns, to_i64(m.entry.inode),
                     to_i64(m.entry.device), m.id)
                    for m in renamed
                ],
            )  # fmt: skip
            await conn.executemany(
                "UPDATE videos SET root_id = ?, folder_id = ?, path_bytes = ?, name = ?, size = ?, mtime_ns = ?,"
                " inode = ?, device = ? WHERE id = ?",
                [
                    (m.root_id, m.parent_id, m.entry.raw_path, name_of(m.entry.path), m.entry.size,
                     m.entry.mtime_ns, to_i64(m.entry.inode), to_i64(m.entry.device), m.id)
                    for m in moved_videos if name_of(m.entry.path) == name_of(m.old_path)
                ],
            )  # fmt: skip
            # (Compared first: an unchanged row, most of them, is not written.)
            same = "IS" if self.db.dialect == "sqlite" else "IS NOT DISTINCT FROM"
            await conn.executemany(
                "UPDATE videos SET path_bytes = ?, size = ?, mtime_ns = ?, inode = ?, device = ? WHERE id = ?"
                f" AND NOT (path_bytes {same} ? AND size = ? AND mtime_ns = ? AND inode = ? AND device = ?)",
                [
                    (*stamps, m.id, *stamps)
                    for m in staying
                    for stamps in [(m.entry.raw_path, m.entry.size, m.entry.mtime_ns, to_i64(m.entry.inode),
                                    to_i64(m.entry.device))]
                ],
            )  # fmt: skip
            totals.add((m.root_id, m.parent_id, m.entry.path, m.entry.size) for m in (*moved_videos, *staying))
            await totals.apply(conn)
            # Folders go last: ON DELETE CASCADE must not take along entries that moved out of them.
            await conn.executemany("DELETE FROM folders WHERE id = ?", removed_folders)

    async def insert_videos(
        self, rows: Sequence[NewVideo], *, bulk: bool = False, runs: Sequence[VideoRun] = ()
    ) -> None:
        now = time.time()
        totals = TotalsDelta()
        sqlite = self.db.dialect == "sqlite"
        chunks = [rows[start : start + ROWS_PER_STATEMENT] for start in range(0, len(rows), ROWS_PER_STATEMENT)]
        # The runs' statements are made in one go, by calls in C (no Python line per video), meanwhile.
        make_runs = sqlite_run_inserts if sqlite else run_rows
        made_runs = asyncio.ensure_future(asyncio.to_thread(make_runs, runs, now)) if runs else None
        span = _IdSpan(rows, runs)
        # The rows (name, case-folded name, signed inode and device) are made in a thread, a
        # statement's worth at a time: nothing per file on the event loop, memory bounded. Each
        # chunk's are made while the chunk before is written (the driver's thread lets the GIL go
        # while SQLite runs), and the folder totals are counted meanwhile too: the writer waits for
        # neither (it did, 70-90 ms of a first index of 100k files, in 25 waits).
        make = sqlite_inserts if sqlite else video_rows
        counted = asyncio.ensure_future(asyncio.to_thread(_count_new, totals, rows, runs))
        made = _Ahead(make, chunks, now)
        try:
            async with self.db.writing() as conn:
                rebuilt: list[str] = []
                if bulk and span.count and sqlite:
                    if self._bulk is not None:
                        await self._bulk.before_insert(conn, span)
                    elif span.count >= _BULK_MIN_ROWS:
                        rebuilt = await bulk_load.drop_for_insert(conn, span.count)
                for _chunk in chunks:
                    await _write_rows(conn, sqlite, await made.next())
                if made_runs is not None:
                    await _write_rows(conn, sqlite, await made_runs)
                await counted
                await totals.apply(conn)
                if rebuilt:
                    await bulk_load.build(conn, rebuilt)
                if bulk and span.count and self._bulk is not None and sqlite:
                    await self._bulk.after_insert(conn, span)
        finally:  # (an error: what runs in the threads is waited for, its own error dropped)
            await made.close()
            threads = [counted] if made_runs is None else [counted, made_runs]
            await asyncio.wait(threads)
            for future in threads:
                if not future.cancelled():
                    future.exception()
        if self._bulk is not None and self._bulk.opened:
            self._bulk.checkpoint(self.db)
        self._inserted += span.count
        if self.db.dialect == "postgresql" and self._inserted >= self._analyze_at:
            self._analyze_at = 2 * self._inserted
            async with self.db.writing() as conn:
                await conn.execute("ANALYZE folders")
                await conn.execute("ANALYZE videos")

    async def has_empty_root(self) -> bool:
        """Whether a root's folder holds no video (by the folder totals): a first index of it is to come."""
        async with self.db.reading() as conn:
            row = await conn.fetch_one("SELECT 1 FROM folders WHERE parent_id IS NULL AND tree_video_count = 0 LIMIT 1")
        return row is not None

    async def begin_bulk_load(self) -> None:
        """A job that may add a lot starts (a first index): on SQLite, once its new videos outnumber
        those the index held (and ``_BULK_MIN_ROWS``), its bulk writes open a bulk load (``bulk``)
        that ``end_bulk_load`` closes."""
        if self.db.dialect != "sqlite":
            return
        await self._after_last_load()
        async with self.db.reading() as conn:  # the folder totals: a row per root, not a count of videos
            row = await conn.fetch_one("SELECT COALESCE(SUM(tree_video_count), 0) FROM folders WHERE parent_id IS NULL")
        self._bulk = _BulkJob(held=int(row[0]) if row else 0)

    async def end_bulk_load(self) -> None:
        """The job's writes are done: the indexes and the search table are made, if its writes dropped them.

        The pages the builds wrote are copied into the database by a reader, as each batch's were,
        beside what comes next; the writer gets its checkpoints back once that copy is done. (Given
        back in the builds' own transaction, its commit made that copy: 25 ms of a first index of
        100k files, after every write of it.) ``finish_checkpoints`` waits for that last copy.
        """
        job, self._bulk = self._bulk, None
        if job is not None and job.opened:
            await job.checkpointed()
            async with self.db.writing() as conn:
                await bulk_load.finish(conn)
            self._after_bulk = asyncio.ensure_future(self._give_checkpoints_back(job))

    async def _give_checkpoints_back(self, job: _BulkJob) -> None:
        job.checkpoint(self.db)
        await job.checkpointed()
        async with self.db.writing() as conn:
            await conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")

    async def finish_checkpoints(self) -> None:
        """Wait for the last checkpoint of a bulk load that ended (``end_bulk_load``), after which the
        writer checkpoints again; before the database closes."""
        await self._after_last_load()

    async def _after_last_load(self) -> None:
        after, self._after_bulk = self._after_bulk, None
        if after is not None:
            await asyncio.wait([after])
            if not after.cancelled() and after.exception() is not None:
                logger.warning("the last checkpoint of a first index failed: %s", after.exception())

    async def update_entries(self, rows: Sequence[Update]) -> None:
        async with self.db.writing() as conn:
            await _resize_totals(conn, {u.id: u.entry.size for u in rows if u.kind is EntryKind.VIDEO})
            await conn.executemany(
                "UPDATE folders SET mtime_ns = ?, inode = ?, device = ? WHERE id = ?",
                [
                    (u.entry.mtime_ns, to_i64(u.entry.inode), to_i64(u.entry.device), u.id)
                    for u in rows
                    if u.kind is EntryKind.FOLDER
                ],
            )
            # A changed file is probed again: back to PENDING, its old error forgotten.
            await conn.executemany(
                "UPDATE videos SET size = ?, mtime_ns = ?, inode = ?, device = ?, status = 'PENDING', error = NULL"
                " WHERE id = ?",
                [
                    (u.entry.size, u.entry.mtime_ns, to_i64(u.entry.inode), to_i64(u.entry.device), u.id)
                    for u in rows
                    if u.kind is EntryKind.VIDEO
                ],
            )

    async def count_entries(self) -> tuple[int, int]:
        """How many folders and videos the index holds."""
        async with self.db.reading() as conn:
            folders = await conn.fetch_one("SELECT COUNT(*) FROM folders")
            videos = await conn.fetch_one("SELECT COUNT(*) FROM videos")
        return int(folders[0]) if folders else 0, int(videos[0]) if videos else 0


_IDS_PER_STATEMENT = 1000


def _in_or_under(select: str) -> str:
    """``select`` (from ``VIDEOS_IN_FOLDERS``) of the videos in a folder or under it; its parameters:
    ``_in_or_under_params``. Two ranges of the folders' (root_id, path) key, then each folder's videos:
    written as an OR, SQLite read every folder of the root."""
    in_folder = "vf.root_id = ? AND vf.path = ?"
    under = "vf.root_id = ? AND vf.path >= ? AND vf.path < ?"
    return f"{select} WHERE {in_folder} UNION ALL {select} WHERE {under}"


def _in_or_under_params(root_id: int, path: str) -> tuple[Any, ...]:
    low, high = path_range(path)
    return root_id, path, root_id, low, high


_PLACE_COLUMNS = f"SELECT v.id, v.root_id, v.folder_id, {video_path()}, v.size FROM {VIDEOS_IN_FOLDERS}"


async def _fetch_by_ids(conn: RawConnection, select: str, column: str, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """``select`` of the rows whose ``column`` is one of ``ids``, a statement per thousand ids."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start : start + _IDS_PER_STATEMENT]
        rows += await conn.fetch(f"{select} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk)
    return rows


# A streamed sync reads its videos beside the walk's thread. Fetched as rows, SQLite's driver
# takes and gives back the GIL at every row, and the walk, which gives it up at every stat, then
# waits for it at each of the reader's: a hand-over per row between two threads. So SQLite builds
# a statement's rows as two texts, without the GIL: the paths (NUL cannot be in one) and the six
# numbers of each row as 64-bit hex, turned into ints by C calls (unhexlify, array, tolist) and
# into rows by zip, with no Python code per row. (As one JSON text, json.loads parsed an int
# through a bytes object of its own: 0.8-1.1 us of the GIL per row against 0.45 us now.) %016x
# writes a negative number's 64 bits, so inode and device come out unsigned as they are meant
# (see ``to_i64``); only a negative mtime (before 1970) must be turned back.
_VIDEO_HEX = (
    f"SELECT group_concat({video_path()}, char(0)), group_concat(printf('%016x%016x%016x%016x%016x%016x',"
    f" v.id, v.root_id, v.size, v.mtime_ns, v.inode, v.device), '') FROM {VIDEOS_IN_FOLDERS}"
)
_HEX_FIELDS = 6


async def _sqlite_videos_in(conn: RawConnection, folder_ids: Sequence[int]) -> list[IndexRow]:
    """SQLite: the videos in ``folder_ids`` as ``_VIDEO_COLUMNS`` rows (unsigned), two texts per thousand folders."""
    rows: list[IndexRow] = []
    for start in range(0, len(folder_ids), _IDS_PER_STATEMENT):
        chunk = folder_ids[start : start + _IDS_PER_STATEMENT]
        found = await conn.fetch_one(f"{_VIDEO_HEX} WHERE v.folder_id IN ({', '.join('?' * len(chunk))})", chunk)
        if found is not None and found[0] is not None:
            rows += _hex_rows(str(found[0]), str(found[1]))
    return rows


def _hex_rows(paths: str, numbers: str) -> Iterator[IndexRow]:
    """The rows of ``_VIDEO_HEX``'s two texts (in C, but for a negative mtime)."""
    values = array.array("Q", binascii.unhexlify(numbers))
    if sys.byteorder == "little":
        values.byteswap()  # the hex is big-endian
    v = values.tolist()
    mtimes = v[3::_HEX_FIELDS]
    if mtimes and max(mtimes) >= _I63:
        mtimes = [m - _U64 if m >= _I63 else m for m in mtimes]
    return zip(v[0::_HEX_FIELDS], v[1::_HEX_FIELDS], paths.split("\0"), v[2::_HEX_FIELDS], mtimes,
               v[4::_HEX_FIELDS], v[5::_HEX_FIELDS], strict=True)  # fmt: skip


# A resync reads each folder's videos as one row of two texts (``FolderStamps``): their names
# ("/" is in none) and their stamps as 64-bit hex (four per video), both in code point order of
# the names, as Python sorts them (SQLite: the order of ix_videos_folder_name (folder_id, name),
# which the search by folder_id follows; PostgreSQL: sorted by the bytes of UTF-8, collation
# "C"). The walk compares the stamps as text; ints are made only for a folder that differs. Ids are
# read for the rows that differ (``read_video_ids``). (Both write a negative number's 64 bits.)
_STAMPS_BY_FOLDER = {
    "sqlite": "SELECT folder_id, group_concat(name, '/') AS names,"
    " group_concat(printf('%016x%016x%016x%016x', size, mtime_ns, inode, device), '') AS stamps FROM videos",
    "postgresql": "SELECT folder_id, string_agg(name, '/' ORDER BY name COLLATE \"C\"),"
    " string_agg(lpad(to_hex(size), 16, '0') || lpad(to_hex(mtime_ns), 16, '0') || lpad(to_hex(inode), 16, '0')"
    " || lpad(to_hex(device), 16, '0'), '' ORDER BY name COLLATE \"C\") FROM videos",
}


# On SQLite the folders of a statement come as one row of three texts (their ids, their names and
# their stamps, a folder's apart from the next by "," or NUL): the driver hands the GIL back and
# forth with the walk's thread at every row it fetches, and a row per folder cost the resync of
# 100k unchanged files (5,000 folders) 0.05-0.1 s of CPU in those hand-overs (perf: the context
# switches of the walk's thread and of the driver's) and as much of its wall time.
_SQLITE_JOINED = "SELECT group_concat(folder_id, ','), group_concat(names, char(0)), group_concat(stamps, ',') FROM ("


async def _stamps_in(conn: RawConnection, dialect: str, folder_ids: Sequence[int]) -> list[FolderStamps]:
    """``read_folder_stamps``: a statement per thousand folders."""
    folders: list[FolderStamps] = []
    select = _STAMPS_BY_FOLDER[dialect]
    for start in range(0, len(folder_ids), _IDS_PER_STATEMENT):
        chunk = folder_ids[start : start + _IDS_PER_STATEMENT]
        where = f" WHERE folder_id IN ({', '.join('?' * len(chunk))}) GROUP BY folder_id"
        if dialect != "sqlite":
            folders += await conn.fetch(select + where, chunk)
            continue
        row = await conn.fetch_one(f"{_SQLITE_JOINED}{select}{where})", chunk)
        if row is not None and row[0] is not None:
            folders += zip(map(int, str(row[0]).split(",")), str(row[1]).split("\0"), str(row[2]).split(","),
                           strict=True)  # fmt: skip
    return folders


async def _videos_by_ids(conn: RawConnection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    return await _fetch_by_ids(conn, _PLACE_COLUMNS, "v.id", ids)


async def _videos_leaving(conn: RawConnection, plan: SyncPlan) -> dict[int, VideoPlace]:
    """Where each video the plan removes or moves is now, those in removed folders' subtrees too, by id."""
    leaving = {e.id for e in plan.removed if e.kind is EntryKind.VIDEO}
    leaving.update(m.id for m in plan.moves if m.kind is EntryKind.VIDEO)
    rows = {int(r[0]): r for r in await _videos_by_ids(conn, sorted(leaving))}
    for folder in plan.removed:
        if folder.kind is EntryKind.FOLDER:
            for row in await conn.fetch(_in_or_under(_PLACE_COLUMNS), _in_or_under_params(folder.root_id, folder.path)):
                rows.setdefault(int(row[0]), row)
    return {video_id: (int(r[1]), int(r[2]), str(r[3]), int(r[4])) for video_id, r in rows.items()}


def _stays(move: Move, was: VideoPlace | None) -> bool:
    """Whether a moved video keeps its root, its folder (by id) and its name: its moved folder took it along."""
    return was is not None and was[:2] == (move.root_id, move.parent_id) and name_of(was[2]) == name_of(move.entry.path)


async def _resize_totals(conn: RawConnection, new_sizes: dict[int, int]) -> None:
    """Folder totals follow videos whose size changed in place."""
    if not new_sizes:
        return
    totals = TotalsDelta()
    for _id, root_id, folder_id, path, size in await _videos_by_ids(conn, sorted(new_sizes)):
        totals.resize(int(root_id), int(folder_id), str(path), new_sizes[int(_id)] - int(size))
    await totals.apply(conn)


# A bulk insert this big or bigger, into a videos table holding no more rows than it brings,
# builds the secondary indexes after the rows (one sort each) instead of keeping them row by row:
# about half the write's time.
_BULK_MIN_ROWS = 5000


async def _write_rows(conn: RawConnection, sqlite: bool, made: Any) -> None:
    """Run what ``sqlite_inserts`` or ``sqlite_run_inserts`` made (SQLite), or ``executemany`` rows.

    On SQLite the statements of the same size go in one ``executemany``: one trip through the
    driver's thread and back to the event loop for a batch's full statements, not one each (each
    trip waited for the GIL twice, while the walk and the rows' making held it).
    """
    if sqlite:
        for statement, same in groupby(made, key=_STATEMENT):
            params = [values for _statement, values in same]
            if len(params) == 1:
                await conn.execute(statement, params[0])
            else:
                await conn.executemany(statement, params)
    else:
        await conn.executemany(INSERT_VIDEO, made)


def _count_new(totals: TotalsDelta, rows: Sequence[NewVideo], runs: Sequence[VideoRun]) -> None:
    totals.add_new(rows)
    totals.add_runs(runs)


class _IdSpan:
    """How many videos one insert writes, and the least and greatest of their ids."""

    __slots__ = ("count", "first_id", "last_id")

    def __init__(self, rows: Sequence[NewVideo], runs: Sequence[VideoRun]) -> None:
        self.count = len(rows) + run_videos(runs)
        self.first_id = min(chain(map(_VIDEO_ID, rows), (run.first_id for run in runs)), default=0)
        self.last_id = max(chain(map(_VIDEO_ID, rows), (run.first_id + len(run.names) - 1 for run in runs)), default=0)


class _Ahead:
    """``make(chunk, now)`` of each chunk in turn, in a thread, the next one made while the caller
    writes the one it took (``next``); ``close`` waits for the one being made, if any."""

    def __init__(self, make: Callable[[Sequence[NewVideo], float], Any], chunks: list[Sequence[NewVideo]], now: float):
        self._make = make
        self._chunks = iter(chunks)
        self._now = now
        self._making: asyncio.Future[Any] | None = None
        self._start()

    def _start(self) -> None:
        chunk = next(self._chunks, None)
        self._making = None if chunk is None else asyncio.ensure_future(asyncio.to_thread(self._make, chunk, self._now))

    async def next(self) -> Any:
        making = self._making
        assert making is not None, "more chunks taken than given"
        made = await making
        self._start()
        return made

    async def close(self) -> None:
        if self._making is not None:
            making, self._making = self._making, None
            await asyncio.wait([making])
            if not making.cancelled():
                making.exception()


# SQLite's default: a commit that leaves the WAL past this many pages copies it into the database.
_WAL_AUTOCHECKPOINT_PAGES = 1000


class _BulkJob:
    """One job's bulk load: how many videos the index held when it began, how many it brought.

    While it is open the writer leaves the WAL's checkpoints to a reader connection, which runs one
    after each bulk write, beside the next: a checkpoint copies the pages written into the database
    file and waits for the disk twice (the WAL's fsync and the database's), and in the writer's
    commit it held up every write after it. A first index of 100k files (strace, load 8): the
    writer's fdatasyncs 22 taking 0.24 s -> 9 taking 0.07 s (the reader's 13, 0.19 s). The end of
    the load gives the writer its checkpoints back.
    """

    def __init__(self, held: int) -> None:
        self.held = held
        self.inserting = 0
        self.opened = False
        self.fills = False  # whether each bulk write fills the search table (a load this job began)
        self._checkpoint: asyncio.Future[None] | None = None
        self._again = False

    def checkpoint(self, db: Db) -> None:
        """After a bulk write's commit: a checkpoint on a reader, now or right after the one running."""
        if self._checkpoint is not None and not self._checkpoint.done():
            self._again = True
            return
        self._checkpoint = asyncio.ensure_future(self._checkpoints(db))

    async def _checkpoints(self, db: Db) -> None:
        again = True
        while again:
            self._again = False
            try:
                async with db.reading() as conn:
                    # PASSIVE: it copies what it can and waits for no reader or writer.
                    await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # the next commit of the writer checkpoints (or the next start does)
                logger.debug("a checkpoint during a bulk load failed", exc_info=True)
                return
            again = self._again

    async def checkpointed(self) -> None:
        """The checkpoint running, if any, is over."""
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])

    async def before_insert(self, conn: RawConnection, rows: _IdSpan) -> None:
        """In the insert's transaction: open the bulk load once this job outnumbers the index.

        The marker is read in the transaction itself: the start-up's repair may have closed a load
        between two batches (the next batch then opens one again).
        """
        self.inserting += rows.count
        if self.inserting < max(self.held, _BULK_MIN_ROWS):
            return
        if await bulk_load.marker(conn) is None:
            self.fills = await bulk_load.begin(conn, rows.first_id)
        if not self.opened:
            await conn.execute("PRAGMA wal_autocheckpoint = 0")  # a reader checkpoints (``checkpoint``)
        self.opened = True  # by this job or a killed one before it: closed at this job's end

    async def after_insert(self, conn: RawConnection, rows: _IdSpan) -> None:
        """In the insert's transaction, after its rows: the search table gets them (``bulk.fill_search``)."""
        if self.fills:
            await bulk_load.fill_search(conn, rows.last_id + 1)


_FOLDER_COLUMNS = "SELECT id, root_id, path, 0, mtime_ns, inode, device FROM folders"
_VIDEO_COLUMNS = (
    f"SELECT v.id, v.root_id, {video_path()}, v.size, v.mtime_ns, v.inode, v.device FROM {VIDEOS_IN_FOLDERS}"
)
_Statement = tuple[str, tuple[Any, ...]]


def _scope_queries(scope: Scope) -> tuple[_Statement, _Statement]:
    """The folder and video reads of a scope, each written so that it stays an index search.

    A video is found by its folder's path (the folders' (root_id, path) key, then the videos' key on
    place), or, for the entry at the scope's own path, by that folder and its name.
    """
    if scope.recursive and scope.path == "":
        return (f"{_FOLDER_COLUMNS} WHERE root_id = ?", (scope.root_id,)), (
            f"{_VIDEO_COLUMNS} WHERE v.root_id = ?",
            (scope.root_id,),
        )
    parent, _, name = scope.path.rpartition("/")
    folder = "(SELECT id FROM folders WHERE root_id = ? AND path = ?)"
    itself = f"{_VIDEO_COLUMNS} WHERE v.folder_id = {folder} AND v.name = ?"
    if scope.recursive:
        low, high = path_range(scope.path)
        where = "root_id = ? AND (path = ? OR (path >= ? AND path < ?))"
        return (f"{_FOLDER_COLUMNS} WHERE {where}", (scope.root_id, scope.path, low, high)), (
            f"{_in_or_under(_VIDEO_COLUMNS)} UNION ALL {itself}",
            (*_in_or_under_params(scope.root_id, scope.path), scope.root_id, parent, name),
        )
    # A shallow scope: the entry at the path, and the children of the folder there. Written as a
    # UNION (rows have unique ids, so it equals the OR): SQLite turns the OR into a scan of the root.
    # The children are found by their folder's id alone (ids are unique across roots): with a
    # ``root_id = ?`` beside it SQLite, which has no statistics, searched (root_id, depth-first key)
    # and read the whole root, 21 ms at 100k videos against 0.3 ms at 1k (bench P3).
    return (
        f"{_FOLDER_COLUMNS} WHERE root_id = ? AND path = ? UNION {_FOLDER_COLUMNS} WHERE parent_id = {folder}",
        (scope.root_id, scope.path, scope.root_id, scope.path),
    ), (
        f"{itself} UNION {_VIDEO_COLUMNS} WHERE v.folder_id = {folder}",
        (scope.root_id, parent, name, scope.root_id, scope.path),
    )


_INODE, _DEVICE = operator.itemgetter(5), operator.itemgetter(6)
_VIDEO_ID = operator.itemgetter(0)  # of a NewVideo
_STATEMENT = operator.itemgetter(0)  # of a (statement, values) pair


def _unsigned(rows: list[tuple[Any, ...]]) -> list[IndexRow]:
    """Rows with inode and device back to unsigned 64-bit (see ``to_i64``); untouched rows are kept as they are."""
    # Looked for in C (``min`` over ``map``): the sync reads every row of a library through here,
    # in the driver's thread beside the walk's, and a Python loop per row would hold the GIL.
    if not rows or (min(map(_INODE, rows)) >= 0 and min(map(_DEVICE, rows)) >= 0):
        return rows
    return [
        r if r[5] >= 0 and r[6] >= 0 else (r[0], r[1], r[2], r[3], r[4], from_i64(r[5]), from_i64(r[6])) for r in rows
    ]


async def take_ids(conn: RawConnection, counter: str, count: int) -> int:
    """Reserve ``count`` ids of a counter; returns the first. Ids are never handed out twice."""
    row = await conn.fetch_one("SELECT next_id FROM id_counters WHERE name = ?", (counter,))
    if row is None:
        table = {"roots": "roots", "folders": "folders", "videos": "videos", "sync_jobs": "sync_jobs"}[counter]
        top = await conn.fetch_one(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        first = int(top[0]) + 1 if top else 1
        await conn.execute("INSERT INTO id_counters (name, next_id) VALUES (?, ?)", (counter, first + count))
        return first
    first = int(row[0])
    if count:
        await conn.execute("UPDATE id_counters SET next_id = ? WHERE name = ?", (first + count, counter))
    return first
