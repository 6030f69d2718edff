"""The index reads of a big library (issue 18) on both backends, against their plain definitions.

- Name search through the index (FTS5 trigrams on SQLite, pg_trgm on PostgreSQL) finds exactly
  what a plain ``LIKE`` over the folded names finds, for any query, short ones included.
- Every video order pages without gaps or duplicates across ties (many equal sizes, durations,
  names and statuses), ascending and descending.
- ``descendants`` pages through the subtree in depth-first order, each entry once, and its
  count equals the rows.
- The sync's read of one folder (what a watcher event becomes) costs the same in a bigger root.

One module just past 400 lines: the reads above are tested alike, on a random library of tricky
names built by the same helpers (``_fill``, ``_set_media``) on both backends (``store``), each read
against its plain definition.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing

import asyncpg
import pytest

from gql_media.adapters.store import index as index_module
from gql_media.adapters.store import reads as reads_module
from gql_media.adapters.store.db import Db
from gql_media.adapters.store.index import IndexStore
from gql_media.adapters.store.migrate import migrate
from gql_media.adapters.store.reads import (
    DescendantKey,
    FolderRow,
    LibraryReads,
    VideoOrderKey,
    VideoQuery,
    VideoRow,
    VideoSort,
)
from gql_media.core.models import (
    EntryKind,
    IndexedEntry,
    Move,
    NewFolder,
    NewVideo,
    ScanEntry,
    Scope,
    SyncPlan,
    VideoStatus,
)
from gql_media.core.scanner import FolderVideos
from tests.video_sql import VIDEOS

ALPHABET = "abcxyzAZ _%\\\"'.-ÜüßẞéÉ日本語\ufffdİı0123456789"
QUERY_ALPHABET = "abcxzAÜüßẞé日\ufffd _%\\\"'.İı01"


def _name(rng: random.Random) -> str:
    stem = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12)))
    return stem.strip() or "x"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Db, IndexStore, LibraryReads]]:
    db = Db(database_url)
    await db.connect()  # makes the SQLite file's folder
    await migrate(database_url)
    try:
        yield db, IndexStore(db), LibraryReads(db)
    finally:
        await db.disconnect()


async def _fill(index: IndexStore, rng: random.Random, videos: int, folders: int) -> None:
    """A tree of ``folders`` nested folders and ``videos`` videos with random (often equal) values."""
    (root,) = await index.ensure_roots(["/library"])
    first_folder, first_video = await index.reserve_ids(folders, videos)
    paths = {root.folder_id: ""}
    new_folders: list[NewFolder] = []
    for number in range(folders):
        parent_id = rng.choice(list(paths))
        folder_id = first_folder + number
        name = f"{_name(rng)}{number}"
        path = f"{paths[parent_id]}/{name}".lstrip("/")
        paths[folder_id] = path
        entry = ScanEntry(EntryKind.FOLDER, path, None, 0, 0, number, 1)
        new_folders.append(NewFolder(folder_id, root.id, parent_id, entry))
    await index.apply_structure(SyncPlan(new_folders=new_folders))
    rows: list[NewVideo] = []
    for number in range(videos):
        folder_id = rng.choice(list(paths))
        name = f"{_name(rng)}{number}{rng.choice(['.mp4', '.MKV', '.webm'])}"
        path = f"{paths[folder_id]}/{name}".lstrip("/")
        entry = ScanEntry(EntryKind.VIDEO, path, None, rng.choice([0, 1, 5, 5, 7]), rng.choice([1, 2]), number, 1)
        rows.append(NewVideo(first_video + number, root.id, folder_id, entry))
    await index.insert_videos(rows)


async def _set_media(db: Db, rng: random.Random) -> None:
    async with db.reading() as conn:
        ids = [int(r[0]) for r in await conn.fetch("SELECT id FROM videos")]
    async with db.writing() as conn:
        await conn.executemany(
            "UPDATE videos SET status = ?, duration_s = ? WHERE id = ?",
            [(rng.choice(list(VideoStatus)).value, rng.choice([None, 1.5, 1.5, 3.0]), i) for i in ids],
        )


@pytest.mark.parametrize("dense_rows", [reads_module.SEARCH_DENSE_ROWS, 5])
async def test_name_search_equals_plain_like(
    store: tuple[Db, IndexStore, LibraryReads], dense_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of reading a search: sorting the index's matches, and (dense) walking the order with LIKE."""
    monkeypatch.setattr(reads_module, "SEARCH_DENSE_ROWS", dense_rows)
    db, index, reads = store
    rng = random.Random(18)
    await _fill(index, rng, videos=600, folders=20)
    async with db.reading() as conn:
        names = [str(r[0]) for r in await conn.fetch("SELECT name FROM videos")]
    queries = ["", "a", "Ü", "ss", "ẞ", "\ufffd", "%", "_", "\\", '"', "mp4", ".MKV", "日本語", "İ", "ı0"]
    queries += [rng.choice(names)[i : i + n] for i in range(3) for n in (2, 3, 4, 6)]
    queries += ["".join(rng.choice(QUERY_ALPHABET) for _ in range(rng.randint(1, 5))) for _ in range(40)]
    for text in queries:
        if not text:
            continue
        pattern = "%" + text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        async with db.reading() as conn:
            plain = {
                int(r[0])
                for r in await conn.fetch("SELECT id FROM videos WHERE name_fold LIKE ? ESCAPE '\\'", [pattern])
            }
        query = VideoQuery(name_contains=text)
        page = await reads.video_page(query, VideoSort(), None, 1000)
        assert {row.id for row in page.rows} == plain, text
        assert await reads.count_videos(query) == len(plain), text
        # And the same as Python's own substring test (the plain LIKE is right, too).
        assert {row.id for row in page.rows} == {
            row.id for row in (await reads.videos_by_ids(plain)).values() if text.casefold() in row.name.casefold()
        }


