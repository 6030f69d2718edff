"""S1, the soak: ``python -m bench soak [--minutes N]`` runs a real server for N minutes under load.

The load (issue 16 part 7, issue 20):
- churn: a file added, renamed or deleted every 200 ms across the tree, and a folder moved every 30 s;
- subscribers: ``libraryChanged`` with the web UI's selection, in a client process;
- query clients: a page of 50 videos with their folders, each client at a fixed rate, in a client process;
- a FULL sync requested every minute.

It reports the server's RSS and open file descriptors over time and their growth after the
warm-up (the first 5 minutes, or the first third of a shorter run; the median of the minute after
it against the median of the run's last minute), query p99 per minute, events
lost by the subscribers (gaps in their sequences, with or without a RESYNC), events a subscriber
still had not received when the drain ended (it was behind: these are not gaps), and whether the
index equals the disk at the end. Goals: RSS growth
<= 10%, file descriptors flat, 0 events lost, index == disk. A sync request that fails or times
out is counted (and fails the run) but does not end it. The server's thread count is sampled too:
a thread may take a glibc malloc arena of its own; and its CPU, the whole process's and its event
loop's (its main thread's), as a share of one core: a loop near 100% is a server the load saturates
(queries queue, subscribers fall behind until their queues overflow). ``--trace-memory native`` samples, inside the
server, who holds its memory (glibc's arenas in use and free, SQLite, threads); ``--trace-memory``
also runs it under tracemalloc from the warm-up on and names the lines that allocated what its
heap still holds at the end (``bench/memory_trace.py``; debug only: tracing changes the RSS).

Past 400 lines, kept whole: the churn, the clients, the samplers and the report share one run's
clock and its server process; split, each would take all of them as arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench import memory_trace
from bench.clients import DRAIN_MAX_S
from bench.library import FOLDERS_PER_GROUP, Library, make_library
from bench.live import ClientProcess
from bench.measures import Bench, Row
from bench.server import ServerProcess, percentile, scan_into, wait_idle
from gql_media.core.scanner import is_ignored_name, is_video_name

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "soak-results.json"
SAMPLE_EVERY_S = 5.0
WARM_UP_MAX_S = 300.0
RSS_GROWTH_GOAL = 0.10
FDS_SLACK = 5  # "flat": the median of the last samples within a few of the first ones after the warm-up
# Samples (60 s: one sync period) per RSS median, at the warm-up's end and at the run's end: a sync's
# passing peak in one window and not the other (3 samples each before) no longer decides the growth.
RSS_WINDOW = 12
FDS_WINDOW = 6  # samples (30 s) per median: sockets and SQLite connections come and go with the load
SYNC_TIMEOUT_S = 60.0
SYNC_MUTATION = "mutation { syncLibrary(mode: FULL) { id } }"


@dataclass(frozen=True, slots=True)
class SoakLoad:
    """How long and how hard (the defaults are issue 16's)."""

    minutes: float = 30.0
    subscribers: int = 50
    clients: int = 20
    rate_per_client: float = 5.0
    files: int = 5_000
    folders: int = 250
    churn_every_s: float = 0.2
    folder_move_every_s: float = 30.0
    sync_every_s: float = 60.0


@dataclass(slots=True)
class Sample:
    at_s: float
    rss_mb: float
    fds: int
    children_rss_mb: float
    threads: int  # each thread may take a malloc arena of its own (glibc), which keeps what it freed
    cpu_s: float  # the server process's CPU time so far (its workers apart)
    loop_cpu_s: float  # its main thread's (the event loop's): near a core's worth, the loop is the limit


class Churn:
    """Changes the library from a thread: one file operation per tick, a folder moved now and then.

    Operations rotate add, rename, delete, so the library keeps its size; the files to rename or
    delete are read from disk, so nothing here can drift from what the server sees.
    """

    def __init__(self, library: Library, load: SoakLoad, seed: int = 20) -> None:
        self._root = library.root
        self._folders = [library.folder(index) for index in range(library.folders)]
        self._groups = max(1, -(-library.folders // FOLDERS_PER_GROUP))
        self._load = load
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-churn", daemon=True)
        self.counts: dict[str, int] = {"added": 0, "renamed": 0, "deleted": 0, "folders_moved": 0, "errors": 0}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        started = time.monotonic()
        tick = 0
        next_move = started + self._load.folder_move_every_s
        while not self._stop.is_set():
            try:
                self._file_operation(tick)
                if time.monotonic() >= next_move:
                    next_move += self._load.folder_move_every_s
                    self._move_folder(tick)
            except OSError:
                self.counts["errors"] += 1
            tick += 1
            delay = started + tick * self._load.churn_every_s - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def _file_operation(self, tick: int) -> None:
        folder = self._random.choice(self._folders)
        kind = ("added", "renamed", "deleted")[tick % 3]
        names = [] if kind == "added" else [e.name for e in os.scandir(folder) if e.is_file()]
        if not names:
            kind = "added"
        if kind == "added":
            (folder / f"soak {tick:07d}.mp4").write_bytes(b"")
        elif kind == "renamed":
            name = self._random.choice(names)
            os.rename(folder / name, folder / f"soak {tick:07d} renamed.mkv")
        else:
            os.unlink(folder / self._random.choice(names))
        self.counts[kind] += 1

    def _move_folder(self, tick: int) -> None:
        index = self._random.randrange(len(self._folders))
        source = self._folders[index]
        group = self._root / f"g{self._random.randrange(self._groups):03d}"
        target = group / f"{source.name.split('-')[0]}-m{tick}"
        os.rename(source, target)
        self._folders[index] = target
        self.counts["folders_moved"] += 1


def _sample(process: psutil.Process, started: float) -> Sample:
    children = 0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += child.memory_info().rss
    times = process.cpu_times()
    loop = next((t for t in process.threads() if t.id == process.pid), None)
    return Sample(
        at_s=round(time.monotonic() - started, 1),
        rss_mb=round(process.memory_info().rss / 2**20, 1),
        fds=process.num_fds(),
        children_rss_mb=round(children / 2**20, 1),
        threads=process.num_threads(),
        cpu_s=round(times.user + times.system, 2),
        loop_cpu_s=0.0 if loop is None else round(loop.user_time + loop.system_time, 2),
    )


def _busy(earlier: Sample, later: Sample) -> tuple[float, float]:
    """The server's CPU and its loop's between two samples, each as a share of one core."""
    wall_s = later.at_s - earlier.at_s
    if wall_s <= 0:
        return 0.0, 0.0
    return (later.cpu_s - earlier.cpu_s) / wall_s, (later.loop_cpu_s - earlier.loop_cpu_s) / wall_s


def _disk_entries(root: Path) -> tuple[set[str], set[str]]:
    """The folders and videos on disk, as paths relative to ``root`` (what the index holds)."""
    folders: set[str] = set()
    videos: set[str] = set()
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_ignored_name(d)]
        rel = os.path.relpath(directory, root)
        if rel != ".":
            folders.add(rel)
        prefix = "" if rel == "." else rel + "/"
        videos.update(prefix + name for name in filenames if is_video_name(name))
    return folders, videos


def _index_entries(data_dir: Path) -> tuple[set[str], set[str]]:
    with contextlib.closing(sqlite3.connect(data_dir / "library.db")) as db:
        folders = {row[0] for row in db.execute("SELECT path FROM folders WHERE parent_id IS NOT NULL")}
        videos = {
            row[0]
            for row in db.execute(
                "SELECT CASE WHEN f.path = '' THEN v.name ELSE f.path || '/' || v.name END"
                " FROM videos v JOIN folders f ON f.id = v.folder_id"
            )
        }
    return folders, videos


def _index_matches_disk(root: Path, data_dir: Path) -> dict[str, Any]:
    disk_folders, disk_videos = _disk_entries(root)
    index_folders, index_videos = _index_entries(data_dir)
    differences = {
        "folders_missing": sorted(disk_folders - index_folders)[:10],
        "folders_extra": sorted(index_folders - disk_folders)[:10],
        "videos_missing": sorted(disk_videos - index_videos)[:10],
        "videos_extra": sorted(index_videos - disk_videos)[:10],
    }
    equal = disk_folders == index_folders and disk_videos == index_videos
    return {"equal": equal, "videos": len(disk_videos), "folders": len(disk_folders)} | ({} if equal else differences)


def _median_mb(samples: Sequence[Sample]) -> float:
    return statistics.median(s.rss_mb for s in samples)


def _slope_mb_per_min(samples: Sequence[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    return statistics.linear_regression([s.at_s for s in samples], [s.rss_mb for s in samples]).slope * 60


@dataclass(slots=True)
class SoakReport:
    load: SoakLoad
    samples: list[Sample] = field(default_factory=list)
    warm_up_s: float = 0.0
    rss_at_warm_up_mb: float = 0.0
    rss_at_end_mb: float = 0.0
    rss_growth: float = 0.0
    rss_slope_mb_per_min: float = 0.0
    fds_at_warm_up: float = 0
    fds_max_after: int = 0
    fds_at_end: float = 0
    p99_ms_per_minute: list[float] = field(default_factory=list)
    queries: int = 0
    queries_failed: int = 0
    subscribers_connected: int = 0
    subscriptions_ended: int = 0  # by an error: the subscriber gets nothing more
    events_received: int = 0
    events_lost: int = 0
    events_lost_silently: int = 0
    resyncs: int = 0
    events_behind_at_end: int = 0  # not received when the drain ended (the subscriber was behind)
    subscribers_behind_at_end: int = 0
    silent_gaps: list[list[Any]] = field(default_factory=list)  # [last, next, kind, wall]: gaps with no RESYNC
    churn: dict[str, int] = field(default_factory=dict)
    syncs_requested: int = 0
    syncs_failed: int = 0  # the mutation failed or took longer than SYNC_TIMEOUT_S: the run goes on
    sync_request_max_s: float = 0.0
    index: dict[str, Any] = field(default_factory=dict)
    memory_trace: dict[str, Any] = field(default_factory=dict)  # with --trace-memory: bench/memory_trace.py

    @property
    def fds_flat(self) -> bool:
        return self.fds_at_end <= self.fds_at_warm_up + FDS_SLACK

    @property
    def ok(self) -> bool:
        return (
            self.rss_growth <= RSS_GROWTH_GOAL
            and self.fds_flat
            and self.events_lost == 0
            and self.events_behind_at_end == 0
            and self.subscriptions_ended == 0
            and self.subscribers_connected == self.load.subscribers
            and self.queries_failed == 0
            and self.syncs_failed == 0
            and bool(self.index.get("equal"))
        )

    def summarise(self, started_wall: float, query_samples: Sequence[Sequence[float]]) -> None:
        samples = self.samples
        after = [s for s in samples if s.at_s >= self.warm_up_s] or samples[-1:]
        self.rss_at_warm_up_mb = round(_median_mb(after[:RSS_WINDOW]), 1)
        self.rss_at_end_mb = round(_median_mb(after[-RSS_WINDOW:]), 1)
        self.rss_growth = round((self.rss_at_end_mb - self.rss_at_warm_up_mb) / self.rss_at_warm_up_mb, 4)
        self.rss_slope_mb_per_min = round(_slope_mb_per_min(after), 2)
        self.fds_at_warm_up = statistics.median(s.fds for s in after[:FDS_WINDOW])
        self.fds_max_after = max(s.fds for s in after)
        self.fds_at_end = statistics.median(s.fds for s in after[-FDS_WINDOW:])
        per_minute: dict[int, list[float]] = {}
        for wall, latency in query_samples:
            per_minute.setdefault(int((wall - started_wall) // 60), []).append(latency)
        self.p99_ms_per_minute = [round(percentile(v, 0.99) * 1000, 1) for _, v in sorted(per_minute.items())]
        self.queries = len(query_samples)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fds_flat"] = self.fds_flat
        data["ok"] = self.ok
        return data


def _subscriber_totals(report: SoakReport, result: dict[str, Any]) -> None:
    report.subscribers_connected = result["connected"]
    subscribers = result["subscribers"]
    last = max((s["last_sequence"] for s in subscribers), default=0)
    for s in subscribers:
        report.events_received += s["received"]
        report.resyncs += s["resyncs"]
        report.subscriptions_ended += s["ended"]
        # Events after a subscriber's last one had not reached it when the drain ended: still in its
        # queue or on their way (it was that far behind), not dropped; counted apart from the gaps.
        behind = last - s["last_sequence"]
        report.events_lost += s["missing"]
        report.events_lost_silently += s["missing_silently"]
        report.events_behind_at_end += behind
        report.subscribers_behind_at_end += behind > 0
        report.silent_gaps.extend(s["gaps"][: 20 - len(report.silent_gaps)])


def _request_sync(client: httpx.Client, url: str, report: SoakReport, log: Any) -> None:
    """One FULL sync asked for; a failure or a timeout is counted and the soak goes on (the memory and
    the events of the rest of the run still count), and fails the run's goals."""
    report.syncs_requested += 1
    asked = time.monotonic()
    try:
        client.post(url, json={"query": SYNC_MUTATION}).raise_for_status()
    except httpx.HTTPError as error:
        report.syncs_failed += 1
        log(f"soak: the sync request failed after {time.monotonic() - asked:.1f} s: {error!r}")
    report.sync_request_max_s = round(max(report.sync_request_max_s, time.monotonic() - asked), 2)


def run_soak(load: SoakLoad, workdir: Path, log: Any, *, trace_memory: str | None = None) -> SoakReport:
    """Build a fresh library, index it, serve it and put it under ``load``; the report of the run.

    ``trace_memory``: ``"native"`` samples the server's memory by who holds it (glibc's arenas,
    SQLite, threads: ``bench/memory_trace.py``); ``"python"`` also runs it under tracemalloc from the
    warm-up on, and the report names what its Python heap gained from then to the end.
    """
    soak_dir = workdir / "soak"
    if soak_dir.exists():
        shutil.rmtree(soak_dir)
    library = make_library(soak_dir / "library", load.files, load.folders)
    data_dir = soak_dir / "data"
    log(f"soak: indexing {load.files:,} files in {load.folders:,} folders")
    scan_into([library.root], data_dir)
    report = SoakReport(load, warm_up_s=min(WARM_UP_MAX_S, load.minutes * 60 / 3))
    duration_s = load.minutes * 60
    max_run_s = str(duration_s + 600)
    trace_dir = soak_dir / "memory-trace"
    server_process = ServerProcess([library.root], data_dir, watch=True)
    if trace_memory:
        server_process.module = "bench.memory_trace"
        server_process.env = {memory_trace.DIR_ENV: str(trace_dir), memory_trace.FIRST_ENV: str(report.warm_up_s),
                              memory_trace.PYTHON_ENV: "1" if trace_memory == "python" else "0"}  # fmt: skip
    with server_process as server:
        server.wait_idle()
        process = psutil.Process(server.pid)
        subscribers = ClientProcess("changes", server.ws_url, str(load.subscribers), "--max-run-s", max_run_s,
                                    log=soak_dir / "subscribers.log")  # fmt: skip
        queries = ClientProcess("paced", server.url, str(load.clients), "--rate", str(load.rate_per_client),
                                "--max-run-s", max_run_s, log=soak_dir / "queries.log")  # fmt: skip
        churn = Churn(library, load)
        try:
            log(f"soak: {subscribers.ready()} subscribers, query clients {queries.ready()}")
            started, started_wall = time.monotonic(), time.time()
            churn.start()
            next_sync = started + load.sync_every_s / 2  # a sync in even a one-minute run
            next_log = started + 60
            with httpx.Client(timeout=SYNC_TIMEOUT_S) as client:
                while (now := time.monotonic()) < started + duration_s:
                    report.samples.append(_sample(process, started))
                    if now >= next_sync:
                        next_sync += load.sync_every_s
                        _request_sync(client, server.url, report, log)
                    if now >= next_log:
                        next_log += 60
                        s = report.samples[-1]
                        minute_ago = next(x for x in report.samples if x.at_s >= s.at_s - 60)
                        cpu, loop = _busy(minute_ago, s)
                        log(f"soak: {s.at_s / 60:.0f} min, server RSS {s.rss_mb} MB, fds {s.fds}, CPU {cpu:.0%} of a"
                            f" core (its loop {loop:.0%})")  # fmt: skip
                    time.sleep(max(0.0, min(SAMPLE_EVERY_S, started + duration_s - time.monotonic())))
            report.samples.append(_sample(process, started))
            churn.stop()
            report.churn = dict(churn.counts)
            time.sleep(3)  # the watcher's settle and file-settle windows
            wait_idle(server.url)
            time.sleep(1)  # the last events on their way to the subscribers
            log(f"soak: churn stopped, server idle at {time.time():.1f}")
            _subscriber_totals(report, subscribers.finish(timeout_s=DRAIN_MAX_S + 60))  # their drain, then the JSON
            log(f"soak: subscribers drained at {time.time():.1f}")
            query_result = queries.finish()
        finally:
            churn.stop()
            subscribers.close()
            queries.close()
    report.summarise(started_wall, query_result["samples"])
    report.queries_failed = query_result["failed"]
    report.index = _index_matches_disk(library.root, data_dir)
    if trace_memory:
        report.memory_trace = memory_trace.growth(trace_dir, report.warm_up_s, RSS_WINDOW)
    return report


def render(report: SoakReport, console: Console) -> None:
    load = report.load
    console.print(
        f"S1 soak: {load.minutes:g} min, {load.files:,} files, {load.subscribers} subscribers, "
        f"{load.clients} query clients at {load.rate_per_client:g}/s, churn every {load.churn_every_s:g} s, "
        f"a folder moved every {load.folder_move_every_s:g} s, a FULL sync every {load.sync_every_s:g} s"
    )
    series = Table(title="server over time")
    for column in ("min", "RSS MB", "fds", "threads", "workers' RSS MB", "CPU % of a core", "loop %"):
        series.add_column(column, justify="right")
    shown: Sample | None = None
    for sample in report.samples:
        if shown is None or sample.at_s - shown.at_s >= 30 or sample is report.samples[-1]:
            cpu, loop = _busy(shown, sample) if shown is not None else (0.0, 0.0)
            shown = sample
            series.add_row(f"{sample.at_s / 60:.1f}", f"{sample.rss_mb}", f"{sample.fds}", f"{sample.threads}",
                           f"{sample.children_rss_mb}", f"{cpu:.0%}", f"{loop:.0%}")  # fmt: skip
    console.print(series)
    table = Table(title="S1 goals")
    for column in ("measure", "value", "goal", "ok"):
        table.add_column(column)

    def row(name: str, value: str, goal: str, ok: bool | None) -> None:
        table.add_row(name, value, goal, "-" if ok is None else ("[green]yes[/]" if ok else "[red]NO[/]"))

    row("RSS growth after warm-up",
        f"{report.rss_growth:+.1%} ({report.rss_at_warm_up_mb} -> {report.rss_at_end_mb} MB after "
        f"{report.warm_up_s / 60:.1f} min; {report.rss_slope_mb_per_min:+.2f} MB/min)",
        "<= 10%", report.rss_growth <= RSS_GROWTH_GOAL)  # fmt: skip
    row("file descriptors", f"median {report.fds_at_warm_up:g} -> {report.fds_at_end:g} (max {report.fds_max_after})",
        "flat", report.fds_flat)  # fmt: skip
    row("events lost", f"{report.events_lost:,} ({report.events_lost_silently:,} without a RESYNC; "
        f"{report.resyncs} RESYNCs; {report.events_received:,} received by {report.subscribers_connected}/"
        f"{load.subscribers}; {report.subscriptions_ended} ended by an error)",
        "0", report.events_lost == 0 and report.subscriptions_ended == 0)  # fmt: skip
    row("events not delivered when the drain ended",
        f"{report.events_behind_at_end:,} ({report.subscribers_behind_at_end} subscribers still behind)",
        "0", report.events_behind_at_end == 0)  # fmt: skip
    row("queries", f"{report.queries:,}, {report.queries_failed} failed", "0 failed", report.queries_failed == 0)
    row("query p99 per minute (ms)", ", ".join(f"{v:g}" for v in report.p99_ms_per_minute), "-", None)
    row("index == disk", f"{report.index}", "equal", bool(report.index.get("equal")))
    row("churn", ", ".join(f"{k} {v}" for k, v in report.churn.items()) + f"; {report.syncs_requested} syncs",
        "-", None)  # fmt: skip
    row("sync requests", f"{report.syncs_failed} failed; slowest answer {report.sync_request_max_s:g} s", "0 failed",
        report.syncs_failed == 0)  # fmt: skip
    console.print(table)
    if report.memory_trace:
        memory = Table(title="server memory by holder after the warm-up (bench/memory_trace.py)")
        for column in ("figure", "at warm-up MB", "at end MB", "growth MB", "slope MB/min"):
            memory.add_column(column, justify="right")
        for name, figure in report.memory_trace.get("figures", {}).items():
            memory.add_row(name, f"{figure['at_warm_up']}", f"{figure['at_end']}", f"{figure['growth']:+}",
                           f"{figure['slope_mb_per_min']}")  # fmt: skip
        console.print(memory)
        for line in report.memory_trace.get("lines", []):
            console.print(f"  {line['kb']:+,} KB in {line['blocks']:+,} blocks at {line['where']}")


def _parser() -> argparse.ArgumentParser:
    defaults = SoakLoad()
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--subscribers", type=int, default=defaults.subscribers)
    parser.add_argument("--clients", type=int, default=defaults.clients, help="query clients")
    parser.add_argument("--rate", type=float, default=defaults.rate_per_client, help="queries per second per client")
    parser.add_argument("--files", type=int, default=defaults.files)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON report")
    parser.add_argument("--trace-memory", nargs="?", const="python", choices=("python", "native"),
                        help="sample the server's memory by holder (malloc arenas, SQLite, threads); 'python' "
                        "(the default) also runs it under tracemalloc and reports what its Python heap gained "
                        "after the warm-up (debug: tracing changes the RSS it measures)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gql_media_bench")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console() if Console().is_terminal else Console(width=150)
    load = SoakLoad(minutes=args.minutes, subscribers=args.subscribers, clients=args.clients,
                    rate_per_client=args.rate, files=args.files, folders=max(1, args.files // 20))  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    report = run_soak(load, args.workdir, console.log, trace_memory=args.trace_memory)
    render(report, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    console.print(f"report written to {args.output}")
    return 0 if report.ok else 1


def measure_s1(bench: Bench) -> Row:
    """S1 in the bench's table: the soak for the run's ``soak_minutes`` (1 in ``--quick``), at the issue's load."""
    load = SoakLoad(minutes=bench.sizes.soak_minutes)
    report = run_soak(load, bench.workdir, bench.log)
    render(report, Console(width=150))
    row = Row("S1", f"soak {load.minutes:g} min: RSS growth after warm-up", "<= 10%; fds flat; 0 lost; index == disk")
    row.value, row.unit, row.ok, row.reps = round(report.rss_growth * 100, 1), "% RSS", report.ok, 1
    row.note = (f"RSS {report.rss_at_warm_up_mb} -> {report.rss_at_end_mb} MB, fds {report.fds_at_warm_up} -> "
                f"{report.fds_at_end}, {report.events_lost} events lost, {report.events_behind_at_end} behind at "
                f"the end, {report.queries_failed}/{report.queries} "
                f"queries failed, index == disk: {report.index.get('equal')}")  # fmt: skip
    row.extra = {"soak": report.to_json()}
    return row
