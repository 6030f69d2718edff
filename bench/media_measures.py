"""P6 (thumbnails) and P7 (HLS merge): gql_media's PyAV workers against what a user would run instead.

The ffmpeg CLI here is imageio-ffmpeg's static binary (the ``bench`` extra); gql_media never uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import assets
from bench.measures import Bench, Row
from gql_media.adapters.media import PyAvMediaTool
from gql_media.core.hls import MARKER_NAME, parse_playlist

THUMBNAIL_WIDTH = 320


# ---------------------------------------------------------------------------------------------- P6


_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu_s(pid: int) -> float:
    """A process's CPU time (all its threads, ended ones included) from ``/proc``; 0 where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_S


class _PoolTimes:
    """One pool's reps: the wall of each, and the CPU its workers and this process used in them."""

    def __init__(self) -> None:
        self.walls_s: list[float] = []
        self.workers_cpu_s = 0.0
        self.parent_cpu_s = 0.0


async def _thumbnail_reps(
    clips: list[Path], out_dir: Path, pool_sizes: tuple[int, ...], reps: int
) -> dict[int, _PoolTimes]:
    """Time thumbnailing every clip with each pool of PyAV workers, a rep of each in turn.

    Every pool's workers are started and have made one thumbnail each before any clock starts.
    The pools alternate rep by rep (the order swapped every rep): all of one pool's reps, then all
    of the other's, put a drift of a shared machine between the two sides of N/1. The CPU time of
    the workers and of this process (the pool's side: dispatch, pickling, the event loop) is
    summed over the reps: on a loaded machine it says more than the walls.
    """
    times = {size: _PoolTimes() for size in pool_sizes}
    async with contextlib.AsyncExitStack() as stack:
        tools = {size: await stack.enter_async_context(PyAvMediaTool(size, timeout_s=60)) for size in pool_sizes}
        for size, tool in tools.items():
            await tool.wait_ready()
            warm = [tool.make_thumbnail(str(clips[i]), str(out_dir / f"warm-{size}-{i}.jpg"), THUMBNAIL_WIDTH)
                    for i in range(size)]  # fmt: skip
            await asyncio.gather(*warm)
        for rep in range(reps):
            for size in pool_sizes if rep % 2 == 0 else pool_sizes[::-1]:
                tool, pool = tools[size], times[size]
                workers_before = sum(_process_cpu_s(pid) for pid in tool.worker_pids)
                parent_before = time.process_time()
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        tool.make_thumbnail(str(clip), str(out_dir / f"{size}-{rep}-{index}.jpg"), THUMBNAIL_WIDTH)
                        for index, clip in enumerate(clips)
                    )
                )
                pool.walls_s.append(time.perf_counter() - started)
                pool.parent_cpu_s += time.process_time() - parent_before
                pool.workers_cpu_s += sum(_process_cpu_s(pid) for pid in tool.worker_pids) - workers_before
    return times


def _ffmpeg_thumbnail(ffmpeg: str, clip: Path, output: Path) -> None:
    # What a user would script: seek to 10% of the clip, one frame, scaled like ours.
    command = [ffmpeg, "-nostdin", "-v", "error", "-ss", "0.3", "-i", str(clip), "-frames:v", "1",
               "-vf", f"scale={THUMBNAIL_WIDTH}:-2", "-q:v", "4", "-y", str(output)]  # fmt: skip
    subprocess.run(command, check=True, timeout=60, stdin=subprocess.DEVNULL)


def _cli_reps(ffmpeg: str, clips: list[Path], out_dir: Path, parallel: int, reps: int) -> list[float]:
    times: list[float] = []
    with ThreadPoolExecutor(parallel) as pool:
        for rep in range(reps):
            started = time.perf_counter()
            jobs = [pool.submit(_ffmpeg_thumbnail, ffmpeg, clip, out_dir / f"cli-{rep}-{i}.jpg")
                    for i, clip in enumerate(clips)]  # fmt: skip
            for job in jobs:
                job.result()
            times.append(time.perf_counter() - started)
    return times