async def test_search_index_follows_renames_and_removals(store: tuple[Db, IndexStore, LibraryReads]) -> None:
    db, index, reads = store
    rng = random.Random(7)
    await _fill(index, rng, videos=50, folders=3)
    async with db.writing() as conn:
        await conn.execute(
            "UPDATE videos SET name = 'Quokka.mp4', name_fold = 'quokka.mp4' WHERE id = (SELECT MIN(id) FROM videos)"
        )
    found = await reads.video_page(VideoQuery(name_contains="QUOK"), VideoSort(), None, 10)
    assert [row.name for row in found.rows] == ["Quokka.mp4"]
    async with db.writing() as conn:
        await conn.execute("DELETE FROM folders WHERE parent_id IS NOT NULL")
        await conn.execute("DELETE FROM videos")
    assert (await reads.video_page(VideoQuery(name_contains="quok"), VideoSort(), None, 10)).rows == []


async def test_search_index_follows_the_stores_own_writes(store: tuple[Db, IndexStore, LibraryReads]) -> None:
    """Videos inserted into a non-empty index, moved (renamed or not) and removed through the store.

    On SQLite the store writes many rows to a statement; the search table must still hold exactly
    the videos' names (FTS5's integrity check compares it with the videos table).
    """
    db, index, reads = store
    rng = random.Random(16)
    await _fill(index, rng, videos=300, folders=6)
    async with db.reading() as conn:
        folders = [(int(r[0]), str(r[1])) for r in await conn.fetch("SELECT id, path FROM folders")]
        videos = await conn.fetch(f"SELECT id, root_id, folder_id, path, size FROM {VIDEOS} ORDER BY id")
    (root,) = await index.list_roots()
    _first_folder, first_video = await index.reserve_ids(0, 2500)
    added = []
    for number in range(2500):  # more than one statement's worth
        folder_id, folder_path = rng.choice(folders)
        path = f"{folder_path}/added {_name(rng)}{number}.mp4".lstrip("/")
        added.append(
            NewVideo(first_video + number, root.id, folder_id, ScanEntry(EntryKind.VIDEO, path, None, 1, 1, 0, 1))
        )
    await index.insert_videos(added)
    moves = []
    for number, (video_id, root_id, _folder_id, path, size) in enumerate(videos[:40]):
        folder_id, folder_path = rng.choice(folders)
        name = str(path).rpartition("/")[2] if number % 2 else f"Renamed Quokka {number}.mkv"
        new_path = f"{folder_path}/{name}".lstrip("/")
        entry = ScanEntry(EntryKind.VIDEO, new_path, None, int(size), 1, 0, 1)
        moves.append(Move(EntryKind.VIDEO, int(video_id), int(root_id), str(path), int(root_id), folder_id, entry))
    removed = [
        IndexedEntry(EntryKind.VIDEO, int(r[0]), int(r[1]), str(r[3]), int(r[4]), 0, 0, 0) for r in videos[40:200]
    ]
    removed += [IndexedEntry(EntryKind.VIDEO, v.id, v.root_id, v.entry.path, 1, 0, 0, 0) for v in added[::3]]
    await index.apply_structure(SyncPlan(removed=removed, moves=moves))
    if db.dialect == "sqlite":
        async with db.writing() as conn:
            await conn.execute("INSERT INTO videos_search (videos_search, rank) VALUES ('integrity-check', 1)")
    async with db.reading() as conn:
        names = [str(r[0]) for r in await conn.fetch("SELECT name_fold FROM videos")]
    assert len(names) == 300 + 2500 - len(removed)
    for text in ["quokka", "added", "mp4", *(rng.choice(names)[i : i + 4] for i in range(3) for _ in range(5))]:
        found = await reads.video_page(VideoQuery(name_contains=text), VideoSort(), None, 3000)
        expected = sorted(name for name in names if text.casefold() in name)
        assert sorted(row.name.casefold() for row in found.rows) == expected, text


