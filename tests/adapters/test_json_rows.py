"""Pages read as one JSON text on SQLite (``json_rows``) hold every value as stored, in order.

On both backends each read of ``LibraryReads`` that goes through ``fetch_rows`` must return the
rows a plain SELECT of the same columns returns: REAL values to the last bit (a timestamp's
microseconds, a probed duration), a non-UTF-8 name's raw bytes, NULLs, and names JSON must escape.
On SQLite, the joined rows keep the order of their ORDER BY ... LIMIT, whatever the order.
"""

from __future__ import annotations

import random
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from gql_media.adapters.store import reads as reads_module
from gql_media.adapters.store.db import Db
from gql_media.adapters.store.index import IndexStore
from gql_media.adapters.store.json_rows import Columns, fetch_rows
from gql_media.adapters.store.migrate import migrate
from gql_media.adapters.store.reads import (
    FolderRow,
    LibraryReads,
    VideoOrderKey,
    VideoQuery,
    VideoRow,
    VideoSort,
)
from gql_media.adapters.store.tables import VIDEOS_IN_FOLDERS
from gql_media.core.models import EntryKind, NewFolder, NewVideo, ScanEntry, SyncPlan, VideoStatus

# Names JSON escapes (quotes, backslashes, control characters), non-ASCII and a replacement character.
NAMES = ['say "hi".mp4', "back\\slash.mp4", "tab\there.mp4", "line\nbreak.mp4", "日本語.mkv", "caf\ufffd.mp4"]
DURATIONS = [None, 10.023333333333333, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 60.0, 1 / 3]


@pytest.fixture
async def library(database_url: str) -> AsyncIterator[tuple[Db, LibraryReads, int]]:
    """A root with a folder of tricky videos: every value kind of a video row, NULLs included."""
    db = Db(database_url)
    await db.connect()
    await migrate(database_url)
    index = IndexStore(db)
    try:
        (root,) = await index.ensure_roots(["/library"])
        first_folder, first_video = await index.reserve_ids(1, len(NAMES) * 2)
        folder = ScanEntry(EntryKind.FOLDER, "sub \u00e9", None, 0, 1_700_000_000_123_456_789, 7, 1)
        await index.apply_structure(SyncPlan(new_folders=[NewFolder(first_folder, root.id, root.folder_id, folder)]))
        videos: list[NewVideo] = []
        for number, name in enumerate(NAMES * 2):
            folder_id, place = (first_folder, "sub \u00e9/") if number >= len(NAMES) else (root.folder_id, "")
            raw = f"{place}{name}".encode().replace(b"\xef\xbf\xbd", b"\xe9") if "\ufffd" in name else None
            entry = ScanEntry(EntryKind.VIDEO, f"{place}{name}", raw, number * 1000, -number, 100 + number, 1)
            videos.append(NewVideo(first_video + number, root.id, folder_id, entry))
        await index.insert_videos(videos)
        async with db.writing() as conn:
            await conn.executemany(
                "UPDATE videos SET status = ?, duration_s = ?, width = ?, error = ? WHERE id = ?",
                [
                    (status.value, DURATIONS[i % len(DURATIONS)], None if i % 3 else 1920,
                     None if i % 2 else "x\u0001y", video.id)
                    for i, (video, status) in enumerate(zip(videos, list(VideoStatus) * 3, strict=False))
                ],
            )  # fmt: skip
        yield db, LibraryReads(db), root.folder_id
    finally:
        await db.disconnect()


async def _plain_videos(db: Db) -> dict[int, VideoRow]:
    """Every video by a plain SELECT of the page's columns (rows as the driver makes them)."""
    async with db.reading() as conn:
        rows = await conn.fetch(
            f"SELECT {reads_module._VIDEO_COLUMNS.sql} FROM {VIDEOS_IN_FOLDERS} JOIN roots r ON r.id = v.root_id"
        )
    return {row.id: row for row in map(reads_module._video, rows)}


async def _plain_folders(db: Db) -> dict[int, FolderRow]:
    async with db.reading() as conn:
        rows = await conn.fetch(
            f"SELECT {reads_module._FOLDER_COLUMNS.sql} FROM folders f JOIN roots r ON r.id = f.root_id"
        )
    return {row.id: row for row in map(reads_module._folder, rows)}


