"""P15/P16: a library of N files (``python -m bench --scale N``; ``--quick``: 100k).

P15 times the queries a browser makes of a big index, each over HTTP against a real
``python -m gql_media serve`` (median of the reps after one warm-up), against the goals of
issue 18, once the server is steady: its start-up sync done and the folder totals recounted
(they ran beside the first queries and made their medians a measure of the start-up); the same
queries are also timed (3 reps) right after the first answer, beside the start-up sync and its
probes of the pending files, in P15's ``queries_during_startup`` (issue 18: probing must not slow
them past their goals). P16 is the peak RSS of ``gql_media scan`` (a first scan of the tree) and
of the server once it has answered every query, and the server's start-up time to a served first
query. Right after the first scan P16 also times ``gql_media scan --full`` of the unchanged tree (its
wall and peak RSS) between two bare walks, against the mean of the two (issue 18: <= 2x a walk): the
walks bracket the rescan, so a page cache as warm as the rescan's and a load that drifts during it
weigh the same on both sides. The first scan is timed the same way (issue 18: <= 4x a walk): an
untimed walk warms the cache, then walk, scan, walk, against the mean of those two walks.

The folders are 50 files each (20,000 for a million files) in groups of 100, as the issue's
library. The files are sparse, of varied sizes (``bench.library.file_size``, no disk blocks), so the
scan and the server's start-up sync keep sizes that the SIZE order and the totals can sum and sort.
After the scan every non-empty video gets a status, a duration and (READY ones) its thumbnail's key,
as a library the server has probed once (the files hold no video: a worker would fail on each); the
empty quarter stays PENDING, so the server's start-up probes 250k videos at 1M (each decided without
a worker) while P16 watches its memory, and the status and duration orders have something to sort.
``GQL_MEDIA_BENCH_DATABASE_URL`` runs the same against PostgreSQL (a database made for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.library import Library, make_library, timed_walk_s
from bench.measures import Bench, Row
from bench.peak_rss import run_measured
from bench.server import ServerProcess, server_env
from bench.sqlite_floor import replay_first_index

FILES_PER_FOLDER = 50
QUERY_REPS = 9


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    text: str
    goal_ms: float


def _videos(arguments: str, fields: str = "id name") -> str:
    return f"{{ videos(first: 20{arguments}) {{ edges {{ node {{ {fields} }} }} }} }}"


def _folder(path: str, fields: str) -> str:
    return f'{{ folder(path: "{path}") {{ {fields} }} }}'


_TOTALS = "videoCount(recursive: true) totalSize(recursive: true)"
_ANY_ID = "edges { node { ... on Folder { id } ... on Video { id } } }"

QUERIES = (
    Query("name search, a match", _videos(', filter: {nameContains: "LIP 01234"}'), 50),
    Query("name search, no match", _videos(', filter: {nameContains: "zqzq"}'), 50),
    Query("name search, 2 characters", _videos(', filter: {nameContains: "7."}'), 50),
    Query("videoCount(recursive) + totalSize, root", _folder("", _TOTALS), 20),
    Query("videoCount(recursive) + totalSize, group", _folder("g001", _TOTALS), 20),
    Query("first page by SIZE desc", _videos(", orderBy: {field: SIZE, direction: DESC}", "id size"), 20),
    Query("first page by DURATION", _videos(", orderBy: {field: DURATION}", "id durationSeconds"), 20),
    Query("first page of a status", _videos(", filter: {status: READY}", "id status"), 20),
    Query("first page by NAME", _videos(", orderBy: {field: NAME}"), 20),
    Query("videos(first: 20) { totalCount }", "{ videos(first: 20) { totalCount } }", 50),
    Query("root descendants(first: 500)", _folder("", f"descendants(first: 500) {{ {_ANY_ID} }}"), 50),
    Query("root entries", _folder("", f"entries(first: 100) {{ {_ANY_ID} }}"), 20),
    Query("subtree page", _videos(', filter: {underPath: "g001"}'), 20),
    Query("deep folder page", _folder("g001/d00150", f"entries(first: 100) {{ {_ANY_ID} }}"), 20),
)


def scale_library(bench: Bench, files: int) -> Library:
    """The sized library of ``files`` files, kept in the workdir between runs (apart from the empty ones)."""
    folders = max(1, files // FILES_PER_FOLDER)
    bench.log(f"library of {files:,} sized (sparse) files in {folders:,} folders")
    return make_library(bench.workdir / f"scale-library-{files}-{folders}", files, folders, sized=True)


def _database_url() -> str | None:
    return os.environ.get("GQL_MEDIA_BENCH_DATABASE_URL") or None


def _scan(library: Library, data_dir: Path, database_url: str | None, *, full: bool = False) -> tuple[float, float]:
    """``python -m gql_media scan`` (``--full``: a FULL sync): its own wall and peak RSS (MB), ``bench/peak_rss.py``."""
    command = [sys.executable, "-m", "gql_media", "scan", str(library.root), "--data-dir", str(data_dir)]
    if database_url:
        command += ["--database-url", database_url]
    if full:
        command.append("--full")
    log = _scan_log(data_dir, full)
    with log.open("wb") as output:
        measured = run_measured(command, env=server_env(), output=output)
    if measured.exit_code != 0:
        raise RuntimeError(f"scan failed: {log.read_text(errors='replace')[-1500:]}")
    return measured.elapsed_s, measured.peak_rss_mb


def _scan_log(data_dir: Path, full: bool) -> Path:
    return data_dir.with_name(data_dir.name + ("-rescan.log" if full else "-scan.log"))


def _changes(log: Path) -> int | None:
    """The changes a scan reports in its summary ("...; N changes; ..."), None when not found."""
    found = re.search(r"; (\d+) changes;", log.read_text(errors="replace"))
    return None if found is None else int(found.group(1))


# READY videos get the key their thumbnail would have (``ThumbnailSpec.key_for``, the default jpeg):
# the start-up sync's thumbnail step would otherwise send every one of them to a media worker.
# Empty files stay PENDING: the start-up probes them (no worker: an empty file is decided as such).
_PROBED = (
    "UPDATE videos SET status = CASE WHEN size = 0 THEN 'PENDING' WHEN id % 2 = 0 THEN 'READY' ELSE 'BROKEN' END,"
    " duration_s = CASE WHEN size = 0 OR id % 4 = 1 THEN NULL ELSE (id * 7919) % 3600 END,"
    " thumbnail_key = CASE WHEN size > 0 AND id % 2 = 0 THEN id || '-' || size || '-' || mtime_ns || '.jpg' END"
)


_TOTAL_SIZE = "SELECT COALESCE(SUM(size), 0) FROM videos"


def _run_sql(data_dir: Path, database_url: str | None, sql: str) -> int | None:
    """Run ``sql`` on the bench's index, behind the server's back; the first column of its first row."""
    if database_url is None:
        with contextlib.closing(sqlite3.connect(data_dir / "library.db")) as db, db:
            row = db.execute(sql).fetchone()
            return None if row is None else int(row[0])
    import asyncpg

    async def run() -> int | None:
        connection = await asyncpg.connect(database_url)
        try:
            row = await connection.fetchrow(sql)
            return None if row is None else int(row[0])
        finally:
            await connection.close()

    return asyncio.run(run())


def _as_probed(data_dir: Path, database_url: str | None) -> None:
    """Statuses, durations and thumbnail keys as a probed library has them, but for the empty files
    (PENDING); sizes are the files' own, so the server's start-up sync finds every video unchanged."""
    _run_sql(data_dir, database_url, _PROBED)


def _wait_steady(server: ServerProcess, data_dir: Path, database_url: str | None, timeout_s: float = 900.0) -> None:
    """Until the start-up's work is done: no sync job, and the folder totals recounted (the root's
    totalSize is the videos' sum). P15 times a steady server; the start-up itself is P16's."""
    server.wait_idle(timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        answer = server.graphql('{ folder(path: "") { totalSize(recursive: true) } }')
        if answer["folder"]["totalSize"] == (_run_sql(data_dir, database_url, _TOTAL_SIZE) or 0):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the folder totals were not recounted after {timeout_s:g} s")
        time.sleep(1.0)  # the sum reads every video (1M: ~0.1 s of CPU beside the server)


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _time_queries(server: ServerProcess, bench: Bench, reps: int = QUERY_REPS, when: str = "") -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with httpx.Client(timeout=120) as client:
        for query in QUERIES:
            server.graphql(query.text, client=client)  # warm-up (and a check that it answers)
            times_ms: list[float] = []
            for _ in range(reps):
                started = time.perf_counter()
                server.graphql(query.text, client=client)
                times_ms.append((time.perf_counter() - started) * 1000)
            median_ms = statistics.median(times_ms)
            bench.log(f"P15{when} {query.name}: median {median_ms:.1f} ms (goal {query.goal_ms:g})")
            results.append({"query": query.name, "median_ms": round(median_ms, 2), "goal_ms": query.goal_ms,
                            "ok": median_ms <= query.goal_ms})  # fmt: skip
    return results


_JOBS = "{ currentSync { id } syncJobs(first: 5) { state } }"


def _busy(server: ServerProcess) -> bool:
    """Whether a sync job (the start-up's, with its probes of the empty files) is queued or running."""
    data = server.graphql(_JOBS)
    return data["currentSync"] is not None or any(j["state"] in ("QUEUED", "RUNNING") for j in data["syncJobs"])


def _check_empty(database_url: str) -> None:
    """P16 times a first scan: a PostgreSQL database already holding an index would make it a resync
    (the SQLite file is made again in a fresh data dir; a database is not dropped behind its owner's back)."""
    held = _run_sql(Path(), database_url, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
    if held:
        raise RuntimeError(f"{database_url} already holds {held} tables: the scale bench needs an empty database")


def run_scale(bench: Bench, files: int) -> tuple[Row, Row]:
    database_url = _database_url()
    if database_url:
        _check_empty(database_url)
    library = scale_library(bench, files)
    backend = "postgresql" if database_url else "sqlite"
    data_dir = bench.fresh_data_dir(f"scale-{files}")
    # Issue 18's first scan (<= 4x a walk): an untimed walk first, so that the timed one reads the
    # tree from the same warm cache as the scan right after it does (a cold first walk read 5.7 s
    # beside warm ones of 3.2 s at 1M and made the ratio 2.4 instead of 4.3); then the scan, then a
    # walk, against the mean of the two walks around it.
    timed_walk_s(library)
    first_walks_s = [timed_walk_s(library)]
    scan_s, scan_rss_mb = _scan(library, data_dir, database_url)
    # Issue 18's unchanged rescan (<= 2x a walk): walk, rescan, walk, against the walks' mean.
    walks_s = [timed_walk_s(library)]
    first_walks_s.append(walks_s[0])
    walk_s = statistics.mean(first_walks_s)
    scan_ratio = scan_s / walk_s
    bench.log(
        f"P16 scan of {files:,} files: {scan_s:.2f} s ({scan_ratio:.1f}x the mean of walks of"
        f" {first_walks_s[0]:.2f} / {first_walks_s[1]:.2f} s, goal <= 4x), peak {scan_rss_mb:.0f} MB"
    )
    rescan_s, rescan_rss_mb = _scan(library, data_dir, database_url, full=True)
    walks_s.append(timed_walk_s(library))
    rescan_walk_s = statistics.mean(walks_s)
    rescan_ratio = rescan_s / rescan_walk_s
    rescan_changes = _changes(_scan_log(data_dir, full=True))
    bench.log(
        f"P16 unchanged rescan (--full) of {files:,} files: {rescan_s:.2f} s ({rescan_ratio:.1f}x the mean of"
        f" walks of {walks_s[0]:.2f} / {walks_s[1]:.2f} s, goal <= 2x), peak {rescan_rss_mb:.0f} MB,"
        f" {rescan_changes} changes"
    )
    # What SQLite alone needs to write the same index the same way (bench/sqlite_floor.py), beside the scan's ratio.
    floor_s: float | None = None
    if database_url is None:
        floor_db = data_dir.with_name(data_dir.name + "-floor.db")
        floor_s = replay_first_index(data_dir / "library.db", floor_db)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{floor_db}{suffix}").unlink(missing_ok=True)
        bench.log(f"P16 SQLite alone writing the same index: {floor_s:.2f} s ({floor_s / walk_s:.1f}x the walks' mean)")
    _as_probed(data_dir, database_url)
    env = {"GQL_MEDIA_DATABASE_URL": database_url} if database_url else {}
    started = time.perf_counter()
    with ServerProcess([library.root], data_dir, watch=False, env=env) as server:
        server.graphql('{ folder(path: "") { id } }')
        start_s = time.perf_counter() - started
        # Issue 18: probing the pending files must not slow the queries past their goals. The same
        # queries (3 reps each) while the start-up sync runs; whether it still ran when they ended.
        during = _time_queries(server, bench, reps=3, when=" during start-up")
        during_busy_after = _busy(server)
        # The start-up sync of 1M on a loaded machine (PostgreSQL's the slower) may pass 15 minutes.
        _wait_steady(server, data_dir, database_url, timeout_s=max(900.0, files / 500))
        queries = _time_queries(server, bench)
        server_rss_mb = _vm_hwm_mb(server.pid)
    p15 = Row("P15", f"queries of a {files:,}-file index ({backend}), median of {QUERY_REPS}", "each <= its goal")
    p15.ok = all(q["ok"] for q in queries)
    p15.value = max(q["median_ms"] for q in queries)
    p15.unit = "ms (slowest)"
    p15.n = files
    p15.extra = {"backend": backend, "queries": queries, "queries_during_startup": during,
                 "startup_sync_still_running_after_them": during_busy_after}  # fmt: skip
    p16 = Row(
        "P16",
        f"peak RSS, {files:,} files ({backend}): scan / server",
        "scan <= 400 MB and <= 4x a walk, server <= 300 MB, start <= 10 s, unchanged rescan <= 2x a walk",
    )
    p16.value = round(max(scan_rss_mb, server_rss_mb), 1)
    p16.unit = "MB (larger)"
    p16.ok = scan_rss_mb <= 400 and scan_ratio <= 4 and server_rss_mb <= 300 and start_s <= 10 and rescan_ratio <= 2
    p16.n = files
    p16.extra = {"backend": backend, "scan_peak_mb": round(scan_rss_mb, 1), "server_peak_mb": round(server_rss_mb, 1),
                 "scan_s": round(scan_s, 2), "walk_s": round(walk_s, 3),
                 "walks_s": [round(w, 3) for w in first_walks_s], "walk_is": "mean of the walks before, after",
                 "scan_ratio": round(scan_ratio, 2), "scan_goal_ratio": 4.0, "scan_ok": scan_ratio <= 4,
                 "start_to_first_query_s": round(start_s, 2),
                 "rescan_s": round(rescan_s, 2), "rescan_walk_s": round(rescan_walk_s, 3),
                 "rescan_walks_s": [round(w, 3) for w in walks_s], "rescan_walk_is": "mean of the walks before, after",
                 "rescan_ratio": round(rescan_ratio, 2), "rescan_goal_ratio": 2.0, "rescan_ok": rescan_ratio <= 2,
                 "rescan_peak_mb": round(rescan_rss_mb, 1), "rescan_changes": rescan_changes,
                 "sqlite_alone_s": None if floor_s is None else round(floor_s, 2),
                 "sqlite_alone_ratio": None if floor_s is None else round(floor_s / walk_s, 2)}  # fmt: skip
    p16.note = (
        f"scan {scan_rss_mb:.0f} MB in {scan_s:.1f} s = {scan_ratio:.1f}x a {walk_s:.2f} s walk (mean of 2;"
        f" goal <= 4x), server {server_rss_mb:.0f} MB,"
        f" first query after {start_s:.1f} s; unchanged rescan {rescan_s:.1f} s = {rescan_ratio:.1f}x"
        f" a {rescan_walk_s:.2f} s walk (mean of 2; goal <= 2x), {rescan_rss_mb:.0f} MB"
    )
    if floor_s is not None:
        p16.note += f"; SQLite alone writing the same index {floor_s:.1f} s = {floor_s / walk_s:.1f}x the walk"
    return p15, p16