async def test_a_bulk_write_as_big_as_the_index_rebuilds_its_indexes(
    store: tuple[Db, IndexStore, LibraryReads],
) -> None:
    """A bulk write bringing at least as many videos as the index holds: on SQLite the indexes and the
    search table are dropped and made again after the rows; the schema, search and the unique
    (root, path) guard come out as before (a duplicate path undoes the whole write)."""
    db, index, reads = store
    (root,) = await index.ensure_roots(["/library"])
    count = index_module._BULK_MIN_ROWS
    _first_folder, first_video = await index.reserve_ids(0, 2 * count)

    def videos(start: int, prefix: str) -> list[NewVideo]:
        return [
            NewVideo(
                first_video + n,
                root.id,
                root.folder_id,
                ScanEntry(EntryKind.VIDEO, f"{prefix} {n}.mp4", None, n, 1, 0, 1),
            )
            for n in range(start, start + count)
        ]

    async def schema() -> list[tuple[object, ...]]:
        if db.dialect != "sqlite":
            return []
        async with db.reading() as conn:
            return await conn.fetch("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'videos' ORDER BY name")

    before = await schema()
    await index.insert_videos(videos(0, "first"), bulk=True)  # into an empty index
    duplicate = videos(count, "second")
    duplicate[-1] = duplicate[-1]._replace(entry=duplicate[-1].entry._replace(path="first 0.mp4"))
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await index.insert_videos(duplicate, bulk=True)
    assert await schema() == before
    assert await index.count_entries() == (1, count)
    await index.insert_videos(videos(count, "second"), bulk=True)  # as many as it holds
    assert await schema() == before
    assert await index.count_entries() == (1, 2 * count)
    if db.dialect == "sqlite":
        async with db.writing() as conn:
            await conn.execute("INSERT INTO videos_search (videos_search, rank) VALUES ('integrity-check', 1)")
    for text in (f"first {count - 1}.", f"second {count}."):
        found = await reads.video_page(VideoQuery(name_contains=text), VideoSort(), None, 10)
        assert [row.name for row in found.rows] == [f"{text}mp4"]


