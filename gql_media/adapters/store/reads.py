"""Every read the API makes of the index: batched lookups, keyset pages, counts and sizes.

Batched lookups take many ids and cost one statement, so the API's DataLoaders turn a page of
any size into a fixed number of statements. Pages are keyset pages (``after`` is the sort key of
the last row seen, ``limit`` rows are returned, one more is read to know if there is a next page),
so a deep page costs what the first one does.

The rows, pages, keys and the video query these reads take and return are in ``rows`` (and
importable from here).

On SQLite, pages and lookups by id come as one row of one JSON text (``json_rows``): the driver
takes the GIL back once a read rather than once a row, which under a sync's load cost a page of 50
videos up to 7.5 ms.

Orders are byte-wise (code point) on both engines: SQLite's BINARY collation and the ``C``
collation of the path columns on PostgreSQL.

One module though it passes 400 lines: it is the API's one read port (``LibraryReads``), and its
statements share the column lists, the row decoders, the video filter (``_video_where``: pages
and counts, the name search included) and the depth-first order key, which must stay exactly those
the indexes were planned on; the rows it returns already live in ``rows``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from gql_media.adapters.store.db import Db, RawConnection
from gql_media.adapters.store.index import path_range
from gql_media.adapters.store.json_rows import Columns, fetch_rows
from gql_media.adapters.store.rows import (
    DescendantKey,
    EntryKey,
    FolderRow,
    FolderStats,
    Page,
    VideoOrderKey,
    VideoQuery,
    VideoRow,
    VideoSort,
)
from gql_media.adapters.store.tables import VIDEOS_IN_FOLDERS, video_path
from gql_media.core.models import VideoStatus

__all__ = [
    "DescendantKey",
    "EntryKey",
    "FolderRow",
    "FolderStats",
    "LibraryReads",
    "Page",
    "VideoOrderKey",
    "VideoQuery",
    "VideoRow",
    "VideoSort",
]

# SQLite accepts 32766 parameters per statement; one statement per 1000 ids keeps a page of up
# to 1000 items (the API's maximum) at one statement per relation.
_IDS_PER_STATEMENT = 1000

# Sorting paths with "/" replaced by a character below every printable one gives a depth-first
# pre-order: "a", "a/x", "a b" instead of "a", "a b", "a/x".
_DEPTH_FIRST_SEPARATOR = "\x01"

_FOLDER_COLUMNS = Columns.of(
    "f.id", "f.root_id", "r.path", "f.parent_id", "f.path", "f.name", "f.mtime_ns", "f.created_at",
    reals=("f.created_at",),
)  # fmt: skip
# A video's path is its folder's and its name (migration 0010): every read of videos joins their
# folders as ``vf`` (a search of the folders' rowid on SQLite).
_VIDEO_COLUMNS = Columns.of(
    "v.id", "v.root_id", "r.path", "v.folder_id", video_path(), "v.path_bytes", "v.name", "v.size", "v.mtime_ns",
    "v.created_at", "v.status", "v.duration_s", "v.width", "v.height", "v.video_codec", "v.audio_codec",
    "v.container", "v.error", "v.thumbnail_key",
    reals=("v.created_at", "v.duration_s"), blobs=("v.path_bytes",),
)  # fmt: skip
# The folder columns of the videos' own folder (``vf``).
_VIDEO_FOLDER_COLUMNS = Columns(
    tuple(e.replace("f.", "vf.") for e in _FOLDER_COLUMNS.expressions), _FOLDER_COLUMNS.reals, _FOLDER_COLUMNS.blobs
)
_VIDEO_FROM = f"{VIDEOS_IN_FOLDERS} JOIN roots r ON r.id = v.root_id"

_VIDEO_WIDTH = len(VideoRow._fields)  # a joined row's folder columns start here

RowT = TypeVar("RowT", FolderRow, VideoRow)

# Unknown durations sort first ascending (a duration is never negative).
_ORDER_EXPRESSIONS = {
    VideoOrderKey.NAME: "v.name",
    VideoOrderKey.MODIFIED_AT: "v.mtime_ns",
    VideoOrderKey.SIZE: "v.size",
    VideoOrderKey.DURATION: "COALESCE(v.duration_s, -1.0)",
}


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    unique = sorted(set(ids))
    return [unique[i : i + _IDS_PER_STATEMENT] for i in range(0, len(unique), _IDS_PER_STATEMENT)]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# The drivers return these columns typed already (SQLite's and PostgreSQL's INTEGER/BIGINT as int,
# FLOAT as float, TEXT as str, BLOB/bytea as bytes): rows are built positionally, without a
# conversion per value (a page builds hundreds of them).
_STATUS = {status.value: status for status in VideoStatus}


def _folder(row: Sequence[Any]) -> FolderRow:
    return FolderRow._make(row)


def _video(row: Sequence[Any]) -> VideoRow:
    values = list(row)
    values[10] = _STATUS.get(values[10]) or VideoStatus(values[10])
    return VideoRow._make(values)


# Depth-first order of the merged rows: a folder's key (0), then its videos (1) by name.
_PLACE_KIND_NAME = operator.itemgetter(0, 1, 2)


def _like_pattern(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The depth-first sort key of a path column, written as migration 0006's indexes are (the planner
# matches the expression).
_DEPTH_FIRST_KEY = {"sqlite": "replace({}, '/', char(1))", "postgresql": "replace({}, '/', chr(1))"}


def _depth_first_range(path: str) -> tuple[str, str | None]:
    """Bounds (both exclusive) of the depth-first keys strictly under ``path``; none above a root's own folder."""
    if path == "":
        return "", None
    prefix = path.replace("/", _DEPTH_FIRST_SEPARATOR)
    return prefix + _DEPTH_FIRST_SEPARATOR, prefix + "\x02"