def _bits(value: object) -> object:
    """A float as its 64 bits (``==`` would take -0.0 for 0.0); anything else as it is."""
    return struct.pack("<d", value) if isinstance(value, float) else value


def _exact(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((type(value), _bits(value)) for value in row)


async def test_every_paged_read_returns_the_rows_as_stored(library: tuple[Db, LibraryReads, int]) -> None:
    db, reads, root_folder_id = library
    videos, folders = await _plain_videos(db), await _plain_folders(db)
    assert any(v.path_bytes for v in videos.values())
    assert any(v.duration_s == 10.023333333333333 for v in videos.values())

    for key in VideoOrderKey:
        page, with_folders = await reads.video_page_with_folders(VideoQuery(), VideoSort(key, True), None, 100)
        assert len(page.rows) == len(videos)
        assert [_exact(v) for v in page.rows] == [_exact(videos[v.id]) for v in page.rows]
        assert {i: _exact(f) for i, f in with_folders.items()} == {i: _exact(folders[i]) for i in with_folders}
        plain = await reads.video_page(VideoQuery(), VideoSort(key, False), None, 100)
        assert [_exact(v) for v in plain.rows] == [_exact(videos[v.id]) for v in plain.rows]

    by_ids = await reads.videos_by_ids(videos)
    assert {i: _exact(v) for i, v in by_ids.items()} == {i: _exact(v) for i, v in videos.items()}
    folders_by_ids = await reads.folders_by_ids(folders)
    assert {i: _exact(f) for i, f in folders_by_ids.items()} == {i: _exact(f) for i, f in folders.items()}

    root = folders[root_folder_id]
    entries = await reads.entries_page(root.id, None, 100)
    descendants = await reads.descendants_page(root, None, 100)
    assert len(entries.rows) == len(NAMES) + 1  # the root's videos and its sub-folder
    assert len(descendants.rows) == len(videos) + 1  # every video and the sub-folder
    for entry in [*entries.rows, *descendants.rows]:
        expected = videos[entry.id] if isinstance(entry, VideoRow) else folders[entry.id]
        assert _exact(entry) == _exact(expected)


@pytest.mark.parametrize("descending", [False, True])
async def test_joined_rows_keep_their_order_and_bits(tmp_path: Any, descending: bool) -> None:
    """SQLite: 2,000 rows in a random order of their keys, floats of every range, blobs and NULLs."""
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    db = Db(url)
    await db.connect()
    rng = random.Random(7)
    try:
        rows = []
        for number in range(2000):
            real = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if real != real or abs(real) == float("inf") or abs(real) < 1e-280:
                real = rng.uniform(-1e6, 1e6)  # quote()'s digits are SQLite's own below about 1e-290
            timestamp = 1_700_000_000 + rng.random() * 1e8
            blob = None if number % 5 == 0 else rng.randbytes(rng.randint(0, 20))
            rows.append((number, rng.random(), real, timestamp, blob, None if number % 7 else f't{number}"\\'))
        async with db.writing() as conn:
            await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k REAL, r REAL, ts REAL, b BLOB, s TEXT)")
            await conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
        columns = Columns.of("t.id", "t.k", "t.r", "t.ts", "t.b", "t.s", reals=("t.k", "t.r", "t.ts"), blobs=("t.b",))
        order = "DESC" if descending else "ASC"
        rest = f"FROM t WHERE t.id >= ? ORDER BY t.k {order}, t.id LIMIT ?"
        async with db.reading() as conn:
            joined = await fetch_rows(conn, "sqlite", columns, rest, [10, 1500])
            plain = await conn.fetch(f"SELECT {columns.sql} {rest}", [10, 1500])
            empty = await fetch_rows(conn, "sqlite", columns, rest, [5000, 10])
        assert len(joined) == 1500
        assert [_exact(r) for r in joined] == [_exact(r) for r in plain]
        assert empty == []
    finally:
        await db.disconnect()


def test_columns_name_only_their_own_expressions() -> None:
    with pytest.raises(ValueError, match="not one of the columns"):
        Columns.of("v.id", "v.size", reals=("v.duration_s",))
    joined = Columns.of("a.x", reals=("a.x",)) + Columns.of("b.y", "b.z", blobs=("b.z",))
    assert joined.reals == {0} and joined.blobs == {2}