async def _all_pages(reads: LibraryReads, query: VideoQuery, sort: VideoSort, size: int) -> list[VideoRow]:
    seen: list[VideoRow] = []
    after: tuple[str | int | float, int] | None = None
    while True:
        page = await reads.video_page(query, sort, after, size)
        seen += page.rows
        if not page.has_next:
            return seen
        last = page.rows[-1]
        after = (sort.value_of(last), last.id)


async def test_every_order_pages_without_gaps_or_duplicates(store: tuple[Db, IndexStore, LibraryReads]) -> None:
    db, index, reads = store
    rng = random.Random(16)
    await _fill(index, rng, videos=300, folders=10)
    await _set_media(db, rng)
    every = await reads.videos_by_ids(range(1, 10_000))
    for key in VideoOrderKey:
        for descending in (False, True):
            sort = VideoSort(key, descending)
            for query in (VideoQuery(), VideoQuery(status=VideoStatus.READY)):
                pages = await _all_pages(reads, query, sort, size=7)
                expected = [row for row in every.values() if query.status in (None, row.status)]
                expected.sort(key=lambda row: (sort.value_of(row), row.id), reverse=descending)
                assert [row.id for row in pages] == [row.id for row in expected], (key, descending, query)


def _depth_first(entry: tuple[EntryKind, int, str]) -> tuple[list[str], int, str]:
    """A folder's path components (0), then its videos (1) by name: compared as tuples, depth-first."""
    kind, _id, path = entry
    if kind is EntryKind.FOLDER:
        return path.split("/"), 0, ""
    place, _, name = path.rpartition("/")
    return place.split("/") if place else [], 1, name


async def test_descendants_page_depth_first_and_count(store: tuple[Db, IndexStore, LibraryReads]) -> None:
    _db, index, reads = store
    rng = random.Random(4)
    await _fill(index, rng, videos=200, folders=25)
    folders = await reads.folders_by_ids(range(1, 10_000))
    videos = await reads.videos_by_ids(range(1, 10_000))
    for folder in rng.sample(list(folders.values()), 6) + [f for f in folders.values() if f.path == ""]:
        prefix = "" if folder.path == "" else folder.path + "/"
        # Depth-first: a folder, then its videos by name, then its sub-folders' subtrees by name.
        expected = sorted(
            [
                (EntryKind.FOLDER, f.id, f.path)
                for f in folders.values()
                if f.path != folder.path and f.path.startswith(prefix)
            ]
            + [(EntryKind.VIDEO, v.id, v.path) for v in videos.values() if v.path.startswith(prefix)],
            key=_depth_first,
        )
        got: list[tuple[EntryKind, int, str]] = []
        after: DescendantKey | None = None
        while True:
            page = await reads.descendants_page(folder, after, 9)
            # Each entry's whole row, as folders_by_ids and videos_by_ids read it.
            for row in page.rows:
                assert row == (folders if isinstance(row, FolderRow) else videos)[row.id]
            kinds = [EntryKind.FOLDER if isinstance(r, FolderRow) else EntryKind.VIDEO for r in page.rows]
            got += [(kind, r.id, r.path) for kind, r in zip(kinds, page.rows, strict=True)]
            if not page.has_next:
                break
            after = DescendantKey(page.rows[-1].path, isinstance(page.rows[-1], VideoRow))
        assert got == expected, folder.path
        assert await reads.count_descendants(folder) == len(expected)
        # Counts by place come from the folder totals: the same as counting the rows.
        under = VideoQuery(root_id=folder.root_id, under_path=folder.path)
        assert await reads.count_videos(under) == sum(1 for v in videos.values() if v.path.startswith(prefix))
        direct = sum(1 for v in videos.values() if v.folder_id == folder.id)
        assert await reads.count_videos(VideoQuery(folder_id=folder.id)) == direct
    assert await reads.count_videos(VideoQuery()) == len(videos)


