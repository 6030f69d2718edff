"""Faults: a full disk under thumbnails or a merge, a root that goes and comes back, a read-only
database, a killed media worker. Each gives a clear error, recovers without a restart, loses nothing.

Disk full is a real 2 MB tmpfs (we run as root); a read-only database is a read-only bind mount.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from gql_media.adapters.demo import ClipSpec, encode_clip, write_hls_folder
from gql_media.api import routes
from gql_media.core.hls import TEMP_PREFIX
from gql_media.core.models import JobState, SyncJob, VideoStatus
from gql_media.core.ports import StoreUnavailable
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import disk_tree, index_tree, run_sync
from tests.video_sql import VIDEOS

CLIPS = 30


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def tiny_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)):
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave_bytes: int) -> Path:
    """Fill the file system of ``folder`` up to ``leave_bytes`` free."""
    filler = folder / ".filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))
    return filler


@pytest.fixture
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", ClipSpec(duration_s=1.0))


def media_settings(tmp_path: Path, library: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "roots": [library],
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite:///{tmp_path / 'db' / 'library.db'}",
        "watch": False,
        "media_workers": 2,
        "media_timeout_s": 30.0,
    }
    values.update(overrides)
    (tmp_path / "db").mkdir(exist_ok=True)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def media_services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as services:
        yield services


async def video_rows(services: Services) -> dict[str, tuple[str, str | None, str | None]]:
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT path, status, thumbnail_key, error FROM {VIDEOS}")
    return {str(r[0]): (str(r[1]), r[2], r[3]) for r in rows}


def messages(job: SyncJob) -> list[str]:
    return [f"{e.path}: {e.message}" for e in job.errors]


async def test_disk_full_while_writing_thumbnails(tmp_path: Path, library: Path, clip: Path) -> None:
    for index in range(CLIPS):
        shutil.copyfile(clip, library / f"clip {index:02d}.mp4")
    settings = media_settings(tmp_path, library)
    with tiny_tmpfs(settings.thumbnails_dir):
        async with media_services(settings) as services:
            filler = fill(settings.thumbnails_dir, 16 * 1024)
            job = await run_sync(services, library)
            assert job.state is JobState.SUCCEEDED
            full = [m for m in messages(job) if "no thumbnail" in m]
            assert full, messages(job)
            assert all("disk full (no space left on device)" in m for m in full), full
            assert str(tmp_path / "data") not in " ".join(full)
            rows = await video_rows(services)
            assert all(status == "READY" for status, _key, _error in rows.values())
            # No partial image at a final name, no temp file left.
            for name in os.listdir(settings.thumbnails_dir):
                assert not name.startswith(TEMP_PREFIX), name
            made = {key for _status, key, _error in rows.values() if key}
            assert {n for n in os.listdir(settings.thumbnails_dir) if not n.startswith((".", "placeholder"))} <= made
            # Space again: the next sync makes what is missing, without a restart.
            filler.unlink()
            again = await run_sync(services, library)
            assert again.state is JobState.SUCCEEDED and not again.errors, messages(again)
            rows = await video_rows(services)
            assert all(key for _status, key, _error in rows.values())
            for key in {key for _status, key, _error in rows.values()}:
                assert key is not None and (settings.thumbnails_dir / key).stat().st_size > 0


async def test_disk_full_during_an_hls_merge(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "library") as library:
        write_hls_folder(library / "My Lecture", ClipSpec(duration_s=3.0))
        settings = media_settings(tmp_path, library)
        async with media_services(settings) as services:
            filler = fill(library, 8 * 1024)
            job = await run_sync(services, library)
            errors = messages(job)
            assert any("HLS merge failed" in m and "disk full" in m for m in errors), errors
            assert not (library / "My Lecture.mp4").exists()
            assert not list(library.rglob(f"{TEMP_PREFIX}*"))
            assert (library / "My Lecture" / "index.m3u8").exists()
            filler.unlink()
            again = await run_sync(services, library)
            assert again.state is JobState.SUCCEEDED and not again.errors, messages(again)
            assert (library / "My Lecture.mp4").stat().st_size > 0
            assert await index_tree(services) == disk_tree(library)


async def test_a_read_only_database_is_reported_then_the_watcher_catches_up(tmp_path: Path, library: Path) -> None:
    (library / "a.mp4").write_bytes(b"a")
    settings = media_settings(tmp_path, library, watch=True, settle_ms=100, max_wait_ms=500, file_settle_ms=200)
    db_dir = tmp_path / "db"
    async with open_services(settings, media=False) as services:
        await services.watcher.start()
        await wait_until(lambda: services.runner.current() is None, "the start-up sync")
        if not _mount("--bind", str(db_dir), str(db_dir)):
            pytest.skip("cannot bind-mount here")
        try:
            assert _mount("-o", "remount,ro,bind", str(db_dir))
            # A sync asked for now fails with a clear reason, in the database's own words.
            with pytest.raises(StoreUnavailable, match=r"index database cannot be written.*readonly"):
                await run_sync(services, library)
            # And an API client is told so, not "Internal server error".
            body = await _graphql(services, "mutation { syncLibrary { id } }")
            error = body["errors"][0]
            assert error["extensions"]["code"] == "STORE_UNAVAILABLE", body
            assert "cannot be written" in error["message"] and str(tmp_path) not in error["message"], body
            (library / "b.mp4").write_bytes(b"b")
            await wait_until(lambda: services.watcher.status().error is not None, "the watcher to report the failure")
            error = services.watcher.status().error
            assert error is not None and "could not queue a sync" in error
        finally:
            subprocess.run(["umount", "-l", str(db_dir)], check=False)
        # Writable again: the watcher retries by itself; the change made meanwhile is not lost.
        expected = disk_tree(library)

        async def caught_up() -> bool:
            return await index_tree(services) == expected

        await wait_until_async(caught_up, "the change made while read-only to be indexed")
        await wait_until(lambda: services.watcher.status().error is None, "the watcher error to clear")


async def _graphql(services: Services, query: str) -> dict[str, object]:
    """One GraphQL request through the real app, with these services."""
    app = Starlette(routes=routes(services.settings, lambda: services))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    async def wrapped() -> bool:
        return check()

    await wait_until_async(wrapped, what, timeout_s)


async def wait_until_async(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _media_worker_pids() -> list[int]:
    """This process's media worker children (``adapters/media/pool`` starts them with ``python -c``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent_pid = int(stat.rpartition(")")[2].split()[1])
        if parent_pid == os.getpid() and b"gql_media.adapters.media.pool" in cmdline:
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    """Running (a zombie, killed and not yet reaped by the pool, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_killed_media_workers_do_not_mark_good_files_broken(tmp_path: Path, library: Path, clip: Path) -> None:
    settings = media_settings(tmp_path, library)
    async with media_services(settings) as services:
        await run_sync(services, library)
        # The OOM killer (or an admin) kills the idle workers: found as the OS sees them, whatever
        # wraps the media tool.
        workers = _media_worker_pids()
        assert workers, "no media worker process is running"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: not any(_alive(pid) for pid in workers), "the killed workers to exit", 10)
        for index in range(6):
            shutil.copyfile(clip, library / f"clip {index}.mp4")
        job = await run_sync(services, library)
        rows = await video_rows(services)
        assert {path: status for path, (status, _k, _e) in rows.items()} == {
            f"clip {index}.mp4": str(VideoStatus.READY) for index in range(6)
        }, (rows, messages(job))
        assert all(key for _status, key, _error in rows.values())
