"""The measures: each returns one ``Row`` of the table. Sizes come from ``Sizes`` (full or quick)."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.library import Library, make_library, timed_walk_s, walk_tree
from bench.peak_rss import run_measured
from bench.sqlite_floor import replay_first_index
from gql_media.core.models import JobState, SyncJob, SyncMode, SyncRequest, SyncTarget, SyncTrigger
from gql_media.services import Services, open_services
from gql_media.settings import Settings


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big and how often: ``full`` is what the issue asks for, ``quick`` runs in under a minute."""

    files: int
    folders: int
    index_reps: int  # P1 and P2
    small_files: int  # P3's small library
    added_reps: int  # P3, per library
    rss_reps: int  # P10
    copy_reps: int  # P4, per library
    page_reps: int  # P5
    clips: int  # P6 (and P9's real clips)
    media_reps: int  # P6, P7
    hls_seconds: int  # P7
    subscribers: int  # P8
    p9_files: int  # P9's empty files (probed, found broken) beside its clips
    p9_idle_s: float  # P9's idle window
    soak_minutes: float  # S1


FULL = Sizes(files=100_000, folders=5_000, index_reps=5, small_files=1_000, added_reps=15, rss_reps=3,
             copy_reps=20, page_reps=30, clips=50, media_reps=3, hls_seconds=60, subscribers=1000,
             p9_files=10_000, p9_idle_s=5.0, soak_minutes=30)  # fmt: skip
QUICK = Sizes(files=10_000, folders=500, index_reps=3, small_files=1_000, added_reps=7, rss_reps=1,
              copy_reps=5, page_reps=10, clips=20, media_reps=2, hls_seconds=15, subscribers=200,
              p9_files=2_000, p9_idle_s=2.0, soak_minutes=1)  # fmt: skip


@dataclass(slots=True)
class Row:
    """One line of the table and one entry of results.json."""

    id: str
    title: str
    goal: str
    ours_s: float | None = None
    reference_s: float | None = None
    ratio: float | None = None
    value: float | None = None
    unit: str | None = None
    ok: bool | None = None
    n: int | None = None
    reps: int | None = None
    status: str = "measured"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"title": self.title, "goal": self.goal, "ok": self.ok, "status": self.status}
        if self.ratio is not None:
            data |= {"ours_s": _round(self.ours_s), "reference_s": _round(self.reference_s)}
            data["ratio"] = _round(self.ratio)
        if self.value is not None:
            data |= {"value": self.value, "unit": self.unit}
        if self.n is not None:
            data["n"] = self.n
        if self.reps is not None:
            data["reps"] = self.reps
        if self.note:
            data["note"] = self.note
        data |= self.extra
        return data


@dataclass(slots=True)
class Bench:
    """Where libraries and data dirs live, and the sizes of this run."""

    workdir: Path
    sizes: Sizes
    log: Callable[[str], None]

    def library(self, files: int, folders: int) -> Library:
        self.log(f"library of {files:,} files in {folders:,} folders")
        return make_library(self.workdir / f"library-{files}-{folders}", files, folders)

    def fresh_data_dir(self, name: str) -> Path:
        path = self.workdir / "data" / name
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def main_library(self) -> Library:
        return self.library(self.sizes.files, self.sizes.folders)


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


def _ratio_row(row: Row, ours: list[float], reference: list[float], goal_max: float, n: int) -> Row:
    """Medians of both sides; the ratio is median(ours) / median(reference)."""
    row.ours_s = statistics.median(ours)
    row.reference_s = statistics.median(reference)
    row.ratio = row.ours_s / row.reference_s if row.reference_s > 0 else float("inf")
    row.ok = row.ratio <= goal_max
    row.n = n
    row.reps = len(ours)
    return row


def _settings(library: Library, data_dir: Path) -> Settings:
    return Settings(roots=[library.root], data_dir=data_dir, watch=False)


