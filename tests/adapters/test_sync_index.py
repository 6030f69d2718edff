"""The sync engine and job runner against real folders and a real SQLite file.

Past 400 lines, kept whole: one subject (a sync's result in the index, on disk operations a user
makes), 24 tests on the same helpers; split by operation they would repeat the set-up instead.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from gql_media.adapters.store.db import SQLITE_PAGE_BYTES
from gql_media.core.models import ChangeKind, JobState, SyncJob, SyncMode, SyncRequest, SyncTarget, SyncTrigger
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import disk_tree, ids_by_path, index_tree, run_sync, write
from tests.video_sql import VIDEOS


def write_videos(library: Path, count: int, *, folders: int) -> None:
    """``count`` small videos spread over ``folders`` folders: enough for a job that runs a while."""
    for i in range(count):
        write(library / f"d{i % folders}" / f"v{i}.mp4")


async def submit_and_wait_running(services: Services, mode: SyncMode) -> SyncJob:
    """Submit a manual sync of the roots and wait until the runner has a job running."""
    job = await services.runner.submit(SyncRequest(mode, SyncTrigger.MANUAL))
    while services.runner.current() is None:
        await asyncio.sleep(0.001)
    return job


async def test_first_sync_indexes_videos_and_folders(services: Services, library: Path) -> None:
    write(library / "a" / "one.mp4")
    write(library / "a" / "b" / "two.MKV")
    write(library / "notes.txt")
    write(library / ".hidden" / "x.mp4")
    write(library / "partial.mp4.part")
    write(library / "c" / "movie.webm.crdownload")

    job = await run_sync(services, library)

    assert job.state is JobState.SUCCEEDED
    assert await index_tree(services) == disk_tree(library)
    assert ("video", "a/b/two.MKV") in await index_tree(services)
    assert job.progress.added == 5  # a, a/b, c, one.mp4, two.MKV


async def test_renames_and_folder_moves_keep_ids(services: Services, library: Path) -> None:
    write(library / "shows" / "s1" / "e1.mp4", b"1")
    write(library / "shows" / "s1" / "e2.mp4", b"22")
    write(library / "film.mov", b"333")
    await run_sync(services, library)
    before = await ids_by_path(services)

    (library / "shows").rename(library / "series")
    (library / "film.mov").rename(library / "series" / "film-renamed.mov")
    job = await run_sync(services, library)

    after = await ids_by_path(services)
    assert job.progress.moved == 5
    assert job.progress.added == 0 and job.progress.removed == 0
    assert after[("folder", "series")] == before[("folder", "shows")]
    assert after[("folder", "series/s1")] == before[("folder", "shows/s1")]
    assert after[("video", "series/s1/e1.mp4")] == before[("video", "shows/s1/e1.mp4")]
    assert after[("video", "series/film-renamed.mov")] == before[("video", "film.mov")]
    assert await index_tree(services) == disk_tree(library)


async def test_swapped_names_keep_their_ids(services: Services, library: Path) -> None:
    write(library / "a.mp4", b"aaaa")
    write(library / "b.mp4", b"bb")
    await run_sync(services, library)
    before = await ids_by_path(services)
    (library / "a.mp4").rename(library / "tmp.mp4")
    (library / "b.mp4").rename(library / "a.mp4")
    (library / "tmp.mp4").rename(library / "b.mp4")

    await run_sync(services, library)

    after = await ids_by_path(services)
    assert after[("video", "b.mp4")] == before[("video", "a.mp4")]
    assert after[("video", "a.mp4")] == before[("video", "b.mp4")]


async def test_moving_a_file_out_of_a_deleted_folder_keeps_it(services: Services, library: Path) -> None:
    write(library / "old" / "keep.mp4", b"k")
    write(library / "old" / "drop.mp4", b"d")
    await run_sync(services, library)
    before = await ids_by_path(services)
    (library / "old" / "keep.mp4").rename(library / "keep.mp4")
    (library / "old" / "drop.mp4").unlink()
    (library / "old").rmdir()

    job = await run_sync(services, library)

    after = await ids_by_path(services)
    assert after[("video", "keep.mp4")] == before[("video", "old/keep.mp4")]
    assert await index_tree(services) == disk_tree(library)
    assert job.progress.removed == 2  # the folder and drop.mp4


async def test_removed_folder_removes_its_subtree_and_publishes_each(services: Services, library: Path) -> None:
    for i in range(20):
        write(library / "gone" / f"sub{i % 3}" / f"v{i}.mp4")
    write(library / "stay.mp4")
    await run_sync(services, library)
    changes = services.bus.subscribe_changes()
    for path in sorted((library / "gone").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (library / "gone").rmdir()

    job = await run_sync(services, library)

    assert job.progress.removed == 24
    assert await index_tree(services) == {("folder", ""), ("video", "stay.mp4")}
    seen = []
    async for change in changes:
        seen.append(change)
        if len(seen) == 24:
            break
    await changes.aclose()
    assert {c.kind for c in seen} == {ChangeKind.REMOVED}
    assert [c.sequence for c in seen] == sorted(c.sequence for c in seen)


async def test_changed_size_or_mtime_is_an_update(services: Services, library: Path) -> None:
    video = write(library / "clip.mp4", b"short")
    await run_sync(services, library)
    before = await ids_by_path(services)
    video.write_bytes(b"much longer now")
    os.utime(library, ns=(1, 1))  # the folder's own mtime changes too; that is an update of the folder

    job = await run_sync(services, library)

    assert job.progress.updated == 2
    assert (await ids_by_path(services))[("video", "clip.mp4")] == before[("video", "clip.mp4")]
    async with services.db.reading() as conn:
        row = await conn.fetch_one("SELECT size, status FROM videos")
    assert row == (len(b"much longer now"), "PENDING")


async def test_incremental_sync_touches_nothing_outside_its_scope(services: Services, library: Path) -> None:
    write(library / "inside" / "a.mp4")
    write(library / "outside" / "b.mp4")
    await run_sync(services, library)
    async with services.db.reading() as conn:
        outside_before = await conn.fetch(f"SELECT * FROM {VIDEOS} WHERE path LIKE 'outside/%' ORDER BY id")
    write(library / "inside" / "new.mp4")
    write(library / "outside" / "unseen.mp4")
    (library / "outside" / "b.mp4").write_bytes(b"changed")

    job = await run_sync(services, library / "inside")

    tree = await index_tree(services)
    assert ("video", "inside/new.mp4") in tree
    assert ("video", "outside/unseen.mp4") not in tree
    async with services.db.reading() as conn:
        outside_after = await conn.fetch(f"SELECT * FROM {VIDEOS} WHERE path LIKE 'outside/%' ORDER BY id")
    assert outside_after == outside_before
    assert job.progress.added == 1


async def test_shallow_scope_widens_for_new_and_vanished_folders(services: Services, library: Path) -> None:
    write(library / "stay.mp4")
    write(library / "old" / "deep" / "x.mp4", b"x")
    await run_sync(services, library)
    before = await ids_by_path(services)
    # A tree moved in whole (the watcher reports only its top folder) and a folder renamed.
    write(library.parent / "incoming" / "s" / "t" / "y.mp4")
    (library.parent / "incoming").rename(library / "incoming")
    (library / "old").rename(library / "new")

    await run_sync(services, library, recursive=False)

    after = await ids_by_path(services)
    assert await index_tree(services) == disk_tree(library)
    assert after[("video", "new/deep/x.mp4")] == before[("video", "old/deep/x.mp4")]


async def test_a_missing_root_removes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "nas"
    write(root / "a" / "b.mp4")
    settings = Settings(roots=[root], data_dir=tmp_path / "data", watch=False)
    async with open_services(settings) as services:
        await run_sync(services, root)
        before = await index_tree(services)
        root.rename(tmp_path / "unmounted")

        job = await run_sync(services, root)

        assert job.progress.removed == 0
        assert any("missing" in e.message for e in job.errors)
        assert await index_tree(services) == before


async def test_non_utf8_names_are_indexed_and_keep_their_bytes(services: Services, library: Path) -> None:
    raw_dir = os.fsencode(library) + b"/caf\xe9"
    os.mkdir(raw_dir)
    with open(raw_dir + b"/clip\xff.mp4", "wb") as handle:
        handle.write(b"v")

    await run_sync(services, library)

    async with services.db.reading() as conn:
        row = await conn.fetch_one(f"SELECT path, path_bytes FROM {VIDEOS}")
    assert row is not None
    assert row[0] == "caf\ufffd/clip\ufffd.mp4"
    assert bytes(row[1]) == b"caf\xe9/clip\xff.mp4"
    assert os.path.exists(os.fsencode(library) + b"/" + bytes(row[1]))

    # Renaming it is still a move, found through the raw bytes.
    os.rename(raw_dir + b"/clip\xff.mp4", raw_dir + b"/renamed\xfe.mp4")
    job = await run_sync(services, library)
    assert job.progress.moved == 1


async def test_symlinks_never_escape_the_root_and_loops_end(services: Services, library: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "secret" / "private.mp4")
    write(library / "real" / "v.mp4")
    (library / "escape").symlink_to(outside.parent)
    (library / "escape.mp4").symlink_to(outside)
    (library / "real" / "loop").symlink_to(library / "real")
    (library / "inner.mp4").symlink_to(library / "real" / "v.mp4")

    job = await run_sync(services, library)

    tree = await index_tree(services)
    assert not any("escape" in path or "private" in path for _, path in tree)
    assert ("video", "inner.mp4") in tree
    assert job.state is JobState.SUCCEEDED


async def test_a_resync_takes_no_symlink_for_the_file_it_points_at(
    services: Services, library: Path, tmp_path: Path
) -> None:
    """A folder of indexed videos settled at once on a resync (all unchanged) holds no symlink: a link
    whose target left the root has that file's very stamps (inode too), and must go all the same."""
    target = write(library / "real" / "v.mp4", b"video")
    (library / "links").mkdir()
    (library / "links" / "a.mp4").symlink_to(target)
    write(library / "links" / "b.mp4", b"another")
    await run_sync(services, library)
    assert {("video", "links/a.mp4"), ("video", "real/v.mp4")} <= set(await index_tree(services))

    unchanged = await run_sync(services, library)  # the link is followed, and found unchanged
    assert (unchanged.progress.added, unchanged.progress.updated, unchanged.progress.removed) == (0, 0, 0)

    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(target, outside / "v.mp4")  # the same file (inode, size, mtime), now out of the root
    (library / "links" / "a.mp4").unlink()
    (library / "links" / "a.mp4").symlink_to(outside / "v.mp4")
    await run_sync(services, library)

    tree = set(await index_tree(services))
    assert ("video", "links/a.mp4") not in tree and ("video", "real/v.mp4") not in tree
    assert ("video", "links/b.mp4") in tree