def _subtree_condition(alias: str, path: str) -> tuple[str, list[Any]]:
    """Rows strictly under ``path`` of one root (the root id is matched separately)."""
    if path == "":
        return f"{alias}.path <> ''", []
    low, high = path_range(path)
    return f"{alias}.path >= ? AND {alias}.path < ?", [low, high]


def _under_condition(query: VideoQuery) -> tuple[str, list[Any]]:
    """Videos under ``query.under_path`` (a video is in its folder, strictly under the folders above):
    their folders', found by two ranges of the folders' (root_id, path) key (as an OR, SQLite read
    every folder of the root)."""
    path = query.under_path or ""
    low, high = path_range(path)
    root = "" if query.root_id is None else "root_id = ? AND "
    roots = [] if query.root_id is None else [query.root_id]
    return (
        f"v.folder_id IN (SELECT id FROM folders WHERE {root}path = ?"
        f" UNION ALL SELECT id FROM folders WHERE {root}path >= ? AND path < ?)",
        [*roots, path, *roots, low, high],
    )


# Substrings this long are looked up in the name-search index (FTS5 trigrams on SQLite, pg_trgm
# on PostgreSQL); a shorter one has no trigram to look up and stays a LIKE over the names.
SEARCH_INDEX_MIN_CHARS = 3
# A search matching this many videos or more (typing "cli" in a library of clips) is read by
# walking the page's order and filtering: each of its pages is reached within a few thousand
# rows, where sorting every match would cost a sort of the library.
SEARCH_DENSE_ROWS = 2000


# The ids an SQLite name search matches: through the search table, and while a bulk load is open
# (``bulk.py``) the videos from its first id on, which the table does not hold yet, by their names.
# With no load open the second half is an empty range of ids (the marker's id is NULL).
_SQLITE_MATCHES = (
    "SELECT rowid FROM videos_search WHERE videos_search MATCH ? UNION ALL SELECT id FROM videos"
    " WHERE id >= (SELECT first_video_id FROM bulk_loads) AND name_fold LIKE ? ESCAPE '\\'"
)


def _fts_phrase(text: str) -> str:
    """An FTS5 phrase of ``text`` (a substring match under the trigram tokenizer)."""
    return '"' + text.replace('"', '""') + '"'


def _search_is_indexed(query: VideoQuery) -> bool:
    text = query.name_contains or ""
    return len(text.casefold()) >= SEARCH_INDEX_MIN_CHARS and "\x00" not in text