async def _sync(
    services: Services,
    *targets: SyncTarget,
    trigger: SyncTrigger = SyncTrigger.MANUAL,
    mode: SyncMode = SyncMode.INCREMENTAL,
) -> SyncJob:
    request = SyncRequest(mode, trigger, targets)
    job = await services.runner.submit(request)
    final = await services.runner.wait(job.id, timeout_s=600)
    if final is None or final.state is not JobState.SUCCEEDED:
        raise RuntimeError(f"sync did not succeed: {final}")
    return final


# ---------------------------------------------------------------------------------------------- P1


async def _full_index(library: Library, data_dir: Path) -> float:
    async with open_services(_settings(library, data_dir), media=False) as services:
        started = time.perf_counter()
        final = await _sync(services, SyncTarget(str(library.root)))
        elapsed = time.perf_counter() - started
        folders, videos = await services.index.count_entries()
    if videos != library.files or final.progress.added < library.files:
        raise RuntimeError(f"full index holds {videos} videos, expected {library.files}")
    del folders
    return elapsed


def measure_p1(bench: Bench) -> Row:
    library = bench.main_library()
    row = Row("P1", f"full index, {library.files:,} files in {library.folders:,} folders, vs walk", "<= 3")
    ours: list[float] = []
    reference: list[float] = []
    walk_tree(str(library.root))  # warm the page cache for both sides
    floor: list[float] = []
    for rep in range(bench.sizes.index_reps):
        reference.append(timed_walk_s(library))
        data_dir = bench.fresh_data_dir("p1")
        ours.append(asyncio.run(_full_index(library, data_dir)))
        floor.append(replay_first_index(data_dir / "library.db", data_dir / "floor.db"))
        bench.log(
            f"P1 rep {rep + 1}: ours {ours[-1]:.3f} s, walk {reference[-1]:.3f} s;"
            f" SQLite alone {floor[-1]:.3f} s (bench/sqlite_floor.py)"
        )
    _ratio_row(row, ours, reference, 3.0, library.files)
    floor_s = statistics.median(floor)
    floor_ratio = floor_s / row.reference_s if row.reference_s else float("inf")
    row.extra["sqlite_alone_s"] = _round(floor_s)
    row.extra["sqlite_alone_ratio"] = _round(floor_ratio)
    row.note = (
        f"SQLite alone writing the same index the same way (plain sqlite3, no walk): {floor_s:.3f} s ="
        f" {floor_ratio:.2f}x the walk"
    )
    return row


# ---------------------------------------------------------------------------------------------- P2


async def _resyncs(
    bench: Bench, library: Library, data_dir: Path, *, media: bool = False
) -> tuple[list[float], list[float]]:
    """Unchanged resyncs of the library, each after a timed walk. ``media``: a server's FULL sync, its media
    steps after the index's (HLS merging, probing, thumbnails: nothing to do for an unchanged library)."""
    ours: list[float] = []
    reference: list[float] = []
    mode, side = (SyncMode.FULL, "with its media steps") if media else (SyncMode.INCREMENTAL, "")
    async with open_services(_settings(library, data_dir), media=media) as services:
        await _sync(services, SyncTarget(str(library.root)), mode=mode)
        for rep in range(bench.sizes.index_reps):
            reference.append(timed_walk_s(library))
            started = time.perf_counter()
            final = await _sync(services, SyncTarget(str(library.root)), mode=mode)
            ours.append(time.perf_counter() - started)
            p = final.progress
            if p.added or p.updated or p.removed or p.moved:
                raise RuntimeError(f"an unchanged resync changed the index: {p}")
            bench.log(
                f"P2 rep {rep + 1}{' ' + side if side else ''}: ours {ours[-1]:.3f} s, walk {reference[-1]:.3f} s"
            )
    return ours, reference