async def test_a_file_vanishing_mid_walk_is_an_error_and_the_walk_goes_on(
    settings: Settings, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race is forced in this process: the first index walks in a thread here (``sync_walk_process``
    off), where the patched ``os.scandir`` is the one the walk calls (the walk's process runs the same scanner)."""
    for i in range(5):
        write(library / f"v{i}.mp4")
    real_scandir = os.scandir

    class VanishingListing:
        """The real listing; one file is deleted between listing it and reading it (the race, forced)."""

        def __init__(self, path: str) -> None:
            self._inner = real_scandir(path)

        def __enter__(self) -> VanishingListing:
            return self

        def __exit__(self, *exc: object) -> None:
            self._inner.close()

        def __iter__(self):  # type: ignore[no-untyped-def]
            entries = list(self._inner)
            (library / "v2.mp4").unlink(missing_ok=True)
            return iter(entries)

    async with open_services(settings.model_copy(update={"sync_walk_process": False}), media=False) as services:
        monkeypatch.setattr(os, "scandir", VanishingListing)
        job = await run_sync(services, library)
        monkeypatch.undo()

        assert job.state is JobState.SUCCEEDED
        assert any("v2.mp4" in e.path and "vanished" in e.message for e in job.errors)
        assert len([1 for kind, _ in await index_tree(services) if kind == "video"]) == 4


async def test_concurrent_requests_coalesce_without_locking_errors(services: Services, library: Path) -> None:
    for i in range(300):
        write(library / f"d{i % 30}" / f"v{i}.mp4")
    requests = [
        SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL, (SyncTarget(str(library / f"d{i % 30}")),))
        for i in range(100)
    ] + [SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL)] * 100

    jobs = await asyncio.gather(*(services.runner.submit(r) for r in requests))

    ids = {job.id for job in jobs}
    assert len(ids) <= 3
    finals = [await services.runner.wait(i, timeout_s=60) for i in ids]
    assert all(f is not None and f.state is JobState.SUCCEEDED for f in finals)
    assert not any("locked" in e.message for f in finals if f for e in f.errors)
    assert await index_tree(services) == disk_tree(library)


