"""PyAvMediaTool on real media: probe values, thumbnails, placeholders, and a pool that survives."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from PIL import Image, ImageStat

from gql_media.adapters.demo import ClipSpec, encode_clip, make_demo_library
from gql_media.adapters.media import PyAvMediaTool, WorkerCrashed
from gql_media.adapters.media.placeholder import ensure_placeholder
from gql_media.adapters.media.pool import WorkerPool
from gql_media.adapters.store.media import SqlMediaStore
from gql_media.core.hls import TEMP_PREFIX
from gql_media.core.media_work import MediaWork
from gql_media.core.models import VideoStatus
from gql_media.core.ports import MediaError
from gql_media.core.thumbnails import ThumbnailSpec
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import run_sync
from tests.media_fixtures import Clips, make_clips
from tests.media_hooks import TEST_OPERATIONS, failing_setup
from tests.video_sql import VIDEOS


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture
async def tool() -> AsyncIterator[PyAvMediaTool]:
    async with PyAvMediaTool(workers=1, timeout_s=20, operations=TEST_OPERATIONS) as media:
        yield media


@pytest.mark.parametrize(
    ("name", "codecs", "container", "size"),
    [
        ("h264_mp4", ("h264", "aac"), "mp4", (64, 48)),
        ("vp9_webm", ("vp9", "opus"), "webm", (64, 48)),
        ("mpeg4_avi", ("mpeg4", "mp3"), "avi", (64, 48)),
        ("portrait_mp4", ("h264", "aac"), "mp4", (48, 64)),
        ("ts_segment", ("h264", "aac"), "mpegts", (64, 48)),
    ],
)
async def test_probe_reports_what_was_encoded(
    tool: PyAvMediaTool, clips: Clips, name: str, codecs: tuple[str, str], container: str, size: tuple[int, int]
) -> None:
    path = getattr(clips, name)
    info = await tool.probe(str(path))
    assert info.status is VideoStatus.READY, info.error
    assert (info.video_codec, info.audio_codec) == codecs
    assert info.container == container
    assert (info.width, info.height) == size
    assert info.duration_s is not None
    expected_s = 1.0 if name == "ts_segment" else 2.0
    assert abs(info.duration_s - expected_s) < 0.2
    assert info.bitrate is not None and info.bitrate > 0
    assert info.error is None


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "empty file"),
        ("truncated", "damaged/truncated"),
        ("fake", "not a video"),
        ("audio_only", "no video stream (audio only)"),
    ],
)
async def test_undecodable_files_are_broken_with_a_reason(
    tool: PyAvMediaTool, clips: Clips, kind: str, reason: str, tmp_path: Path
) -> None:
    path = clips.broken[kind]
    info = await tool.probe(str(path))
    assert info.status is VideoStatus.BROKEN
    assert info.error is not None and reason in info.error
    # No thumbnail can come from it: the caller shows the placeholder.
    with pytest.raises(MediaError):
        await tool.make_thumbnail(str(path), str(tmp_path / "thumb.jpg"), 320)
    assert list(tmp_path.iterdir()) == []


async def test_a_missing_file_is_an_error_not_broken(tool: PyAvMediaTool, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        await tool.probe(str(tmp_path / "gone.mp4"))


async def test_a_non_utf8_name_is_probed_by_its_bytes(tool: PyAvMediaTool, clips: Clips, tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.mp4"
    with open(raw, "wb") as handle:
        handle.write(clips.h264_mp4.read_bytes())
    info = await tool.probe(raw)
    assert info.status is VideoStatus.READY


@pytest.mark.parametrize("name", ["h264_mp4", "vp9_webm", "mpeg4_avi", "ts_segment"])
async def test_thumbnails_are_decodable_images_of_the_configured_width(
    tool: PyAvMediaTool, clips: Clips, tmp_path: Path, name: str
) -> None:
    output = tmp_path / "thumbs" / "1-2-3.jpg"
    await tool.make_thumbnail(str(getattr(clips, name)), str(output), 320)
    with Image.open(output) as image:
        assert image.format == "JPEG"
        assert image.size == (320, 240)
        image.load()
    # Written atomically: nothing but the image is left.
    assert [p.name for p in output.parent.iterdir()] == ["1-2-3.jpg"]


async def test_webp_thumbnail_of_a_portrait_video(tool: PyAvMediaTool, clips: Clips, tmp_path: Path) -> None:
    output = tmp_path / "portrait.webp"
    await tool.make_thumbnail(str(clips.portrait_mp4), str(output), 200)
    with Image.open(output) as image:
        assert image.format == "WEBP"
        assert image.size == (200, 267)


async def test_thumbnail_skips_a_black_intro(tool: PyAvMediaTool, clips: Clips, tmp_path: Path) -> None:
    # 10% of 4 s is inside the 0.8 s black intro: the picture must come from later.
    output = tmp_path / "dark.jpg"
    await tool.make_thumbnail(str(clips.dark_intro_mp4), str(output), 64)
    with Image.open(output) as image:
        assert ImageStat.Stat(image.convert("L")).mean[0] > 40


_OTHER_THREADS_CPU_CODE = """
import sys, time
from gql_media.adapters.media.thumbnail import make_thumbnail
clip, folder = sys.argv[1], sys.argv[2]
make_thumbnail(clip, folder + "/warm.jpg", 320)
thread_before = time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)
process_before = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
for index in range(3):
    make_thumbnail(clip, f"{folder}/{index}.jpg", 320)