async def test_postgres_gathers_statistics_after_a_bulk_load(store: tuple[Db, IndexStore, LibraryReads]) -> None:
    """Without them a fresh big index is planned as a tiny one (a depth-first page sorted the whole library)."""
    db, index, _reads = store
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL plans by statistics; SQLite needs none here")
    await _fill(index, random.Random(1), videos=10_000, folders=5)
    async with db.reading() as conn:
        row = await conn.fetch_one("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'videos'")
    assert row is not None and row[0] is not None


def _vm_steps(db: Db, sql: str, params: tuple[object, ...]) -> int:
    """How many SQLite virtual-machine instructions ``sql`` runs: its cost, free of the machine's load."""
    assert db.sqlite_path is not None
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(db.sqlite_path)) as conn:
        conn.set_progress_handler(step, 1)
        conn.execute(sql, params).fetchall()
    return steps


async def test_a_shallow_scope_read_costs_the_same_in_a_bigger_root(store: tuple[Db, IndexStore, LibraryReads]) -> None:
    """One folder's read, as a watcher event's sync does it (bench P3), is an index search on the folder.

    It once also said ``root_id = ?``, and SQLite (no statistics) searched the root's depth-first
    index instead: every video of the root read to find the folder's (21 ms at 100k, 0.3 ms at 1k).
    """
    db, index, _reads = store
    (root,) = await index.ensure_roots(["/library"])

    async def add_folder(path: str, parent_id: int, videos: int) -> int:
        folder_id, first_video = await index.reserve_ids(1, videos)
        entry = ScanEntry(EntryKind.FOLDER, path, None, 0, 1, folder_id, 1)
        await index.apply_structure(SyncPlan(new_folders=[NewFolder(folder_id, root.id, parent_id, entry)]))
        await index.insert_videos(
            [
                NewVideo(v, root.id, folder_id, ScanEntry(EntryKind.VIDEO, f"{path}/clip {v}.mp4", None, v, 1, v, 1))
                for v in range(first_video, first_video + videos)
            ]
        )
        return folder_id

    here = await add_folder("here", root.folder_id, 20)
    await add_folder("here/below", here, 3)
    scope = Scope(root.id, "here", False)
    statements = index_module._scope_queries(scope)
    expected = tuple(sorted(rows) for rows in await index.read_scope_rows(scope))
    assert sorted(row[2] for row in expected[0]) == ["here", "here/below"]
    assert len(expected[1]) == 20 and all(row[2].startswith("here/clip ") for row in expected[1])
    if db.dialect == "sqlite":
        before = [_vm_steps(db, sql, params) for sql, params in statements]

    for number in range(60):
        await add_folder(f"other {number:02d}", root.folder_id, 30)

    assert tuple(sorted(rows) for rows in await index.read_scope_rows(scope)) == expected
    if db.dialect == "sqlite":
        assert [_vm_steps(db, sql, params) for sql, params in statements] == before