async def test_running_job_is_returned_for_a_covered_request(services: Services, library: Path) -> None:
    write_videos(library, 2000, folders=50)
    first = await submit_and_wait_running(services, SyncMode.INCREMENTAL)
    again = await services.runner.submit(
        SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL, (SyncTarget(str(library / "d3")),))
    )
    assert again.id == first.id
    await services.runner.wait(first.id, timeout_s=60)


async def test_cancel_stops_a_running_job_and_a_later_sync_completes(services: Services, library: Path) -> None:
    write_videos(library, 3000, folders=60)
    job = await submit_and_wait_running(services, SyncMode.FULL)

    await services.runner.cancel(job.id)
    final = await services.runner.wait(job.id, timeout_s=60)

    assert final is not None and final.state in (JobState.CANCELLED, JobState.SUCCEEDED)
    assert (await run_sync(services, library)).state is JobState.SUCCEEDED
    assert await index_tree(services) == disk_tree(library)


async def test_cancelling_a_queued_job(services: Services, library: Path) -> None:
    write_videos(library, 2000, folders=40)
    running = await submit_and_wait_running(services, SyncMode.FULL)
    # A running INCREMENTAL job does not cover a FULL request: that one is queued.
    await services.runner.cancel(running.id)
    await services.runner.wait(running.id, timeout_s=60)
    running = await submit_and_wait_running(services, SyncMode.INCREMENTAL)
    queued = await services.runner.submit(SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL))
    assert queued.id != running.id and queued.state is JobState.QUEUED
    cancelled = await services.runner.cancel(queued.id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    stored = await services.jobs.get_job(queued.id)
    assert stored is not None and stored.state is JobState.CANCELLED
    await services.runner.wait(running.id, timeout_s=60)


async def test_second_start_applies_no_migration_and_loses_nothing(settings: Settings, library: Path) -> None:
    from gql_media.adapters.store import migrate

    write(library / "kept.mp4")
    async with open_services(settings) as services:
        await run_sync(services, library)
        first = await ids_by_path(services)
    assert await migrate(settings.effective_database_url) is False
    async with open_services(settings) as services:
        assert await ids_by_path(services) == first
        jobs = await services.jobs.list_jobs(10)
        assert jobs and jobs[0].state is JobState.SUCCEEDED


async def test_sqlite_connections_enforce_foreign_keys_and_wal(tmp_path: Path, library: Path) -> None:
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    async with open_services(settings) as services:
        async with services.db.reading() as conn:
            assert await conn.fetch_one("PRAGMA foreign_keys") == (1,)
            assert await conn.fetch_one("PRAGMA journal_mode") == ("wal",)

        # Another task gets another connection from `databases`: the pragmas hold there too.
        async def other_task() -> tuple[object, ...] | None:
            async with services.db.reading() as conn:
                return await conn.fetch_one("PRAGMA foreign_keys")

        assert await asyncio.create_task(other_task()) == (1,)
    check = sqlite3.connect(settings.data_dir / "library.db")
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


async def test_a_new_sqlite_index_has_16k_pages_and_an_older_one_keeps_its_own(tmp_path: Path, library: Path) -> None:
    write(library / "a" / "v.mp4")
    for name, made_before in (("new", False), ("older", True)):
        data = tmp_path / name
        if made_before:  # an index made with SQLite's default pages (before they were 16 KiB)
            data.mkdir()
            sqlite3.connect(data / "library.db").execute("CREATE TABLE made_before (x)").connection.close()
        settings = Settings(roots=[library], data_dir=data, watch=False)
        async with open_services(settings, media=False) as services:
            await run_sync(services, library)
            assert await index_tree(services) == disk_tree(library)
            async with services.db.reading() as conn:
                assert await conn.fetch_one("PRAGMA page_size") == ((4096,) if made_before else (SQLITE_PAGE_BYTES,))
                assert await conn.fetch_one("PRAGMA journal_mode") == ("wal",)


async def test_an_emptied_root_is_kept_until_a_full_sync_confirms(services: Services, library: Path) -> None:
    write(library / "disk" / "a.mp4")
    write(library / "b.mp4")
    await run_sync(services, library)
    before = await index_tree(services)
    (library / "b.mp4").unlink()
    (library / "disk" / "a.mp4").unlink()
    (library / "disk").rmdir()  # what an unmounted drive looks like: an empty mount point

    job = await run_sync(services, library)

    assert job.progress.removed == 0
    assert any("FULL sync" in e.message for e in job.errors)
    assert await index_tree(services) == before
    full = await services.runner.submit(SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL))
    done = await services.runner.wait(full.id, timeout_s=60)
    assert done is not None and done.progress.removed == 3
    assert await index_tree(services) == {("folder", "")}


async def test_watcher_changes_during_a_running_job_are_queued_not_dropped(services: Services, library: Path) -> None:
    write_videos(library, 2000, folders=50)
    running = await submit_and_wait_running(services, SyncMode.INCREMENTAL)
    # The running job covers d3, but may already have walked past the file written now.
    write(library / "d3" / "late.mp4")
    late = await services.runner.submit(
        SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.WATCHER, (SyncTarget(str(library / "d3"), False),))
    )
    assert late.id != running.id
    await services.runner.wait(running.id, timeout_s=60)
    await services.runner.wait(late.id, timeout_s=60)
    assert ("video", "d3/late.mp4") in await index_tree(services)


async def test_a_root_left_with_only_other_files_is_synced_as_usual(services: Services, library: Path) -> None:
    write(library / "x" / "a.mp4")
    await run_sync(services, library)
    (library / "x" / "a.mp4").unlink()
    (library / "x").rmdir()
    write(library / "notes.txt")

    job = await run_sync(services, library)

    assert job.progress.removed == 2
    assert await index_tree(services) == {("folder", "")}