def measure_p6(bench: Bench) -> Row:
    import imageio_ffmpeg

    count = bench.sizes.clips
    clips = assets.clips(bench.workdir, count)
    workers = max(2, os.cpu_count() or 1)
    out_dir = bench.fresh_data_dir("p6")
    out_dir.mkdir(parents=True)
    reps = bench.sizes.media_reps
    # A rep of our pools takes 0.05-0.2 s: more of them steady the medians (a CLI rep takes ~1 s).
    pool_reps = 2 * reps + 1
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    pools = asyncio.run(_thumbnail_reps(clips, out_dir, (workers, 1), pool_reps))
    many, one = pools[workers].walls_s, pools[1].walls_s
    cli = _cli_reps(ffmpeg, clips, out_dir, workers, reps)
    shutil.rmtree(out_dir, ignore_errors=True)
    many_s, one_s, cli_s = (statistics.median(t) for t in (many, one, cli))
    speedup = cli_s / many_s
    scaling = one_s / many_s
    # CPU per thumbnail (ms): the workers' and this process's. N/1 on 2 cores is near 2 when the
    # workers' CPU stays the same with 2 and this process's is small beside it.
    thumbnails = count * pool_reps
    cpu_ms = {size: (1e3 * pool.workers_cpu_s / thumbnails, 1e3 * pool.parent_cpu_s / thumbnails)
              for size, pool in pools.items()}  # fmt: skip
    cpu_text = ", ".join(f"{size}: {ms[0]:.2f} + {ms[1]:.2f}" for size, ms in cpu_ms.items())
    bench.log(f"P6: {workers} workers {count / many_s:.0f}/s, 1 worker {count / one_s:.0f}/s, "
              f"ffmpeg CLI x{workers} {count / cli_s:.0f}/s; "
              f"CPU ms a thumbnail, workers + parent: {cpu_text}")  # fmt: skip
    row = Row(
        "P6", f"thumbnails of {count} real clips, {workers} workers vs ffmpeg CLI x{workers}", ">= 5x; N/1 >= 1.7"
    )
    row.ours_s, row.reference_s, row.ratio = many_s, cli_s, speedup
    row.value, row.unit = round(count / many_s, 1), "thumbs/s"
    row.ok = speedup >= 5 and (scaling >= 1.7 or (os.cpu_count() or 1) < 2)
    row.n, row.reps = count, pool_reps
    row.note = (
        f"ratio = CLI time / ours; N/1 = {scaling:.2f}; 1 worker {count / one_s:.0f}/s; CLI {count / cli_s:.0f}/s"
    )
    row.extra = {"workers": workers, "per_s_n": count / many_s, "per_s_1": count / one_s,
                 "per_s_cli": count / cli_s, "n_over_1": scaling, "speedup_vs_cli": speedup,
                 "cpu_ms_per_thumbnail": {str(size): {"workers": round(workers_ms, 3), "parent": round(parent_ms, 3)}
                                          for size, (workers_ms, parent_ms) in cpu_ms.items()}}  # fmt: skip
    return row


# ---------------------------------------------------------------------------------------------- P7


@dataclass
class _MergeReps:
    """The walls of each merge and byte copy, and the CPU all of them used (the load-independent side)."""

    merges_s: list[float] = field(default_factory=list)
    copies_s: list[float] = field(default_factory=list)
    merges_cpu_s: float = 0.0  # the worker's and its merge helper's (``tail_demux``)
    copies_cpu_s: float = 0.0  # this thread's, copying