process_s = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) - process_before
print(process_s - (time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID) - thread_before))
"""


def test_a_thumbnail_runs_on_one_thread(tmp_path: Path) -> None:
    # A worker is one core's worth of work (the pool runs workers side by side). FFmpeg's scaler
    # starts a thread per CPU for each frame it converts unless told otherwise: with one worker
    # that borrowed the second core (P6's N/1 baseline), with two the four threads fought over two.
    clip = encode_clip(tmp_path / "wide.mp4", ClipSpec(width_px=640, height_px=360, fps=10, duration_s=1.0,
                                                      audio_codec=None))  # fmt: skip
    # In a process of its own, as in a worker: no thread of the test run's may count. Its clock
    # counts the CPU of threads that ended meanwhile; the main thread's clock does not.
    result = subprocess.run([sys.executable, "-c", _OTHER_THREADS_CPU_CODE, str(clip), str(tmp_path)],
                            capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    other_threads_s = float(result.stdout)
    assert other_threads_s < 50e-6, f"other threads used {other_threads_s:.6f} s of CPU"


async def test_a_worker_keeps_the_memory_of_its_last_thumbnail(tool: PyAvMediaTool, tmp_path: Path) -> None:
    # Each thumbnail opens a decoder and frees it all at the end. glibc gave that memory back to
    # the kernel (the heap's top past its small default trim threshold) and the next thumbnail
    # faulted it in again: ~210 page faults a thumbnail of bench P6's clips, ~10% of its CPU.
    clip = encode_clip(tmp_path / "clip.mp4", ClipSpec(width_px=320, height_px=180, fps=15, duration_s=3.0))
    for index in range(2):
        await tool.make_thumbnail(str(clip), str(tmp_path / f"warm-{index}.jpg"), 320)
    (pid,) = tool.worker_pids
    faults_before = _minor_faults(pid)
    for index in range(5):
        await tool.make_thumbnail(str(clip), str(tmp_path / f"{index}.jpg"), 320)
    assert (_minor_faults(pid) - faults_before) / 5 < 20


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[7])


def test_placeholder_is_made_once(tmp_path: Path) -> None:
    first = ensure_placeholder(tmp_path / "thumbs", 320, "jpeg")
    stamp = first.stat().st_mtime_ns
    assert ensure_placeholder(tmp_path / "thumbs", 320, "jpeg") == first
    assert first.stat().st_mtime_ns == stamp
    with Image.open(first) as image:
        assert image.size == (320, 180)
    webp = ensure_placeholder(tmp_path / "thumbs", 160, "webp")
    with Image.open(webp) as image:
        assert image.format == "WEBP"


async def test_a_crashed_worker_is_replaced(tool: PyAvMediaTool, clips: Clips) -> None:
    with pytest.raises(MediaError, match="crashed"):
        await tool.call("test_crash")
    assert tool.replaced_workers == 1
    info = await tool.probe(str(clips.h264_mp4))
    assert info.status is VideoStatus.READY


async def test_workers_ready_before_a_call_and_one_that_cannot_start_is_reported(clips: Clips) -> None:
    async with PyAvMediaTool(workers=2, timeout_s=20) as media:
        await media.wait_ready()
        assert media.replaced_workers == 0
        assert (await media.probe(str(clips.h264_mp4))).status is VideoStatus.READY
    pool = WorkerPool(TEST_OPERATIONS, workers=1, timeout_s=20, setup=failing_setup)
    try:
        with pytest.raises(WorkerCrashed, match="crashed"):
            await pool.wait_ready()
        with pytest.raises(WorkerCrashed, match="crashed"):
            await pool.call("test_sleep", 0.0)  # it, or its replacement, cannot start either
        # 1 or 2: the dead worker is replaced before the call when it was reaped already, else after.
        assert pool.replaced_workers >= 1
    finally:
        await pool.aclose()


@pytest.mark.parametrize("niceness", [0, 5, 19])
async def test_workers_run_at_the_configured_niceness(niceness: int) -> None:
    async with PyAvMediaTool(workers=1, timeout_s=20, operations=TEST_OPERATIONS, niceness=niceness) as media:
        assert await media.call("test_niceness") == ("ok", min(19, os.nice(0) + niceness))


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
@pytest.mark.parametrize("idle", [False, True])
async def test_workers_run_idle_when_asked(idle: bool) -> None:
    async with PyAvMediaTool(workers=1, timeout_s=20, operations=TEST_OPERATIONS, niceness=3, idle=idle) as media:
        policy = os.SCHED_IDLE if idle else os.sched_getscheduler(0)
        assert await media.call("test_policy") == ("ok", policy)
        assert await media.call("test_niceness") == ("ok", min(19, os.nice(0) + 3))


async def test_a_hanging_decode_times_out_and_the_file_is_broken(clips: Clips, tmp_path: Path) -> None:
    # Opening a FIFO with no writer blocks forever inside FFmpeg: a real hang, not a sleep.
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    async with PyAvMediaTool(workers=1, timeout_s=0.5) as media:
        info = await media.probe(str(fifo))
        assert info.status is VideoStatus.BROKEN
        assert info.error is not None and "timed out" in info.error
        assert media.replaced_workers == 1
        media.timeout_s = 20
        assert (await media.probe(str(clips.h264_mp4))).status is VideoStatus.READY


async def test_a_cancelled_call_does_not_confuse_the_next(tool: PyAvMediaTool, clips: Clips) -> None:
    task = asyncio.create_task(tool.call("test_sleep", 30.0))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    info = await tool.probe(str(clips.vp9_webm))
    assert info.video_codec == "vp9"


async def test_workers_run_side_by_side(clips: Clips) -> None:
    paths = [clips.h264_mp4, clips.vp9_webm, clips.mpeg4_avi, clips.portrait_mp4] * 3
    async with PyAvMediaTool(workers=2, timeout_s=20) as media:
        infos = await asyncio.gather(*(media.probe(str(p)) for p in paths))
    assert [i.status for i in infos] == [VideoStatus.READY] * len(paths)


async def test_closed_tool_refuses_work(clips: Clips) -> None:
    media = PyAvMediaTool(workers=1)
    await media.start()
    await media.aclose()
    with pytest.raises(MediaError, match="closed"):
        await media.probe(str(clips.h264_mp4))


def test_demo_library_is_real_and_idempotent(tmp_path: Path) -> None:
    make_demo_library(tmp_path)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert "Archive/broken.mp4" in files
    assert "Downloads/Lecture 1/index.m3u8" in files
    with av.open(str(tmp_path / "Holidays" / "beach.mp4")) as container:
        assert container.streams.video[0].codec_context.width == 320
    stamps = {f: (tmp_path / f).stat().st_mtime_ns for f in files}
    make_demo_library(tmp_path)
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in files} == stamps


async def _video_rows(services: Services) -> dict[str, tuple[object, ...]]:
    async with services.db.reading() as conn:
        rows = await conn.fetch(
            f"SELECT path, status, duration_s, width, height, video_codec, error, thumbnail_key FROM {VIDEOS}"
        )
    return {str(row[0]): tuple(row[1:]) for row in rows}


async def test_temp_files_a_killed_process_left_are_gone_before_a_thumbnail_is_made(
    clips: Clips, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    (library / "deep" / "er").mkdir(parents=True)
    shutil.copy(clips.h264_mp4, library / "clip.mp4")
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    settings.thumbnails_dir.mkdir(parents=True)
    stale = [library / "deep" / "er" / f"{TEMP_PREFIX}1.mp4", settings.thumbnails_dir / f"{TEMP_PREFIX}2.jpg"]
    for path in stale:
        path.write_bytes(b"partial")
    # The removal walks the roots beside start-up; the job's thumbnail step waits for it.
    async with open_services(settings) as services:
        await run_sync(services, library)
        rows = await _video_rows(services)
        assert isinstance(rows["clip.mp4"][-1], str)
        assert not any(path.exists() for path in stale)


async def test_a_sync_job_fills_in_media_thumbnails_and_merges(clips: Clips, tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(clips.h264_mp4, library / "clip.mp4")
    shutil.copy(clips.fake, library / "notes.mkv")
    shutil.copytree(clips.hls_template, library / "Downloads" / "Talk")
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    spec = ThumbnailSpec(str(settings.thumbnails_dir), 160, ".jpg")
    async with PyAvMediaTool(workers=2, timeout_s=20) as media, open_services(settings) as services:
        work = MediaWork(SqlMediaStore(services.db), media, spec, auto_merge=True, delete_source=False)
        services.runner.steps = list(work.steps())
        job = await run_sync(services, library)
        rows = await _video_rows(services)
        assert set(rows) == {"clip.mp4", "notes.mkv", "Downloads/Talk.mp4"}
        status, duration_s, width, height, codec, error, key = rows["clip.mp4"]
        assert (status, width, height, codec, error) == ("READY", 64, 48, "h264", None)
        assert isinstance(duration_s, float) and abs(duration_s - 2.0) < 0.2
        assert isinstance(key, str)
        with Image.open(settings.thumbnails_dir / key) as image:
            assert image.width == 160
        assert rows["notes.mkv"][0] == "BROKEN" and rows["notes.mkv"][-1] is None
        assert rows["Downloads/Talk.mp4"][0] == "READY" and rows["Downloads/Talk.mp4"][-1]
        assert [e.path for e in job.errors] == [str(library / "notes.mkv")]
        assert job.progress.phase is not None

        # A file replaced by different content gets a new thumbnail; the old one goes.
        shutil.copy(clips.portrait_mp4, library / "clip.mp4")
        await run_sync(services, library)
        rows = await _video_rows(services)
        new_key = rows["clip.mp4"][-1]
        assert isinstance(new_key, str) and new_key != key
        assert rows["clip.mp4"][2:4] == (48, 64)
        assert not (settings.thumbnails_dir / key).exists()

        # A removed video's thumbnail is removed with it; no second merge happened.
        (library / "clip.mp4").unlink()
        await run_sync(services, library)
        assert not (settings.thumbnails_dir / new_key).exists()
        assert sorted(p.name for p in (library / "Downloads").iterdir()) == ["Talk", "Talk.mp4"]