def _video_where(
    query: VideoQuery, dialect: str = "sqlite", dense: bool = False, matches: Sequence[int] | None = None
) -> tuple[str, list[Any]]:
    """The condition of ``query``; ``dense``: its name search matches so many rows that walking the
    page's order and filtering by LIKE reaches a page sooner than sorting every match; ``matches``
    (PostgreSQL): the ids its index found just before, fewer than ``SEARCH_DENSE_ROWS``."""
    conditions: list[str] = []
    params: list[Any] = []
    # No name or path holds a NUL, and PostgreSQL rejects one in a text parameter: nothing matches.
    if "\x00" in (query.under_path or "") or "\x00" in (query.name_contains or ""):
        return "1 = 0", params

    def compare(condition: str, value: object) -> None:
        """``condition`` on ``value``, unless the query leaves it out (None)."""
        if value is not None:
            conditions.append(condition)
            params.append(value)

    compare("v.folder_id = ?", query.folder_id)
    compare("v.root_id = ?", query.root_id)
    if query.under_path:
        condition, values = _under_condition(query)
        conditions.append(condition)
        params.extend(values)
    if query.name_contains:
        folded = query.name_contains.casefold()
        if len(folded) < SEARCH_INDEX_MIN_CHARS or dense:  # walks the rows in page order, up to the page's end
            conditions.append("v.name_fold LIKE ? ESCAPE '\\'")
            params.append(_like_pattern(query.name_contains))
        elif dialect == "postgresql" and matches is not None:
            # The index's matches as read for the dense check: a GIN scan of a common trigram's
            # postings costs 5-10 ms at 1M, and the page would make it again. Each name is checked
            # again (a video renamed in between is not shown for a name it no longer has), by
            # strpos: a LIKE would be planned through the GIN index once more.
            conditions.append("v.id = ANY(?) AND strpos(v.name_fold, ?) > 0")
            params += [list(matches), folded]
        elif dialect == "sqlite":
            conditions.append(f"v.id IN ({_SQLITE_MATCHES})")
            params += [_fts_phrase(folded), _like_pattern(query.name_contains)]
        else:
            # The matches first, through the pg_trgm index (an init plan): left to itself the planner
            # walks the order's index and filters, i.e. every row when nothing matches.
            conditions.append("v.id = ANY(ARRAY(SELECT id FROM videos WHERE name_fold LIKE ? ESCAPE '\\'))")
            params.append(_like_pattern(query.name_contains))
    compare("v.duration_s >= ?", query.min_duration_s)
    compare("v.duration_s <= ?", query.max_duration_s)
    compare("v.status = ?", None if query.status is None else query.status.value)
    return (" AND ".join(conditions) or "1 = 1"), params


def _totals_count(query: VideoQuery) -> tuple[str, list[Any]] | None:
    """The count of a query that filters by place only, read from the folder totals (None: count the rows)."""
    if (query.name_contains, query.min_duration_s, query.max_duration_s, query.status) != (None, None, None, None):
        return None
    if "\x00" in (query.under_path or ""):
        return None
    if query.folder_id is not None:
        if query.root_id is not None or query.under_path:
            return None
        return "SELECT video_count FROM folders WHERE id = ?", [query.folder_id]
    if query.root_id is not None:
        return "SELECT tree_video_count FROM folders WHERE root_id = ? AND path = ?", [
            query.root_id,
            query.under_path or "",
        ]
    if query.under_path:
        return None
    return "SELECT SUM(tree_video_count) FROM folders WHERE parent_id IS NULL", []


