"""A big first index: one bulk write, the SQLite indexes made after the rows, search and totals as ever."""

from __future__ import annotations

from pathlib import Path

from gql_media.adapters.store.reads import LibraryReads, VideoQuery, VideoSort
from gql_media.services import Services
from tests.conftest import run_sync

FILES = 6000  # past the summary threshold (2000) and the bulk rebuild's minimum (5000)
FOLDERS = 12


def _make_library(library: Path) -> None:
    for number in range(FOLDERS):
        (library / f"d{number:02d}").mkdir()
    for number in range(FILES):
        (library / f"d{number % FOLDERS:02d}" / f"clip {number:05d}.mp4").write_bytes(b"")


async def _schema(services: Services) -> list[tuple[str, str, str]]:
    if services.db.dialect != "sqlite":
        return []
    async with services.db.reading() as conn:
        rows = await conn.fetch(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('videos', 'videos_search')"
            " AND sql IS NOT NULL ORDER BY type, name"
        )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


async def _names(reads: LibraryReads, text: str) -> list[str]:
    page = await reads.video_page(VideoQuery(name_contains=text), VideoSort(), None, 10)
    return [video.name for video in page.rows]


async def test_a_big_first_index_keeps_every_index_search_and_totals(services: Services, library: Path) -> None:
    before = await _schema(services)
    _make_library(library)

    final = await run_sync(services, library)

    assert final.progress.added == FILES + FOLDERS
    assert await services.index.count_entries() == (FOLDERS + 1, FILES)
    # Its ids were reserved ahead of its batches; those left were given back: no gap, none lost.
    async with services.db.reading() as conn:
        ids = await conn.fetch_one("SELECT MIN(id), MAX(id) FROM videos")
        counters = dict(await conn.fetch("SELECT name, next_id FROM id_counters"))
    assert ids == (1, FILES) and counters["videos"] == FILES + 1
    assert counters["folders"] == FOLDERS + 2
    # The same indexes and triggers as before the write, made again from their own statements.
    assert await _schema(services) == before
    reads = LibraryReads(services.db)
    assert await _names(reads, "clip 04242") == ["clip 04242.mp4"]
    root_folder = services.roots[0].folder_id
    assert (await reads.folder_stats([root_folder], recursive=True))[root_folder].video_count == FILES

    # A second big write goes row by row into the indexes (the table is not empty): still searchable.
    for number in range(FILES, FILES + 2500):
        (library / "d00" / f"more {number:05d}.mp4").write_bytes(b"")
    await run_sync(services, library)
    assert await _names(reads, "more 07777") == ["more 07777.mp4"]
    assert (await reads.folder_stats([root_folder], recursive=True))[root_folder].video_count == FILES + 2500