def _process_tree_cpu_s(pid: int) -> float:
    """The CPU time of ``pid`` and of its child processes alive now (a worker's merge helper)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listed:
                children += [int(child) for child in listed.read().split()]
    return _process_cpu_s(pid) + sum(_process_cpu_s(child) for child in children)


async def _merge_and_copy_reps(playlist_path: Path, reps: int) -> _MergeReps:
    """Merges and byte copies of the same segments, one of each per rep, the order swapped every rep.

    Both sides warm up once untimed (the page cache; the worker's first merge pays FFmpeg's own
    first-use set-up, and forks its helper) and run at the same priority: the worker gets the
    bench's niceness, not the server's default of 10 below it, which on a busy machine starves the
    merge beside the copy.
    """
    times = _MergeReps()
    async with PyAvMediaTool(1, timeout_s=600, niceness=0) as tool:
        await tool.wait_ready()  # the worker's own start (importing av) is not a merge's cost
        _byte_copy(playlist_path)
        await _timed_merge(tool, playlist_path)
        (worker,) = tool.worker_pids
        for rep in range(reps):
            if rep % 2:
                _timed_copy(playlist_path, times)
            before = _process_tree_cpu_s(worker)
            times.merges_s.append(await _timed_merge(tool, playlist_path))
            times.merges_cpu_s += _process_tree_cpu_s(worker) - before
            if not rep % 2:
                _timed_copy(playlist_path, times)
    return times


def _timed_copy(playlist_path: Path, times: _MergeReps) -> None:
    before = time.thread_time()
    times.copies_s.append(_byte_copy(playlist_path))
    times.copies_cpu_s += time.thread_time() - before


async def _timed_merge(tool: PyAvMediaTool, playlist_path: Path) -> float:
    playlist = parse_playlist(str(playlist_path))
    started = time.perf_counter()
    output = await tool.merge_hls(playlist)
    elapsed = time.perf_counter() - started
    os.unlink(output)
    (playlist_path.parent / MARKER_NAME).unlink(missing_ok=True)
    return elapsed


# The byte copy's buffer, made once: ``shutil.copyfileobj`` allocated 1 MB per read, which cost a page
# fault per 4 KB while glibc gave it fresh pages (a new bench process: 22 ms a copy, CPU 15 ms) and
# nothing once it reused freed ones (after P1-P6 in the same process: 15 ms, CPU 8 ms), so P7's
# reference moved with what ran before it. Read into one buffer, the copy is that floor every time.
_COPY_BUFFER = bytearray(1 << 20)


def _byte_copy(playlist_path: Path) -> float:
    """The floor: the segments' bytes concatenated into one file, fsynced (ours fsyncs too)."""
    playlist = parse_playlist(str(playlist_path))
    target = playlist_path.parent.with_name("byte-copy.ts")
    view = memoryview(_COPY_BUFFER)
    started = time.perf_counter()
    with target.open("wb", buffering=0) as out:
        for segment in playlist.segment_paths:
            with open(segment, "rb", buffering=0) as source:
                while read := source.readinto(view):
                    written = 0
                    while written < read:  # (a raw write may take less than it is given)
                        written += out.write(view[written:read])
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def _cpu_pressure_percent() -> str:
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as handle:
            return handle.readline().split()[1].partition("=")[2]
    except (OSError, IndexError):
        return "?"


def measure_p7(bench: Bench) -> Row:
    seconds = bench.sizes.hls_seconds
    playlist_path = assets.hls_download(bench.workdir, seconds)
    playlist = parse_playlist(str(playlist_path))
    reps = 2 * bench.sizes.media_reps + 1  # a rep is ~0.2 s: more of them steady the medians
    pressure_before = _cpu_pressure_percent()
    times = asyncio.run(_merge_and_copy_reps(playlist_path, reps))
    ours, reference = times.merges_s, times.copies_s
    pressure_after = _cpu_pressure_percent()
    merge_cpu_ms, copy_cpu_ms = 1e3 * times.merges_cpu_s / reps, 1e3 * times.copies_cpu_s / reps
    megabytes = playlist.total_bytes / 1e6
    row = Row("P7", f"HLS merge of a {seconds} s 720p download ({megabytes:.0f} MB) vs byte copy", "<= 3")
    row.ours_s, row.reference_s = statistics.median(ours), statistics.median(reference)
    row.ratio = row.ours_s / row.reference_s
    row.ok = row.ratio <= 3
    row.n, row.reps = len(playlist.segment_paths), reps
    # The worker demuxes half of a large download in a helper process unless the CPU is saturated
    # (tail_demux.cpu_busy: PSI "some" avg10 >= 90%): the pressure says which merge was timed.
    # CPU a merge (the worker's and its helper's, clock ticks summed over the reps) against a copy's:
    # on a loaded machine the walls say how the scheduler treated the two, the CPU what each costs.
    row.note = (
        "remux + fsync + verify vs cat + fsync, alternating;"
        f" CPU a merge {merge_cpu_ms:.1f} ms (worker + helper), a copy {copy_cpu_ms:.1f} ms;"
        f" CPU pressure (avg10) {pressure_before} -> {pressure_after}%"
    )
    row.extra = {"merge_cpu_ms": round(merge_cpu_ms, 2), "copy_cpu_ms": round(copy_cpu_ms, 2)}
    return row