def measure_p2(bench: Bench) -> Row:
    """The resync of the sync engine (the row's ratio), and a server's FULL resync with its media steps
    after it (note and extra fields: what a user's ``syncLibrary(mode: FULL)`` waits for)."""
    library = bench.main_library()
    row = Row("P2", f"unchanged resync, {library.files:,} files, vs walk", "<= 1.5")
    walk_tree(str(library.root))
    ours, reference = asyncio.run(_resyncs(bench, library, bench.fresh_data_dir("p2")))
    _ratio_row(row, ours, reference, 1.5, library.files)
    served, walks = asyncio.run(_resyncs(bench, library, bench.fresh_data_dir("p2-media"), media=True))
    served_ratio = statistics.median(served) / statistics.median(walks)
    row.extra["with_media_steps_s"] = _round(statistics.median(served))
    row.extra["with_media_steps_ratio"] = _round(served_ratio)
    row.note = (f"a FULL resync with its media steps (a server's, merging, probing, thumbnails): "
                f"{statistics.median(served) * 1000:.0f} ms = {served_ratio:.2f}x the walk")  # fmt: skip
    return row


# ---------------------------------------------------------------------------------------------- P3


async def _added_file(bench: Bench, big: Library, small: Library) -> tuple[list[float], list[float]]:
    """One new file, then a shallow incremental sync of its folder (what a watcher event becomes)."""
    times: dict[Path, list[float]] = {big.root: [], small.root: []}
    created: list[Path] = []
    try:
        async with (
            open_services(_settings(big, bench.fresh_data_dir("p3-big")), media=False) as big_services,
            open_services(_settings(small, bench.fresh_data_dir("p3-small")), media=False) as small_services,
        ):
            pairs = [(small, small_services), (big, big_services)]
            for library, services in pairs:
                await _sync(services, SyncTarget(str(library.root)))
            for rep in range(bench.sizes.added_reps):
                for library, services in pairs:
                    folder = library.folder((rep * 7) % min(library.folders, small.folders))
                    path = folder / f"bench added {rep:03d}.mp4"
                    path.write_bytes(b"")
                    created.append(path)
                    started = time.perf_counter()
                    final = await _sync(services, SyncTarget(str(folder), False), trigger=SyncTrigger.WATCHER)
                    times[library.root].append(time.perf_counter() - started)
                    if final.progress.added != 1:
                        raise RuntimeError(f"expected one added file, got {final.progress}")
    finally:
        for path in created:
            path.unlink(missing_ok=True)
    return times[big.root], times[small.root]


