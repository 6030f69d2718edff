"""A media call past its timeout: a starved worker gets more time, a hung one is still stopped.

Real worker processes. Starvation is made exact rather than timed: the worker stops itself
(SIGSTOP, state ``T``, no CPU) and the test continues it only once the pool has seen the call's
deadline pass and chosen to wait, so no assertion depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from gql_media.adapters.media import PyAvMediaTool, WorkerFailure, WorkerStarved
from gql_media.adapters.store.media import SqlMediaStore
from gql_media.core.media_work import MediaWork
from gql_media.core.models import MediaInfo, VideoStatus
from gql_media.core.ports import MediaError
from gql_media.core.thumbnails import ThumbnailSpec
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import run_sync
from tests.media_fixtures import Clips, make_clips
from tests.media_hooks import SPINNING_PROBE_OPERATIONS, STOPPED_PROBE_OPERATIONS, TEST_OPERATIONS
from tests.video_sql import VIDEOS

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads the worker's /proc")

# Past this many periods a starved call would fail: far more than any test here waits.
_PATIENT = 100_000


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("clips"))


async def _wait_for_starved_wait(tool: PyAvMediaTool, task: asyncio.Task[Any]) -> None:
    while tool.starved_waits == 0:
        assert not task.done(), "the call ended at its deadline instead of waiting for its starved worker"
        await asyncio.sleep(0.02)


async def test_a_starved_worker_still_answers_and_the_file_is_not_broken(clips: Clips) -> None:
    async with PyAvMediaTool(
        workers=1, timeout_s=0.2, operations=STOPPED_PROBE_OPERATIONS, starved_periods=_PATIENT
    ) as tool:
        await tool.wait_ready()
        (pid,) = tool.worker_pids
        task: asyncio.Task[MediaInfo] = asyncio.create_task(tool.probe(str(clips.h264_mp4)))
        await _wait_for_starved_wait(tool, task)  # the deadline passed with the worker stopped
        os.kill(pid, signal.SIGCONT)
        info = await task
        assert info.status is VideoStatus.READY, info.error
        assert info.video_codec == "h264"
        assert tool.replaced_workers == 0
        assert tool.worker_pids == [pid]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not os.path.exists(f"/proc/self/task/{os.getpid()}/children"), reason="needs /proc children")
async def test_a_worker_waiting_on_its_starved_helper_still_answers() -> None:
    async with PyAvMediaTool(workers=1, timeout_s=0.2, operations=TEST_OPERATIONS, starved_periods=_PATIENT) as tool:
        await tool.wait_ready()
        (pid,) = tool.worker_pids
        task = asyncio.create_task(tool.call("test_wait_on_stopped_child"))
        # The worker sleeps on the helper's pipe (S); the helper is stopped (T): starved, not hung.
        await _wait_for_starved_wait(tool, task)
        while not (helpers := _children(pid)) or _state(helpers[0]) != "T":
            assert not task.done()
            await asyncio.sleep(0.02)
        os.kill(helpers[0], signal.SIGCONT)
        assert await task == ("ok", "helped")
        assert tool.replaced_workers == 0


async def test_a_worker_starved_past_the_wall_cap_leaves_the_file_pending(clips: Clips) -> None:
    async with PyAvMediaTool(workers=1, timeout_s=0.2, operations=STOPPED_PROBE_OPERATIONS, starved_periods=3) as tool:
        await tool.wait_ready()
        # Never continued: stopped through every period. A MediaError (the video stays PENDING,
        # ProbeStep reports it), never a BROKEN MediaInfo.
        with pytest.raises(MediaError, match="starved"):
            await tool.probe(str(clips.h264_mp4))
        assert tool.starved_waits == 2  # periods 2 and 3; the third deadline is the cap
        assert tool.replaced_workers == 1
        with pytest.raises(WorkerStarved):
            await tool.call("probe", str(clips.h264_mp4))


async def test_a_decoder_loop_still_times_out_and_the_file_is_broken() -> None:
    operations = {**TEST_OPERATIONS, **SPINNING_PROBE_OPERATIONS}
    async with PyAvMediaTool(workers=1, timeout_s=0.3, operations=operations, starved_periods=_PATIENT) as tool:
        await tool.wait_ready()
        (pid,) = tool.worker_pids
        # However slowly the loaded machine lets it spin, it burns its CPU budget (0.3 cpu_s).
        info = await tool.probe("/any/file.mp4")
        assert info.status is VideoStatus.BROKEN
        assert info.error is not None and "timed out" in info.error
        assert tool.replaced_workers == 1
        assert tool.worker_pids != [pid]
        assert await tool.call("test_niceness") == ("ok", min(19, os.nice(0) + 10))


async def test_a_worker_waiting_on_something_else_still_times_out() -> None:
    async with PyAvMediaTool(workers=1, timeout_s=0.3, operations=TEST_OPERATIONS, starved_periods=_PATIENT) as tool:
        await tool.wait_ready()
        # Asleep (state S): neither starved of CPU nor of the disk, so a hang as before.
        with pytest.raises(WorkerFailure, match="timed out") as raised:
            await tool.call("test_sleep", 3600.0)
        assert not isinstance(raised.value, WorkerStarved)
        assert tool.replaced_workers == 1


async def _statuses(services: Services) -> dict[str, tuple[object, object]]:
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT path, status, video_codec FROM {VIDEOS}")
    return {str(row[0]): (row[1], row[2]) for row in rows}


async def test_a_sync_whose_probe_was_starved_leaves_the_video_pending_then_probes_it(
    clips: Clips, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(clips.h264_mp4, library / "clip.mp4")
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    spec = ThumbnailSpec(str(settings.thumbnails_dir), 160, ".jpg")
    async with open_services(settings) as services:
        store = SqlMediaStore(services.db)
        async with PyAvMediaTool(timeout_s=0.2, operations=STOPPED_PROBE_OPERATIONS, starved_periods=2) as starved:
            services.runner.steps = list(MediaWork(store, starved, spec).steps())
            job = await run_sync(services, library)
        # The index keeps the video PENDING (never BROKEN); the job says why.
        assert await _statuses(services) == {"clip.mp4": ("PENDING", None)}
        assert [e.path for e in job.errors] == [str(library / "clip.mp4")]
        assert "starved" in job.errors[0].message
        async with PyAvMediaTool(timeout_s=20) as media:
            services.runner.steps = list(MediaWork(store, media, spec).steps())
            await run_sync(services, library)
        assert await _statuses(services) == {"clip.mp4": ("READY", "h264")}
