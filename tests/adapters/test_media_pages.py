"""The media steps' reads by pages (``SqlMediaStore.videos_page``), on both backends.

A step that cannot name its videos (a first index of a million files) reads a status a page at a
time: every video once, in the (status, name, id) index's order, and a page is a range of that
index (no sort of every video of the status, which a first index leaves PENDING by the million).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from gql_media.adapters.store.media import SqlMediaStore
from gql_media.adapters.store.migrate import migrate
from gql_media.core.models import VideoStatus
from gql_media.core.thumbnails import ThumbnailSpec
from gql_media.services import Services
from tests.conftest import run_sync


async def test_pages_of_a_status_hold_each_video_once_and_count_as_many(services: Services, library: Path) -> None:
    for folder in range(3):
        (library / f"d{folder}").mkdir()
        for number in range(12):
            # Equal names in each folder: the id breaks the ties.
            (library / f"d{folder}" / f"clip {number % 5}{'x' * (number // 5)}.mp4").write_bytes(b"")
    await run_sync(services, library)
    store = SqlMediaStore(services.db)
    root_ids = [root.id for root in services.roots]
    async with services.db.writing() as conn:
        await conn.execute("UPDATE videos SET status = 'READY', thumbnail_key = 'k' WHERE id % 3 = 0")
        await conn.execute("UPDATE videos SET status = 'READY' WHERE id % 3 = 1")

    async def every_page(status: VideoStatus, keyed: bool | None) -> list[list[int]]:
        pages: list[list[int]] = []
        after = None
        while True:
            videos, after = await store.videos_page(root_ids, status, after, 7, keyed=keyed)
            if not videos:
                return pages
            assert all(video.status is status for video in videos)
            pages.append([video.id for video in videos])

    async with services.db.reading() as conn:
        rows = [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in await conn.fetch(
            "SELECT id, status, name, thumbnail_key FROM videos")]  # fmt: skip
    for status, keyed in [(VideoStatus.PENDING, None), (VideoStatus.READY, None), (VideoStatus.READY, False),
                          (VideoStatus.READY, True), (VideoStatus.BROKEN, None)]:  # fmt: skip
        expected = sorted(
            (name, video_id)
            for video_id, row_status, name, key in rows
            if row_status == status.value and keyed in (None, key is not None)
        )
        pages = await every_page(status, keyed)
        assert [video_id for page in pages for video_id in page] == [video_id for _, video_id in expected]
        assert all(len(page) == 7 for page in pages[:-1])
        if keyed is None:
            assert await store.count_videos(root_ids, status) == len(expected)
    assert await store.videos_page([], VideoStatus.PENDING, None, 7) == ([], None)
    assert await store.videos_page([root_ids[0] + 99], VideoStatus.PENDING, None, 7) == ([], None)


def test_a_page_is_a_range_of_the_status_index(tmp_path: Path) -> None:
    """SQLite's plan of a page after a cursor: a search of ix_videos_status, no temp b-tree for the order."""
    url = f"sqlite:///{tmp_path / 'library.db'}"
    asyncio.run(migrate(url))
    with contextlib.closing(sqlite3.connect(tmp_path / "library.db")) as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT v.id, r.path FROM videos v JOIN roots r ON r.id = v.root_id"
            " WHERE v.status = ? AND v.root_id IN (?, ?) AND v.thumbnail_key IS NULL AND (v.name, v.id) > (?, ?)"
            " ORDER BY v.name, v.id LIMIT ?",
            ["PENDING", 1, 2, "a", 5, 10],
        ).fetchall()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "ix_videos_status" in details and "TEMP B-TREE" not in details, details


async def test_the_orphan_sweep_reads_keys_of_the_ids_that_exist(services: Services, library: Path) -> None:
    for number in range(3):
        (library / f"clip {number}.mp4").write_bytes(b"")
    await run_sync(services, library)
    store = SqlMediaStore(services.db)
    async with services.db.writing() as conn:
        await conn.execute("UPDATE videos SET thumbnail_key = 'k-' || CAST(id AS TEXT) WHERE id % 2 = 0")
    async with services.db.reading() as conn:
        ids = sorted(int(row[0]) for row in await conn.fetch("SELECT id FROM videos"))
    gone = max(ids) + 1000
    keys = await store.thumbnail_keys([*ids, gone, ids[0]])
    assert keys == {video_id: f"k-{video_id}" if video_id % 2 == 0 else None for video_id in ids}
    assert await store.thumbnail_keys([]) == {}


async def test_a_page_of_stale_keys_holds_the_ready_videos_whose_key_is_not_of_their_version(
    services: Services, library: Path
) -> None:
    names = ["none", "current", "regenerated", "mtime 55", "other suffix", "other id"]
    for name in names:
        (library / f"{name}.mp4").write_bytes(b"")
    await run_sync(services, library)
    async with services.db.reading() as conn:
        rows = {str(r[0]): (int(r[1]), int(r[2])) for r in await conn.fetch("SELECT name, id, size FROM videos")}
    keys = {
        "none.mp4": None,
        "current.mp4": "{id}-{size}-5.jpg",
        "regenerated.mp4": "{id}-{size}-5-ff.jpg",
        "mtime 55.mp4": "{id}-{size}-55.jpg",  # another version's, whose name starts with this one's
        "other suffix.mp4": "{id}-{size}-5.webp",
        "other id.mp4": "1{id}-{size}-5.jpg",
    }
    async with services.db.writing() as conn:
        for name, key in keys.items():
            video_id, size = rows[name]
            await conn.execute(
                "UPDATE videos SET status = 'READY', mtime_ns = 5, thumbnail_key = ? WHERE id = ?",
                [None if key is None else key.format(id=video_id, size=size), video_id],
            )
    store = SqlMediaStore(services.db)
    root_ids = [root.id for root in services.roots]
    page, _after = await store.videos_page(root_ids, VideoStatus.READY, None, 10, stale_for=".jpg")
    assert sorted(video.path for video in page) == ["mtime 55.mp4", "none.mp4", "other id.mp4", "other suffix.mp4"]
    # The same answer as the media work's own test, video by video.
    spec = ThumbnailSpec(str(library), 320, ".jpg")
    every, _after = await store.videos_page(root_ids, VideoStatus.READY, None, 10)
    assert sorted(v.path for v in every if not spec.is_current(v)) == sorted(v.path for v in page)
