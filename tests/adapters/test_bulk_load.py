"""A bulk load across several write transactions: reads stay right while it is open, and it closes
to the same indexes, triggers and search table (SQLite; on PostgreSQL the store keeps its indexes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gql_media.adapters.store import index as store_index
from gql_media.adapters.store import sqlite_backend
from gql_media.adapters.store.bulk import KEPT_INDEXES, finish_bulk_load
from gql_media.adapters.store.index import IndexStore
from gql_media.adapters.store.reads import LibraryReads, VideoQuery, VideoSort
from gql_media.adapters.store.sqlite_backend import WAL_SIZE_LIMIT_BYTES
from gql_media.core.models import EntryKind, IndexedEntry, Move, NewVideo, ScanEntry, SyncPlan
from gql_media.services import Services
from tests.adapters.test_bulk_index import _schema
from tests.conftest import run_sync

BATCH = 3000  # two bulk writes of 3,000: the load opens at the second (past the minimum of 5,000)


async def _names(reads: LibraryReads, text: str) -> list[str]:
    page = await reads.video_page(VideoQuery(name_contains=text), VideoSort(), None, 10)
    return [video.name for video in page.rows]


async def _marker(services: Services) -> list[tuple[object, ...]]:
    async with services.db.reading() as conn:
        return await conn.fetch("SELECT first_video_id FROM bulk_loads")


async def _autocheckpoint(services: Services) -> int:
    """The writer connection's WAL checkpoint threshold (pages)."""
    async with services.db.writing() as conn:
        row = await conn.fetch_one("PRAGMA wal_autocheckpoint")
    assert row is not None
    return int(row[0])


async def _search_is_sound(services: Services) -> None:
    """FTS5's own check of the search table against the videos (raises if they differ)."""
    if services.db.dialect == "sqlite":
        async with services.db.writing() as conn:
            await conn.execute("INSERT INTO videos_search (videos_search, rank) VALUES ('integrity-check', 1)")


async def _insert(services: Services, batch: int, store: IndexStore | None = None) -> list[NewVideo]:
    root = services.roots[0]
    store = store or services.index
    _folder, first = await store.reserve_ids(0, BATCH)
    rows = [
        NewVideo(first + n, root.id, root.folder_id,
                 ScanEntry(EntryKind.VIDEO, f"new {batch} {n:04d}.mp4", None, 10, 1, 0, 0))
        for n in range(BATCH)
    ]  # fmt: skip
    await store.insert_videos(rows, bulk=True)
    return rows


def _indexed(video: NewVideo) -> IndexedEntry:
    return IndexedEntry(EntryKind.VIDEO, video.id, video.root_id, video.entry.path, 10, 1, 0, 0)


async def test_reads_stay_right_while_a_bulk_load_is_open(services: Services, library: Path) -> None:
    for name in ("old alpha.mp4", "old beta.mp4", "old gamma.mp4"):
        (library / name).write_bytes(b"")
    await run_sync(services, library)
    before = await _schema(services)
    reads = LibraryReads(services.db)
    old = {v.name: v for v in (await reads.video_page(VideoQuery(), VideoSort(), None, 10)).rows}

    await services.index.begin_bulk_load()
    first = await _insert(services, 0)
    second = await _insert(services, 1)

    sqlite = services.db.dialect == "sqlite"
    if sqlite:  # open between transactions: its marker committed (moved past the write that opened it,
        # whose videos the search table got), the secondary indexes gone but the kept ones
        assert await _marker(services) == [(second[-1].id + 1,)]
        assert {row[1] for row in await _schema(services) if row[0] == "index"} == KEPT_INDEXES
        assert await _autocheckpoint(services) == 0  # a reader checkpoints after each bulk write
    # Searches find the videos written before the load, in its first write and in the rest.
    assert await _names(reads, "old alpha") == ["old alpha.mp4"]
    assert await _names(reads, "new 0 0042") == ["new 0 0042.mp4"]
    assert await _names(reads, "new 1 2999") == ["new 1 2999.mp4"]
    assert len(await _names(reads, "new 1 00")) == 10
    # While open: an old video renamed, an old and a new one removed.
    alpha, beta = old["old alpha.mp4"], old["old beta.mp4"]
    renamed = ScanEntry(EntryKind.VIDEO, "renamed delta.mp4", None, alpha.size, alpha.mtime_ns, 0, 0)
    await services.index.apply_structure(
        SyncPlan(
            removed=[IndexedEntry(EntryKind.VIDEO, beta.id, beta.root_id, beta.path, 0, 0, 0, 0),
                     _indexed(second[7])],
            moves=[Move(EntryKind.VIDEO, alpha.id, alpha.root_id, alpha.path, alpha.root_id,
                        services.roots[0].folder_id, renamed)],
        )
    )  # fmt: skip
    assert await _names(reads, "old alpha") == []
    assert await _names(reads, "renamed delta") == ["renamed delta.mp4"]
    assert await _names(reads, "old beta") == []
    assert await _names(reads, "new 1 0007") == []
    assert await _names(reads, "old gamma") == ["old gamma.mp4"]

    await services.index.end_bulk_load()

    assert await _marker(services) == []
    assert await _schema(services) == before  # the same indexes and triggers, made from their statements
    if sqlite:
        await services.index.finish_checkpoints()  # (a reader copies the builds' pages, then the writer checkpoints)
        assert await _autocheckpoint(services) == 1000  # the writer checkpoints again, as SQLite's default
    await _search_is_sound(services)
    assert await _names(reads, "renamed delta") == ["renamed delta.mp4"]
    assert await _names(reads, "new 0 0042") == ["new 0 0042.mp4"]
    assert await _names(reads, "new 1 0007") == []
    assert await services.index.count_entries() == (1, 2 + 2 * BATCH - 1)
    assert not await finish_bulk_load(services.db)  # nothing left for a start-up to finish
    assert first[0].id < second[0].id