def measure_p3(bench: Bench) -> Row:
    big = bench.main_library()
    per_folder = max(1, big.files // big.folders)
    small = bench.library(bench.sizes.small_files, max(1, bench.sizes.small_files // per_folder))
    row = Row("P3", f"one added file to committed row, {big.files:,} vs {small.files:,} files", "<= 1.3")
    ours, reference = asyncio.run(_added_file(bench, big, small))
    bench.log(f"P3: {big.files:,} files {statistics.median(ours) * 1000:.1f} ms, "
              f"{small.files:,} files {statistics.median(reference) * 1000:.1f} ms")  # fmt: skip
    return _ratio_row(row, ours, reference, 1.3, big.files)


# --------------------------------------------------------------------------------------------- P10


def _scan_peak_rss_mb(library: Library, data_dir: Path) -> tuple[float, float]:
    """Run ``python -m gql_media scan``: its own peak RSS (MB) and wall (``bench/peak_rss.py``)."""
    env = dict(os.environ, GQL_MEDIA_LOG_LEVEL="warning")
    command = [sys.executable, "-m", "gql_media", "scan", str(library.root), "--data-dir", str(data_dir)]
    log = data_dir.with_name(data_dir.name + "-scan.log")
    with log.open("wb") as output:
        measured = run_measured(command, env=env, output=output)
    if measured.exit_code != 0:
        raise RuntimeError(f"scan exited with {measured.exit_code}: {log.read_text(errors='replace')[-1500:]}")
    return measured.peak_rss_mb, measured.elapsed_s


def measure_p10(bench: Bench) -> Row:
    library = bench.main_library()
    row = Row("P10", f"peak RSS of `gql_media scan`, {library.files:,} files", "<= 250 MB")
    peaks: list[float] = []
    for rep in range(bench.sizes.rss_reps):
        peak_mb, elapsed_s = _scan_peak_rss_mb(library, bench.fresh_data_dir("p10"))
        peaks.append(peak_mb)
        bench.log(f"P10 rep {rep + 1}: peak {peak_mb:.1f} MB, scan took {elapsed_s:.2f} s")
    row.value = round(statistics.median(peaks), 1)
    row.unit = "MB"
    row.ok = row.value <= 250
    row.n = library.files
    row.reps = len(peaks)
    return row


# ------------------------------------------------------------------------------------------ registry


@dataclass(frozen=True, slots=True)
class Measure:
    id: str
    title: str
    goal: str
    run: Callable[[Bench], Row] | None = None
    waiting_for: str = ""

    def pending_row(self) -> Row:
        return Row(self.id, self.title, self.goal, ok=None, status="not yet measured",
                   note=f"waiting for {self.waiting_for}")  # fmt: skip


def _lazy(module: str, name: str) -> Callable[[Bench], Row]:
    """A measure defined in another bench module (imported when it runs: they import this one)."""

    def run(bench: Bench) -> Row:
        import importlib

        measure: Callable[[Bench], Row] = getattr(importlib.import_module(module), name)
        return measure(bench)

    return run


def _live(name: str) -> Callable[[Bench], Row]:
    return _lazy("bench.live", name)


def _media(name: str) -> Callable[[Bench], Row]:
    return _lazy("bench.media_measures", name)


def _playback(name: str) -> Callable[[Bench], Row]:
    return _lazy("bench.playback_measures", name)


MEASURES: dict[str, Measure] = {
    m.id: m
    for m in (
        Measure("P1", "full index vs walk", "<= 3", measure_p1),
        Measure("P2", "unchanged resync vs walk", "<= 1.5", measure_p2),
        Measure("P3", "one added file, 100k vs 1k library", "<= 1.3", measure_p3),
        Measure("P4", "file copied in -> libraryChanged on a websocket", "p50 <= settle+150 ms", _live("measure_p4")),
        Measure("P5", "GraphQL page of 500 videos vs json.dumps", "<= 8; equal statements", _live("measure_p5")),
        Measure("P6", "thumbnails/s vs ffmpeg CLI", ">= 5x; N/1 >= 1.7", _media("measure_p6")),
        Measure("P7", "HLS merge vs byte copy", "<= 3", _media("measure_p7")),
        Measure("P8", "1,000 syncProgress subscribers", "p99 <= 250 ms; <= 64 KB each", _live("measure_p8")),
        Measure("P9", "event-loop lag during sync + thumbnails", "max lag <= 100 ms; p99 ratio <= 3",
                _lazy("bench.lag", "measure_p9")),
        Measure("P10", "peak RSS during P1", "<= 250 MB", measure_p10),
        Measure("P11", "TRANSCODE 1080p AVI: playlist -> first segment", "<= 1.5 s", _playback("measure_p11")),
        Measure("P12", "transcode speed of one worker, 1080p -> 720p", ">= 2x", _playback("measure_p12")),
        Measure("P13", "seek to the middle of a 10-min TRANSCODE source", "<= 1.5 s", _playback("measure_p13")),
        Measure("P14", "REMUX H.264 MKV: playlist -> first segment", "<= 0.3 s", _playback("measure_p14")),
        Measure("S1", "soak: churn, subscribers, queries, a sync a minute", "RSS +<= 10%, fds flat, 0 lost, "
                "index == disk", _lazy("bench.soak", "measure_s1")),
    )
}  # fmt: skip