class LibraryReads:
    """The API's reads of the index on a ``Db`` (no writes, no business rules)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def root_folders(self) -> list[FolderRow]:
        """The folder of every root, in root order."""
        async with self.db.reading() as conn:
            rows = await conn.fetch(
                f"SELECT {_FOLDER_COLUMNS.sql} FROM folders f JOIN roots r ON r.id = f.root_id"
                " WHERE f.parent_id IS NULL AND f.path = '' ORDER BY r.id"
            )
        return [_folder(r) for r in rows]

    async def folder_by_path(self, root_id: int, path: str) -> FolderRow | None:
        if "\x00" in path:  # no path holds one (and PostgreSQL rejects it in a parameter)
            return None
        async with self.db.reading() as conn:
            row = await conn.fetch_one(
                f"SELECT {_FOLDER_COLUMNS.sql} FROM folders f JOIN roots r ON r.id = f.root_id"
                " WHERE f.root_id = ? AND f.path = ?",
                (root_id, path),
            )
        return None if row is None else _folder(row)

    async def folders_by_ids(self, ids: Iterable[int]) -> dict[int, FolderRow]:
        return await self._by_ids(_FOLDER_COLUMNS, "folders f", "f", ids, _folder)

    async def videos_by_ids(self, ids: Iterable[int]) -> dict[int, VideoRow]:
        return await self._by_ids(_VIDEO_COLUMNS, VIDEOS_IN_FOLDERS, "v", ids, _video)

    async def _by_ids(
        self, columns: Columns, source: str, alias: str, ids: Iterable[int], make: Callable[[Sequence[Any]], RowT]
    ) -> dict[int, RowT]:
        found: dict[int, RowT] = {}
        async with self.db.reading() as conn:
            for chunk in _chunks(ids):
                # In any order (a dict by id): ``fetch_rows`` needs no LIMIT here.
                rows = await fetch_rows(
                    conn,
                    self.db.dialect,
                    columns,
                    f"FROM {source} JOIN roots r ON r.id = {alias}.root_id WHERE {alias}.id IN ({_marks(len(chunk))})",
                    chunk,
                )
                found.update((row.id, row) for row in map(make, rows))
        return found

    async def child_folders(self, parent_ids: Iterable[int]) -> dict[int, list[FolderRow]]:
        """The direct sub-folders of each parent, by name."""
        children: dict[int, list[FolderRow]] = {}
        async with self.db.reading() as conn:
            for chunk in _chunks(parent_ids):
                rows = await conn.fetch(
                    f"SELECT {_FOLDER_COLUMNS.sql} FROM folders f JOIN roots r ON r.id = f.root_id"
                    f" WHERE f.parent_id IN ({_marks(len(chunk))}) ORDER BY f.parent_id, f.name, f.id",
                    chunk,
                )
                for folder in map(_folder, rows):
                    assert folder.parent_id is not None
                    children.setdefault(folder.parent_id, []).append(folder)
        return children

    async def video_page(
        self, query: VideoQuery, sort: VideoSort, after: tuple[str | int | float, int] | None, limit: int
    ) -> Page[VideoRow]:
        """Up to ``limit`` videos matching ``query`` in ``sort`` order, after the key ``(value, id)``."""
        page, _ = await self._video_page(query, sort, after, limit, with_folders=False)
        return page

    async def video_page_with_folders(
        self, query: VideoQuery, sort: VideoSort, after: tuple[str | int | float, int] | None, limit: int
    ) -> tuple[Page[VideoRow], dict[int, FolderRow]]:
        """``video_page`` and the folders of its videos, by id, read in the same statement (one trip to
        the driver's thread instead of two: the API's pages ask for both)."""
        return await self._video_page(query, sort, after, limit, with_folders=True)

    async def _video_page(
        self,
        query: VideoQuery,
        sort: VideoSort,
        after: tuple[str | int | float, int] | None,
        limit: int,
        *,
        with_folders: bool,
    ) -> tuple[Page[VideoRow], dict[int, FolderRow]]:
        columns = _VIDEO_COLUMNS
        if with_folders:
            # The video's folder, joined already (``_VIDEO_FROM``).
            columns = _VIDEO_COLUMNS + _VIDEO_FOLDER_COLUMNS
        async with self.db.reading() as conn:
            dense, matches = await self._search_reach(conn, query) if _search_is_indexed(query) else (False, None)
            where, params = _video_where(query, self.db.dialect, dense, matches)
            expression = _ORDER_EXPRESSIONS[sort.key]
            direction, compare = ("DESC", "<") if sort.descending else ("ASC", ">")
            if after is not None:
                where += f" AND ({expression}, v.id) {compare} (?, ?)"
                params.extend(after)
            params.append(limit + 1)
            rows = await fetch_rows(
                conn,
                self.db.dialect,
                columns,
                f"FROM {_VIDEO_FROM} WHERE {where} ORDER BY {expression} {direction}, v.id {direction} LIMIT ?",
                params,
            )
        videos = [_video(r[:_VIDEO_WIDTH]) for r in rows[:limit]]
        folders: dict[int, FolderRow] = {}
        if with_folders:
            for r in rows[:limit]:
                if r[_VIDEO_WIDTH] is not None and r[_VIDEO_WIDTH] not in folders:  # None: removed meanwhile
                    folders[r[_VIDEO_WIDTH]] = _folder(r[_VIDEO_WIDTH:])
        return Page(rows=videos, has_next=len(rows) > limit), folders

    async def _search_reach(self, conn: RawConnection, query: VideoQuery) -> tuple[bool, list[int] | None]:
        """Whether the name search is dense (``SEARCH_DENSE_ROWS`` matches or more, found through its
        index) and, on PostgreSQL when it is not, the ids it matches (its page takes them)."""
        assert query.name_contains is not None
        pattern = _like_pattern(query.name_contains)
        if self.db.dialect == "sqlite":
            params = [_fts_phrase(query.name_contains.casefold()), pattern, SEARCH_DENSE_ROWS]
            row = await conn.fetch_one(f"SELECT COUNT(*) FROM ({_SQLITE_MATCHES} LIMIT ?) AS m", params)
            return row is not None and int(row[0]) >= SEARCH_DENSE_ROWS, None
        rows = await conn.fetch(
            "SELECT id FROM videos WHERE name_fold LIKE ? ESCAPE '\\' LIMIT ?", [pattern, SEARCH_DENSE_ROWS]
        )
        if len(rows) >= SEARCH_DENSE_ROWS:
            return True, None
        return False, [int(r[0]) for r in rows]

    async def count_videos(self, query: VideoQuery) -> int:
        """How many videos match; by place only (all, a root, a subtree, a folder) it is the folder totals' one row."""
        totals = _totals_count(query)
        async with self.db.reading() as conn:
            if totals is not None:
                row = await conn.fetch_one(*totals)
            else:
                where, params = _video_where(query, self.db.dialect)
                row = await conn.fetch_one(f"SELECT COUNT(*) FROM videos v WHERE {where}", params)
        return int(row[0] or 0) if row else 0

    async def entries_page(self, folder_id: int, after: EntryKey | None, limit: int) -> Page[FolderRow | VideoRow]:
        """A folder's direct children: sub-folders first, then videos, each by name."""
        entries: list[FolderRow | VideoRow] = []
        async with self.db.reading() as conn:
            if after is None or after.kind == 0:
                where, params = "f.parent_id = ?", list[Any]([folder_id])
                if after is not None:
                    where += " AND (f.name, f.id) > (?, ?)"
                    params += [after.name, after.id]
                rows = await fetch_rows(
                    conn,
                    self.db.dialect,
                    _FOLDER_COLUMNS,
                    f"FROM folders f JOIN roots r ON r.id = f.root_id WHERE {where} ORDER BY f.name, f.id LIMIT ?",
                    [*params, limit + 1],
                )
                entries.extend(_folder(r) for r in rows)
            if len(entries) <= limit:
                where, params = "v.folder_id = ?", list[Any]([folder_id])
                if after is not None and after.kind == 1:
                    where += " AND (v.name, v.id) > (?, ?)"
                    params += [after.name, after.id]
                rows = await fetch_rows(
                    conn,
                    self.db.dialect,
                    _VIDEO_COLUMNS,
                    f"FROM {_VIDEO_FROM} WHERE {where} ORDER BY v.name, v.id LIMIT ?",
                    [*params, limit + 1 - len(entries)],
                )
                entries.extend(_video(r) for r in rows)
        return Page(rows=entries[:limit], has_next=len(entries) > limit)

    async def count_entries(self, folder_id: int) -> int:
        async with self.db.reading() as conn:
            row = await conn.fetch_one(
                "SELECT (SELECT COUNT(*) FROM folders WHERE parent_id = ?) + (SELECT COUNT(*) FROM videos"
                " WHERE folder_id = ?)",
                (folder_id, folder_id),
            )
        return int(row[0]) if row else 0

    async def descendants_page(
        self, folder: FolderRow, after: DescendantKey | None, limit: int
    ) -> Page[FolderRow | VideoRow]:
        """The whole subtree below ``folder``, depth-first: each folder, then its videos by name, then
        its sub-folders' subtrees by name.

        Three statements, each a range of an index read in order and ``limit + 1`` rows at most (no
        sort over the subtree): the rest of the videos of the folder the page starts in (by
        ``ix_videos_folder_name``), the folders after it (the folders' depth-first index), and those
        folders' videos (that index, then each folder's videos by name). The last two are merged
        here; only the page's rows are built.
        """
        low, high = _depth_first_range(folder.path)
        start, after_name = folder.path, None
        if after is not None:
            start, after_name = after.path.rpartition("/")[::2] if after.is_video else (after.path, None)
        start_key = start.replace("/", _DEPTH_FIRST_SEPARATOR)
        inside = start == folder.path or (start_key > low and (high is None or start_key < high))
        dialect_key = _DEPTH_FIRST_KEY[self.db.dialect].format("vf.path")
        upper = "" if high is None else f" AND {dialect_key} < ?"
        window = [folder.root_id, max(low, start_key) if inside else low, *([] if high is None else [high]), limit + 1]
        async with self.db.reading() as conn:
            first: Sequence[Sequence[Any]] = []
            if inside:
                named = "" if after_name is None else " AND v.name > ?"
                first = await fetch_rows(
                    conn,
                    self.db.dialect,
                    _VIDEO_COLUMNS,
                    f"FROM {_VIDEO_FROM} WHERE v.folder_id = (SELECT id FROM folders WHERE root_id = ? AND path = ?)"
                    f"{named} ORDER BY v.name LIMIT ?",
                    [folder.root_id, start, *([] if after_name is None else [after_name]), limit + 1],
                )
            found: list[tuple[str, int, str, Sequence[Any]]] = []
            if len(first) <= limit:
                folders = await fetch_rows(
                    conn,
                    self.db.dialect,
                    _VIDEO_FOLDER_COLUMNS,
                    "FROM folders vf JOIN roots r ON r.id = vf.root_id"
                    f" WHERE vf.root_id = ? AND {dialect_key} > ?{upper} ORDER BY {dialect_key} LIMIT ?",
                    window,
                )
                # Ordered by the key, the folder's id (the rowid on SQLite: each folder is one step of
                # the loop, so its videos come by ix_videos_folder_name in order) and the name.
                videos = await fetch_rows(
                    conn,
                    self.db.dialect,
                    _VIDEO_COLUMNS,
                    "FROM folders vf JOIN videos v ON v.folder_id = vf.id"
                    f" JOIN roots r ON r.id = v.root_id WHERE vf.root_id = ? AND {dialect_key} > ?{upper}"
                    f" ORDER BY {dialect_key}, vf.id, v.name LIMIT ?",
                    window,
                )
                # The path is the fifth column of both (``_FOLDER_COLUMNS``, ``_VIDEO_COLUMNS``).
                found = [(str(r[4]).replace("/", _DEPTH_FIRST_SEPARATOR), 0, "", r) for r in folders]
                for r in videos:
                    place, _, name = str(r[4]).rpartition("/")
                    found.append((place.replace("/", _DEPTH_FIRST_SEPARATOR), 1, name, r))
                found.sort(key=_PLACE_KIND_NAME)
        rows: list[FolderRow | VideoRow] = [_video(r) for r in first[: limit + 1]]
        rows += [_folder(r) if kind == 0 else _video(r) for _key, kind, _name, r in found[: limit + 1 - len(rows)]]
        return Page(rows=rows[:limit], has_next=len(rows) > limit)

    async def count_descendants(self, folder: FolderRow) -> int:
        """Sub-folders by a range of the path index, videos from the folder's own totals."""
        condition, params = _subtree_condition("f", folder.path)
        async with self.db.reading() as conn:
            row = await conn.fetch_one(
                f"SELECT (SELECT COUNT(*) FROM folders f WHERE f.root_id = ? AND {condition}),"
                " (SELECT tree_video_count FROM folders WHERE id = ?)",
                [folder.root_id, *params, folder.id],
            )
        return int(row[0]) + int(row[1] or 0) if row else 0

    async def folder_stats(self, folder_ids: Iterable[int], recursive: bool) -> dict[int, FolderStats]:
        """How many videos each folder holds and their total size (direct ones, or the whole subtree)."""
        stats: dict[int, FolderStats] = {}
        async with self.db.reading() as conn:
            for chunk in _chunks(folder_ids):
                stats.update(await _stats_of(conn, chunk, recursive))
        return stats


async def _stats_of(conn: RawConnection, folder_ids: list[int], recursive: bool) -> dict[int, FolderStats]:
    # The totals the store keeps on each folder row (adapters/store/totals.py): one row each.
    columns = "tree_video_count, tree_total_size" if recursive else "video_count, total_size"
    sql = f"SELECT id, {columns} FROM folders WHERE id IN ({_marks(len(folder_ids))})"
    rows = await conn.fetch(sql, folder_ids)
    found = {int(r[0]): FolderStats(video_count=int(r[1]), total_size=int(r[2])) for r in rows}
    return {folder_id: found.get(folder_id, FolderStats(0, 0)) for folder_id in folder_ids}