async def test_the_sync_reads_each_video_as_stored_whatever_its_path(
    store: tuple[Db, IndexStore, LibraryReads],
) -> None:
    """The streamed sync's reads of folders' videos (on SQLite texts: paths or names, and hex) give back
    every row exactly: quotes, backslashes, control characters and any script in a path, inodes and
    devices past 2**63 (stored signed), a negative mtime, zeros, and a folder with no video."""
    _db, index, _reads = store
    (root,) = await index.ensure_roots(["/library"])
    folder_id, first_video = await index.reserve_ids(2, 8)
    folders = [
        NewFolder(folder_id, root.id, root.folder_id, ScanEntry(EntryKind.FOLDER, 'a "b" \\c', None, 0, 1, 5, 1)),
        NewFolder(folder_id + 1, root.id, root.folder_id, ScanEntry(EntryKind.FOLDER, "empty", None, 0, 1, 6, 1)),
    ]
    await index.apply_structure(SyncPlan(new_folders=folders))
    names = ['quote " and \\ backslash.mp4', "tab\tnew\nline.mkv", "日本語 ✓ 🎬.webm", "bad \ufffd byte.mp4",
             "big.mov", "zero.avi", "Zebra.mp4", "émile.mp4"]  # fmt: skip
    stamps = [(1, 2, 3, 4), (0, 0, 0, 0), (2**40, 2**62, 2**63 + 5, 2**64 - 1), (7, -1, 8, 9),
              (10, 11, 2**64 - 1, 2**63), (0, 1, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2)]  # fmt: skip
    videos = [
        NewVideo(first_video + n, root.id, folder_id, ScanEntry(EntryKind.VIDEO, f'a "b" \\c/{name}', None, *stamp))
        for n, (name, stamp) in enumerate(zip(names, stamps, strict=True))
    ]
    await index.insert_videos(videos)
    expected = sorted((v.id, root.id, v.entry.path, v.entry.size, v.entry.mtime_ns, v.entry.inode, v.entry.device)
                      for v in videos)  # fmt: skip
    assert sorted(await index.read_folder_videos([folder_id, folder_id + 1])) == expected
    assert await index.read_folder_videos([folder_id + 1]) == []
    # As a resync reads them: one folder, names in code point order (as Python sorts them), stamps unsigned.
    ((read_id, joined, numbers),) = await index.read_folder_stamps([folder_id, folder_id + 1])
    assert read_id == folder_id and joined.split("/") == sorted(names)
    assert numbers == "".join(f"{n % 2**64:016x}" for row in sorted(expected, key=lambda r: r[2]) for n in row[3:])
    rows = FolderVideos(root.id, 'a "b" \\c', (read_id, joined, numbers)).rows()
    ids = await index.read_video_ids(root.id, [row[2] for row in rows] + ["not indexed.mp4"])
    assert sorted((ids[row[2]], *row[1:]) for row in rows) == expected and len(ids) == len(rows)
    assert await index.read_folder_stamps([folder_id + 1]) == []
    assert await index.read_video_ids(root.id + 1, [row[2] for row in rows]) == {}
    assert sorted((await index.read_scope_rows(Scope(root.id, "")))[1]) == expected


async def test_a_resync_reads_each_folders_videos_apart_from_the_next(
    store: tuple[Db, IndexStore, LibraryReads],
) -> None:
    """Folders read together (on SQLite one row of texts per statement, folders apart by "," and NUL)
    each get their own names and stamps, across more folders than one statement reads, names holding
    commas included; a folder with no video is not among them."""
    _db, index, _reads = store
    (root,) = await index.ensure_roots(["/library"])
    count = index_module._IDS_PER_STATEMENT + 205
    first_folder, first_video = await index.reserve_ids(count + 1, 3 * count)
    await index.apply_structure(
        SyncPlan(
            new_folders=[
                NewFolder(
                    first_folder + n,
                    root.id,
                    root.folder_id,
                    ScanEntry(EntryKind.FOLDER, f"d{n:04d}", None, 0, 1, n, 1),
                )
                for n in range(count + 1)
            ]
        )
    )
    videos: list[NewVideo] = []
    expected: dict[int, tuple[list[str], str]] = {}
    for n in range(count):  # folder ``count`` stays empty
        names = sorted(f"clip, {n} part {part}.mp4" for part in range(n % 3 + 1))
        stamps = [(n * 10 + part, n, part + 1, 7) for part in range(len(names))]
        for name, stamp in zip(names, stamps, strict=True):
            videos.append(NewVideo(first_video + len(videos), root.id, first_folder + n,
                                   ScanEntry(EntryKind.VIDEO, f"d{n:04d}/{name}", None, *stamp)))  # fmt: skip
        expected[first_folder + n] = (names, "".join(f"{value:016x}" for stamp in stamps for value in stamp))
    await index.insert_videos(videos)

    read = await index.read_folder_stamps(list(range(first_folder, first_folder + count + 1)))
    assert len(read) == count
    assert {folder_id: (joined.split("/"), numbers) for folder_id, joined, numbers in read} == expected