async def test_a_start_up_finishes_a_bulk_load_left_open(services: Services, library: Path) -> None:
    """What a kill between two batches leaves: a start-up (``finish_bulk_load``) closes it from its marker."""
    before = await _schema(services)
    killed = IndexStore(services.db)  # the store of the process killed in the middle of its job
    await killed.begin_bulk_load()
    await _insert(services, 0, killed)
    await _insert(services, 1, killed)
    # No end: the job was killed here.

    finished = await finish_bulk_load(services.db)

    assert finished == (services.db.dialect == "sqlite")
    assert await _marker(services) == []
    assert await _schema(services) == before
    await _search_is_sound(services)
    reads = LibraryReads(services.db)
    assert await _names(reads, "new 1 1234") == ["new 1 1234.mp4"]
    # The store keeps its search table from here on, row by row.
    (library / "later one.mp4").write_bytes(b"")
    await run_sync(services, library)
    await _search_is_sound(services)
    assert await _names(reads, "later one") == ["later one.mp4"]


async def test_the_wal_is_cut_back_after_a_bulk_load(
    services: Services, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk load's WAL (its checkpoints on a reader, the writer's off) does not keep its size after the load."""
    if services.db.dialect != "sqlite":
        pytest.skip("a SQLite WAL")
    async with services.db.writing() as conn:  # every connection has the limit
        row = await conn.fetch_one("PRAGMA journal_size_limit")
    assert row is not None and int(row[0]) == WAL_SIZE_LIMIT_BYTES
    # A limit this load's WAL outgrows, on connections opened from now on (the open ones close), and
    # the writer's checkpoint threshold after the load below its WAL (as a large load's WAL is).
    limit = 256 * 1024
    monkeypatch.setattr(store_index, "_WAL_AUTOCHECKPOINT_PAGES", 100)
    await services.db.disconnect()
    monkeypatch.setattr(
        sqlite_backend,
        "SQLITE_CONNECTION_PRAGMAS",
        (*sqlite_backend.SQLITE_CONNECTION_PRAGMAS, f"PRAGMA journal_size_limit = {limit}"),
    )
    await services.db.connect()
    assert services.db.sqlite_path is not None
    wal = services.db.sqlite_path.with_name(services.db.sqlite_path.name + "-wal")

    await services.index.begin_bulk_load()
    await _insert(services, 0)
    await _insert(services, 1)
    await services.index.end_bulk_load()
    grown = wal.stat().st_size
    assert grown > limit
    # The writer's next commits: one checkpoints all of the WAL (the writer checkpoints again), the
    # next starts it over from its beginning and cuts the file back to the limit (the commits after
    # it add their own pages again).
    root = services.roots[0]
    for n in range(3):
        _folder, video_id = await services.index.reserve_ids(0, 1)
        entry = ScanEntry(EntryKind.VIDEO, f"after {n}.mp4", None, 10, 1, 0, 0)
        await services.index.insert_videos([NewVideo(video_id, root.id, root.folder_id, entry)])
    assert wal.stat().st_size <= limit < grown
    assert await services.index.count_entries() == (1, 2 * BATCH + 3)
