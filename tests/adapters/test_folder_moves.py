"""A moved folder takes its videos along: they keep their ids, and their rows are not written again.

A video's place is its folder's id and its name (migration 0010), so the videos of a folder moved
or renamed keep theirs: only what changed about a file (its size, its stamps, its real bytes) is
written. Whether a row was written is read from the database itself: on SQLite a trigger counts the
updates of ``videos``; on PostgreSQL each row version's ``xmin`` names the transaction that wrote it.
"""

from __future__ import annotations

import os
from pathlib import Path

from gql_media.services import Services
from tests.adapters.test_sync_property import _assert_totals
from tests.conftest import disk_tree, ids_by_path, index_tree, run_sync, write
from tests.video_sql import VIDEOS


async def _row_versions(services: Services) -> dict[int, object]:
    """Each video's row version: what tells a row written again from one left alone."""
    async with services.db.writing() as conn:
        if services.db.dialect == "sqlite":
            rows = await conn.fetch("SELECT id, written FROM test_video_writes")
        else:
            rows = await conn.fetch("SELECT id, xmin::text FROM videos")
    return {int(r[0]): r[1] for r in rows}


async def _count_writes(services: Services) -> None:
    if services.db.dialect != "sqlite":
        return  # (xmin is there already)
    async with services.db.writing() as conn:
        await conn.execute("CREATE TABLE test_video_writes (id INTEGER PRIMARY KEY, written INTEGER NOT NULL)")
        await conn.execute("INSERT INTO test_video_writes SELECT id, 0 FROM videos")
        await conn.execute(
            "CREATE TRIGGER test_video_written AFTER UPDATE ON videos BEGIN"
            " UPDATE test_video_writes SET written = written + 1 WHERE id = new.id; END"
        )


async def _sizes(services: Services) -> dict[str, int]:
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT path, size FROM {VIDEOS}")
    return {str(r[0]): int(r[1]) for r in rows}


async def test_a_moved_folder_takes_its_videos_along_unwritten(services: Services, library: Path) -> None:
    for name in ("one.mp4", "two.mkv", "ünï.webm"):
        write(library / "shows" / "s1" / name, b"12")
    write(library / "shows" / "top.mp4", b"3")
    write(library / "film.mov", b"456")
    await run_sync(services, library)
    before = await ids_by_path(services)
    await _count_writes(services)
    versions = await _row_versions(services)

    (library / "shows").rename(library / "series")  # the folder and its sub-folder, renamed
    write(library / "series" / "s1" / "two.mkv", b"changed")  # one file changed with it (a new video)
    (library / "film.mov").rename(library / "series" / "s1" / "film.mov")  # and one moved in
    job = await run_sync(services, library)

    after = await ids_by_path(services)
    assert await index_tree(services) == disk_tree(library)
    for old, new in (("shows/s1/one.mp4", "series/s1/one.mp4"), ("shows/s1/ünï.webm", "series/s1/ünï.webm"),
                     ("shows/top.mp4", "series/top.mp4"), ("film.mov", "series/s1/film.mov")):  # fmt: skip
        assert after[("video", new)] == before[("video", old)], new
    assert (job.progress.moved, job.progress.added, job.progress.removed) == (6, 1, 1)  # (2 folders, 4 videos)
    sizes = await _sizes(services)
    assert sizes["series/s1/two.mkv"] == 7 and sizes["series/s1/one.mp4"] == 2
    await _assert_totals(services)
    # Of the videos kept, only the one that changed folder was written.
    now = await _row_versions(services)
    written = {video_id for video_id, version in versions.items() if video_id in now and now[video_id] != version}
    assert written == {after[("video", "series/s1/film.mov")]}


async def test_a_folder_renamed_to_or_from_bytes_that_are_not_utf8(services: Services, library: Path) -> None:
    """The videos' real bytes follow their folder's: set when its new name is not UTF-8, cleared after."""
    raw_dir = os.fsencode(library) + b"/caf\xe9"
    os.mkdir(raw_dir)
    for name in (b"a.mp4", b"b\xff.mp4"):
        with open(raw_dir + b"/" + name, "wb") as handle:
            handle.write(b"v")
    await run_sync(services, library)
    ids = await ids_by_path(services)

    os.rename(raw_dir, os.fsencode(library) + b"/cafe")
    await run_sync(services, library)
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT id, path, path_bytes FROM {VIDEOS} ORDER BY path")
    assert [(int(r[0]), str(r[1]), None if r[2] is None else bytes(r[2])) for r in rows] == [
        (ids[("video", "caf\ufffd/a.mp4")], "cafe/a.mp4", None),
        (ids[("video", "caf\ufffd/b\ufffd.mp4")], "cafe/b\ufffd.mp4", b"cafe/b\xff.mp4"),
    ]

    os.rename(os.fsencode(library) + b"/cafe", os.fsencode(library) + b"/\xe0 voir")
    await run_sync(services, library)
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT path, path_bytes FROM {VIDEOS} ORDER BY path")
    assert [(str(r[0]), bytes(r[1])) for r in rows] == [
        ("\ufffd voir/a.mp4", b"\xe0 voir/a.mp4"),
        ("\ufffd voir/b\ufffd.mp4", b"\xe0 voir/b\xff.mp4"),
    ]
    await _assert_totals(services)
