"""Empty files on both backends: BROKEN ("empty file") in one write of the store, no media tool.

Real files, a real index (SQLite file or PostgreSQL) and the real media tool for the other files: an
empty file is decided set-wise (``SqlMediaStore.break_empty_videos``), published one UPDATED each
while few and one SUBTREE_CHANGED per topmost folder holding them past the summary threshold, and
a file that grows later is probed again by the sync that sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gql_media.adapters.demo import ClipSpec, encode_clip
from gql_media.adapters.store import media as store_media
from gql_media.adapters.store.media import SqlMediaStore
from gql_media.adapters.store.migrate import migrate
from gql_media.adapters.store.tables import video_path
from gql_media.core import job_state, media_work
from gql_media.core.models import ChangeKind, EntryKind, LibraryChange, SyncJob
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import ids_by_path, run_sync, write
from tests.video_sql import VIDEOS, VIDEOS_AS_V

NOTES = b"Just some notes, renamed to look like a video.\n" * 20


@pytest.fixture
def media_settings(settings: Settings) -> Settings:
    """The index on each backend, one media worker, and a summary threshold of 3 (the many case)."""
    return settings.model_copy(update={"media_workers": 1, "sync_summary_threshold": 3})


@pytest.fixture
async def media_services(media_settings: Settings) -> AsyncIterator[Services]:
    """The server's services with their media steps (the real media tool, the settings' threshold)."""
    async with open_services(media_settings) as opened:
        yield opened


async def _rows(services: Services) -> dict[str, tuple[object, ...]]:
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT path, status, error, thumbnail_key FROM {VIDEOS}")
    return {str(row[0]): tuple(row[1:]) for row in rows}


async def _synced_with_changes(services: Services, *targets: Path) -> tuple[SyncJob, list[LibraryChange]]:
    """Run a sync and return it with the changes its job published (read up to a marker published after it)."""
    subscription = services.bus.subscribe_changes()
    events = aiter(subscription)
    try:
        job = await run_sync(services, *targets)
        await services.bus.publish_change(LibraryChange(ChangeKind.RESYNC, None, None, None, None, None, job_id=-1))
        changes: list[LibraryChange] = []
        while (change := await anext(events)).job_id != -1:
            changes.append(change)
    finally:
        await subscription.aclose()
    return job, [change for change in changes if change.job_id == job.id]


async def test_few_empty_files_end_broken_one_event_each_and_a_file_that_grows_is_probed_again(
    media_services: Services, library: Path, tmp_path: Path
) -> None:
    services = media_services
    write(library / "a" / "one.mp4", b"")
    write(library / "a" / "two.mkv", b"")
    write(library / "a" / "notes.mkv", NOTES)
    # A folder's sync: the probe step reads the videos the job names.
    job, changes = await _synced_with_changes(services, library / "a")
    rows = await _rows(services)
    assert rows["a/one.mp4"] == ("BROKEN", "empty file", None)
    assert rows["a/two.mkv"] == ("BROKEN", "empty file", None)
    status, error, _key = rows["a/notes.mkv"]
    assert status == "BROKEN" and error not in (None, "empty file")  # the media tool's verdict
    assert sorted((e.path, e.message) for e in job.errors if e.message == "empty file") == [
        (str(library / "a" / "one.mp4"), "empty file"),
        (str(library / "a" / "two.mkv"), "empty file"),
    ]
    assert job.progress.failed == 3
    ids = await ids_by_path(services)
    updated = sorted(c.id or 0 for c in changes if c.kind is ChangeKind.UPDATED and c.entry_kind is EntryKind.VIDEO)
    assert updated == sorted(ids[("video", f"a/{name}")] for name in ("one.mp4", "two.mkv", "notes.mkv"))
    assert all(c.root_path == str(library) for c in changes if c.kind is ChangeKind.UPDATED)

    # It grows into a real video: the next sync probes it (READY, with a thumbnail); the other stays as it was.
    encode_clip(tmp_path / "clip.mp4", ClipSpec(width_px=64, height_px=48, fps=10, duration_s=1.0))
    (library / "a" / "one.mp4").write_bytes((tmp_path / "clip.mp4").read_bytes())
    job, changes = await _synced_with_changes(services, library)
    rows = await _rows(services)
    status, error, key = rows["a/one.mp4"]
    assert (status, error) == ("READY", None) and isinstance(key, str)
    assert rows["a/two.mkv"] == ("BROKEN", "empty file", None)
    assert job.errors == () and job.progress.failed == 0
    assert {c.id for c in changes if c.kind is ChangeKind.UPDATED and c.entry_kind is EntryKind.VIDEO} == {
        ids[("video", "a/one.mp4")]
    }

    # Emptied again: BROKEN, and its thumbnail is forgotten (the placeholder is shown).
    (library / "a" / "one.mp4").write_bytes(b"")
    job, _changes = await _synced_with_changes(services, library)
    assert (await _rows(services))["a/one.mp4"] == ("BROKEN", "empty file", None)
    assert [(e.path, e.message) for e in job.errors] == [(str(library / "a" / "one.mp4"), "empty file")]
    assert not (services.settings.thumbnails_dir / key).exists()


async def test_many_empty_files_are_summarised_by_folder_and_their_errors_past_the_kept_counted(
    media_services: Services, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = media_services
    # A job keeps this many errors (job_state), and the probe step lists no more of the empty files.
    monkeypatch.setattr(job_state, "MAX_ERRORS_KEPT", 5)
    monkeypatch.setattr(media_work, "MAX_ERRORS_KEPT", 5)
    for name in ("x1", "x2", "x3"):
        write(library / "a" / f"{name}.mp4", b"")
    for name in ("y1", "y2", "y3"):
        write(library / "a" / "b" / f"{name}.mp4", b"")
    for name in ("z1", "z2"):
        write(library / "c" / f"{name}.mp4", b"")
    write(library / "d" / "notes.mkv", NOTES)
    job, changes = await _synced_with_changes(services, library)
    rows = await _rows(services)
    empties = [path for path in rows if path != "d/notes.mkv"]
    assert len(empties) == 8 and all(rows[path] == ("BROKEN", "empty file", None) for path in empties)
    ids = await ids_by_path(services)
    # The sync's own summary (its whole root: "") and the probe's: the topmost folders holding them.
    subtrees = sorted((c.path or "", c.id) for c in changes if c.kind is ChangeKind.SUBTREE_CHANGED)
    assert subtrees == [("", ids[("folder", "")]), ("a", ids[("folder", "a")]), ("c", ids[("folder", "c")])]
    # No event per empty file; the probed one has its own.
    updated = [c.id for c in changes if c.kind is ChangeKind.UPDATED and c.entry_kind is EntryKind.VIDEO]
    assert updated == [ids[("video", "d/notes.mkv")]]
    # Five listed (the first by name), every one counted.
    assert [(e.path, e.message) for e in job.errors] == [
        (str(library / path), "empty file") for path in ("a/x1.mp4", "a/x2.mp4", "a/x3.mp4", "a/b/y1.mp4", "a/b/y2.mp4")
    ]
    assert job.progress.failed == 9


@pytest.mark.parametrize("update_rows", [5000, 1])
async def test_the_store_breaks_the_empty_files_of_roots_and_of_ids_once_each(
    tmp_path: Path, database_url: str, update_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1: every empty file in a transaction of its own (a part of many rows takes several).
    monkeypatch.setattr(store_media, "_EMPTY_UPDATE_ROWS", update_rows)
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        write(root / "e1.mp4", b"")
        write(root / "sub" / "e2.mp4", b"")
        write(root / "full.mp4", b"x")
    settings = Settings(roots=[first, second], data_dir=tmp_path / "data", database_url=database_url, watch=False)
    async with open_services(settings, media=False) as services:
        await run_sync(services, first, second)
        store = SqlMediaStore(services.db)
        async with services.db.reading() as conn:
            rows = await conn.fetch(f"SELECT v.id, r.path, v.path FROM {VIDEOS_AS_V} JOIN roots r ON r.id = v.root_id")
        by_path = {(str(row[1]), str(row[2])): int(row[0]) for row in rows}
        first_id = next(root.id for root in services.roots if root.path == str(first))
        # The first root whole, and by id one of its files again, one of the second root and a full file.
        named = [
            by_path[(str(first), "e1.mp4")],
            by_path[(str(second), "sub/e2.mp4")],
            by_path[(str(second), "full.mp4")],
        ]
        empty = await store.break_empty_videos([first_id], named, "empty file", listed=2, folders_over=0)
        assert empty.count == 3
        assert empty.videos == [
            (by_path[(str(first), "e1.mp4")], first_id, str(first), "e1.mp4"),
            (by_path[(str(first), "sub/e2.mp4")], first_id, str(first), "sub/e2.mp4"),
        ]
        assert [(root_id == first_id, path) for _id, root_id, path in empty.folders] == [
            (True, ""),
            (True, "sub"),
            (False, "sub"),
        ]
        async with services.db.reading() as conn:
            statuses = {(str(r[0]), str(r[1])): (str(r[2]), r[3]) for r in await conn.fetch(
                f"SELECT r.path, v.path, v.status, v.error FROM {VIDEOS_AS_V}"
                " JOIN roots r ON r.id = v.root_id")}  # fmt: skip
        assert statuses == {
            (str(first), "e1.mp4"): ("BROKEN", "empty file"),
            (str(first), "sub/e2.mp4"): ("BROKEN", "empty file"),
            (str(first), "full.mp4"): ("PENDING", None),
            (str(second), "e1.mp4"): ("PENDING", None),  # neither in the roots nor named
            (str(second), "sub/e2.mp4"): ("BROKEN", "empty file"),
            (str(second), "full.mp4"): ("PENDING", None),
        }
        # Done already: nothing is counted twice; few (not over ``folders_over``): no folders.
        again = await store.break_empty_videos([first_id], named, "empty file", listed=10, folders_over=5)
        assert (again.count, again.videos, again.folders) == (0, [], [])
        assert (await store.break_empty_videos([], [], "empty file", listed=1, folders_over=0)).count == 0


def test_the_pending_and_empty_searches_are_ranges_of_the_status_index(tmp_path: Path) -> None:
    """SQLite's plans of ``count_videos`` and of ``break_empty_videos``'s roots part: the PENDING range of
    ix_videos_status. With the root's or the size's index SQLite read every video of the root (a count of
    10 PENDING among 300k videos: 42 ms against 0.03 ms) or every empty file, BROKEN ones too."""
    url = f"sqlite:///{tmp_path / 'library.db'}"
    asyncio.run(migrate(url))
    statements = [
        "SELECT COUNT(*) FROM videos WHERE status = ? AND +root_id IN (?, ?)",
        "SELECT COUNT(*) FROM videos WHERE status = ? AND +size = 0 AND +root_id IN (?, ?)",
        f"SELECT v.id, v.root_id, r.path, {video_path()} FROM videos v JOIN folders vf ON vf.id = v.folder_id"
        " JOIN roots r ON r.id = v.root_id WHERE v.status = ? AND +v.size = 0 AND +v.root_id IN (?, ?)"
        " ORDER BY v.name, v.id LIMIT 10",
        "SELECT id, root_id, path FROM folders WHERE id IN"
        " (SELECT folder_id FROM videos WHERE status = ? AND +size = 0 AND +root_id IN (?, ?))",
        "UPDATE videos SET status = 'BROKEN' WHERE status = ? AND +size = 0 AND +root_id IN (?, ?)",
    ]
    with contextlib.closing(sqlite3.connect(tmp_path / "library.db")) as db:
        for sql in statements:
            plan = " | ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ["PENDING", 1, 2]))
            assert "USING INDEX ix_videos_status (status=?)" in plan and "TEMP B-TREE" not in plan, (sql, plan)
