"""P4, P5, P8, P9: measures against a running server, over loopback HTTP and websockets.

P4, P5 and P8 drive a real ``python -m gql_media serve`` subprocess. P9 runs the same app
(``create_app`` under uvicorn, on uvloop like ``serve``) inside this process, because its probe
must be a task on the server's own event loop; its query load comes from a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
from websockets.sync.client import connect as ws_connect

from bench import assets
from bench.library import Library, make_library
from bench.measures import Bench, Row
from bench.server import HOST, ServerProcess, free_port, moved_in, percentile, scan_into
from gql_media.core.models import JobState, SyncMode, SyncRequest, SyncTarget, SyncTrigger

SETTLE_MS = 300
PROTOCOL = "graphql-transport-ws"
EVENT_TIMEOUT_S = 15.0


class ClientProcess:
    """``python -m bench.clients ...`` with a bounded READY handshake and a STOP that returns its JSON."""

    def __init__(self, *args: str, log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.clients", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._reader = ThreadPoolExecutor(1)

    def _line(self, timeout_s: float) -> str:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        try:
            return self._reader.submit(stdout.readline).result(timeout_s)
        except FutureTimeout:
            self.close()
            raise RuntimeError(f"the client process said nothing for {timeout_s:g} s") from None

    def ready(self, timeout_s: float = 180) -> str:
        line = self._line(timeout_s)
        if not line.startswith("READY"):
            self.close()
            raise RuntimeError(f"the client process did not get ready: {line!r}")
        return line.strip()

    def finish(self, timeout_s: float = 120) -> Any:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write("STOP\n")
        stdin.flush()
        stdin.close()
        line = self._line(timeout_s)
        self.close()
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._reader.shutdown(wait=False, cancel_futures=True)
        self._log.close()


def _value_row(row: Row, value: float, unit: str, ok: bool, n: int, reps: int, note: str) -> Row:
    row.value, row.unit, row.ok, row.n, row.reps, row.note = round(value, 1), unit, ok, n, reps, note
    return row


# ---------------------------------------------------------------------------------------------- P4


def _next_data(ws: Any, deadline: float) -> dict[str, Any]:
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise RuntimeError(f"no libraryChanged event within {EVENT_TIMEOUT_S:g} s")
        message = json.loads(ws.recv(timeout=remaining))
        if message.get("type") == "next":
            return dict(message["payload"]["data"])
        if message.get("type") in ("error", "complete"):
            raise RuntimeError(f"subscription ended: {message}")


def _copy_latencies(bench: Bench, library: Library, name: str, reps: int) -> list[float]:
    """Copy a real clip into the watched library ``reps`` times; seconds until each ADDED event arrives."""
    data_dir = bench.fresh_data_dir(f"p4-{name}")
    scan_into([library.root], data_dir)
    clip = assets.tiny_clip(bench.workdir)
    created: list[Path] = []
    latencies: list[float] = []
    env = {"GQL_MEDIA_SETTLE_MS": str(SETTLE_MS)}
    try:
        with ServerProcess([library.root], data_dir, watch=True, env=env) as server:
            server.wait_idle()
            with ws_connect(server.ws_url, subprotocols=[PROTOCOL], open_timeout=30) as ws:  # type: ignore[list-item]
                ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                if json.loads(ws.recv(timeout=30)).get("type") != "connection_ack":
                    raise RuntimeError("no connection_ack")
                query = "subscription { libraryChanged { kind path } }"
                ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
                time.sleep(0.3)  # the subscription is registered on the server
                for rep in range(reps):
                    target = library.folder((rep * 7) % library.folders) / f"p4 copied {rep:03d}.mp4"
                    created.append(target)
                    started = time.perf_counter()
                    shutil.copyfile(clip, target)
                    deadline = started + EVENT_TIMEOUT_S
                    while True:
                        change = _next_data(ws, deadline)["libraryChanged"]
                        if change["kind"] == "ADDED" and (change["path"] or "").endswith(target.name):
                            break
                    latencies.append(time.perf_counter() - started)
                    server.wait_idle()  # that job's media steps, so the next copy starts a job of its own
    finally:
        for path in created:
            path.unlink(missing_ok=True)
    bench.log(f"P4 {name}: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms over {len(latencies)} copies")  # fmt: skip
    return latencies


def measure_p4(bench: Bench) -> Row:
    big = bench.main_library()
    small = bench.library(bench.sizes.small_files, max(1, bench.sizes.small_files // (big.files // big.folders)))
    reps = bench.sizes.copy_reps
    results = {lib.files: _copy_latencies(bench, lib, f"{lib.files}", reps) for lib in (small, big)}
    settle_s = SETTLE_MS / 1000
    summary: dict[str, Any] = {}
    ok = True
    parts = []
    for files, latencies in results.items():
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        ok = ok and p50 <= settle_s + 0.150 and p95 <= settle_s + 0.400
        summary[str(files)] = {"p50_ms": round(p50 * 1000, 1), "p95_ms": round(p95 * 1000, 1)}
        parts.append(f"{files:,} files: p50 {p50 * 1000:.0f} / p95 {p95 * 1000:.0f} ms")
    big_p50 = statistics.median(results[big.files])
    row = Row("P4", f"file copied in -> libraryChanged on a websocket, settle {SETTLE_MS} ms",
              f"p50 <= {SETTLE_MS + 150} ms, p95 <= {SETTLE_MS + 400} ms")  # fmt: skip
    row.extra = {"settle_ms": SETTLE_MS, "libraries": summary}
    return _value_row(row, big_p50 * 1000, f"ms p50 ({big.files:,})", ok, big.files, reps, "; ".join(parts))


# ---------------------------------------------------------------------------------------------- P5

PAGE_QUERY = (
    "query Page($first: Int!) { videos(first: $first) { edges { node {"
    " id name path size modifiedAt status folder { id name path } } } } }"
)
_REFERENCE_SQL = (
    "SELECT v.id, v.name, v.path, v.size, v.mtime_ns, v.status, f.id, f.name, f.path"
    " FROM videos v JOIN folders f ON f.id = v.folder_id ORDER BY v.name, v.id LIMIT ?"
)


def _reference_page(db_path: Path, size: int, reps: int) -> list[float]:
    import sqlite3

    times: list[float] = []
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        for _ in range(reps + 2):
            started = time.perf_counter()
            rows = db.execute(_REFERENCE_SQL, (size,)).fetchall()
            page = [
                {"id": r[0], "name": r[1], "path": r[2], "size": r[3], "modifiedAt": r[4], "status": r[5],
                 "folder": {"id": r[6], "name": r[7], "path": r[8]}}
                for r in rows
            ]  # fmt: skip
            json.dumps({"data": {"videos": {"edges": [{"node": node} for node in page]}}})
            times.append(time.perf_counter() - started)
    return times[2:]


async def _statement_counts(library: Library, data_dir: Path) -> dict[int, int]:
    """SQL statements per page, counted in-process (``Db.statements``) on the same app and data."""
    from gql_media.app import create_app
    from gql_media.settings import Settings

    settings = Settings(roots=[library.root], data_dir=data_dir, watch=False, log_level="warning",
                        frontend_dir=Path("/nonexistent-gql-media-frontend"))  # fmt: skip
    app = create_app(settings)
    counts: dict[int, int] = {}
    async with app.router.lifespan_context(app):
        services = app.state.services()
        await _runner_idle(services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for first in (10, 500):
                for _ in range(2):  # the second run is counted: nothing warms up on the first
                    before = services.db.statements
                    response = await client.post("/graphql", json={"query": PAGE_QUERY, "variables": {"first": first}})
                    response.raise_for_status()
                    counts[first] = services.db.statements - before
    return counts


async def _runner_idle(services: Any, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = await services.runner.list(5)
        if services.runner.current() is None and not any(not j.state.is_terminal for j in jobs):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the job runner stayed busy")


def _page_times(library: Library, data_dir: Path, reps: int, env: dict[str, str]) -> list[float]:
    """Seconds per request of the 500-video page from a real server started with ``env``."""
    times: list[float] = []
    with ServerProcess([library.root], data_dir, watch=False, env=env) as server, httpx.Client(timeout=60) as client:
        server.wait_idle()
        body = {"query": PAGE_QUERY, "variables": {"first": 500}}
        for rep in range(reps + 3):
            started = time.perf_counter()
            response = client.post(server.url, json=body)
            response.raise_for_status()
            elapsed = time.perf_counter() - started
            if rep == 0 and len(response.json()["data"]["videos"]["edges"]) != 500:
                raise RuntimeError("the page does not hold 500 videos")
            if rep >= 3:
                times.append(elapsed)
    return times


def measure_p5(bench: Bench) -> Row:
    """The page with the executor's fast paths (the row's ratio) and without (GQL_MEDIA_FAST_PATHS=false, its note)."""
    library = bench.main_library()
    data_dir = bench.fresh_data_dir("p5")
    scan_into([library.root], data_dir)
    reps = bench.sizes.page_reps
    ours = _page_times(library, data_dir, reps, {})
    plain = _page_times(library, data_dir, reps, {"GQL_MEDIA_FAST_PATHS": "false"})
    reference = _reference_page(data_dir / "library.db", 500, reps)
    counts = asyncio.run(_statement_counts(library, data_dir))
    row = Row("P5", f"GraphQL page of 500 videos + folders over HTTP vs json.dumps of the rows, {library.files:,}",
              "<= 8; equal statements")  # fmt: skip
    row.ours_s, row.reference_s = statistics.median(ours), statistics.median(reference)
    row.ratio = row.ours_s / row.reference_s
    plain_ratio = statistics.median(plain) / row.reference_s
    row.ok = row.ratio <= 8 and counts[10] == counts[500]
    row.n, row.reps = 500, reps
    row.note = (f"fast paths off: {plain_ratio:.2f} ({statistics.median(plain) * 1000:.1f} ms); "
                f"SQL statements: {counts[10]} for 10, {counts[500]} for 500")  # fmt: skip
    row.extra = {"statements_10": counts[10], "statements_500": counts[500],
                 "ratio_fast_paths_off": round(plain_ratio, 3),
                 "ours_fast_paths_off_s": round(statistics.median(plain), 5)}  # fmt: skip
    return row


# ---------------------------------------------------------------------------------------------- P8


def _started_at(server: ServerProcess, job_id: str) -> float:
    data = server.graphql("query($id: ID!) { node(id: $id) { ... on SyncJob { startedAt state } } }", {"id": job_id})
    return datetime.fromisoformat(data["node"]["startedAt"]).timestamp()


def measure_p8(bench: Bench) -> Row:
    library = bench.main_library()
    data_dir = bench.fresh_data_dir("p8")
    scan_into([library.root], data_dir)
    count = bench.sizes.subscribers
    with ServerProcess([library.root], data_dir, watch=False) as server:
        server.wait_idle()
        process = psutil.Process(server.pid)
        time.sleep(0.5)
        rss_before = process.memory_info().rss
        client = ClientProcess("subscribers", server.ws_url, str(count), log=data_dir.with_name("p8-clients.log"))
        try:
            connected = int(client.ready().split()[1])
            time.sleep(1.0)  # every subscription registered, the server idle again
            rss_after = process.memory_info().rss
            job_id = server.graphql("mutation { syncLibrary(mode: FULL) { id } }")["syncLibrary"]["id"]
            server.wait_idle()
            time.sleep(0.5)  # the last events in flight
            result = client.finish()
        finally:
            client.close()
        started_at = _started_at(server, job_id)
    latencies: list[float] = []
    events = 0
    for key, (elapsed_s, received) in result["events"].items():
        if key.split(":")[0] == job_id:
            events += 1
            published = started_at + elapsed_s
            latencies.extend(max(0.0, t - published) for t in received)
    if not latencies or connected == 0:
        raise RuntimeError(f"no progress event reached the subscribers: {result.get('failed')} failed to connect")
    p99 = percentile(latencies, 0.99)
    per_subscriber_kb = max(0, rss_after - rss_before) / connected / 1024
    expected = events * connected
    row = Row("P8", f"{count:,} syncProgress subscribers on a websocket during a FULL sync of {library.files:,}",
              "p99 <= 250 ms; <= 64 KB each")  # fmt: skip
    note = (f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
            f"{per_subscriber_kb:.0f} KB RSS per idle subscriber; {len(latencies):,}/{expected:,} deliveries "
            f"of {events} events; {connected}/{count} connected")  # fmt: skip
    row.extra = {"p99_ms": round(p99 * 1000, 1), "rss_per_subscriber_kb": round(per_subscriber_kb, 1),
                 "deliveries": len(latencies), "expected_deliveries": expected, "connected": connected}  # fmt: skip
    ok = p99 <= 0.250 and per_subscriber_kb <= 64 and connected == count
    return _value_row(row, p99 * 1000, "ms p99", ok, count, 1, note)


# ---------------------------------------------------------------------------------------------- P9


def _p9_content(bench: Bench) -> Path:
    """``workdir/p9-staging/content``: real clips (hard links of P6's) and empty files in folders."""
    content = bench.workdir / "p9-staging" / "content"
    clips_dir = content / "clips"
    files = bench.sizes.p9_files
    make_library(content / "files", files, max(1, files // 20))
    wanted = assets.clips(bench.workdir, bench.sizes.clips)
    if clips_dir.exists() and len(list(clips_dir.iterdir())) != len(wanted):
        shutil.rmtree(clips_dir)
    if not clips_dir.exists():
        clips_dir.mkdir(parents=True)
        for clip in wanted:
            os.link(clip, clips_dir / clip.name)
    return content


async def _lag_probe(samples: list[tuple[float, float]], interval_s: float = 0.005) -> None:
    """The event loop's lag: how late a short sleep wakes up, sampled all along."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval_s)
        samples.append((time.time(), time.perf_counter() - started - interval_s))


async def _p9_run(bench: Bench, content: Path, root: Path, data_dir: Path) -> dict[str, Any]:
    import uvicorn

    from gql_media.app import create_app
    from gql_media.settings import Settings

    port = free_port()
    settings = Settings(roots=[root], data_dir=data_dir, watch=False, host=HOST, port=port, log_level="warning",
                        frontend_dir=Path("/nonexistent-gql-media-frontend"))  # fmt: skip
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    lags: list[tuple[float, float]] = []
    probe: asyncio.Task[None] | None = None
    client: ClientProcess | None = None
    try:
        for _ in range(1200):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError("the in-process server did not start")
        services = app.state.services()
        await _runner_idle(services)  # the start-up sync of the (still empty) root
        url = f"http://{HOST}:{port}/graphql"
        client = ClientProcess("queries", url, log=data_dir.with_name("p9-client.log"))
        await asyncio.to_thread(client.ready)
        probe = asyncio.create_task(_lag_probe(lags))
        idle_from = time.time()
        await asyncio.sleep(bench.sizes.p9_idle_s)
        idle_to = time.time()
        with moved_in(content, root / "content"):
            request = SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL, (SyncTarget(str(root)),))
            job = await services.runner.submit(request)
            final = await services.runner.wait(job.id, timeout_s=600)
            sync_to = time.time()
            if final is None or final.state is not JobState.SUCCEEDED:
                raise RuntimeError(f"the P9 sync did not succeed: {final}")
            samples = await asyncio.to_thread(client.finish)
            client = None
        sync_from = final.started_at.timestamp() if final.started_at else idle_to
        return {"lags": lags, "samples": samples, "idle": (idle_from, idle_to), "sync": (sync_from, sync_to),
                "added": final.progress.added}  # fmt: skip
    finally:
        if client is not None:
            client.close()
        if probe is not None:
            probe.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 60)


def _within(samples: list[Any], window: tuple[float, float]) -> list[float]:
    return [value for at, value in samples if window[0] <= at <= window[1]]


def _run_loop(factory: Callable[[], Any]) -> Any:
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # uvicorn[standard] brings it; serve falls back to asyncio too
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(factory())


def measure_p9(bench: Bench) -> Row:
    content = _p9_content(bench)
    root = bench.workdir / "p9-root"
    root.mkdir(exist_ok=True)
    data_dir = bench.fresh_data_dir("p9")
    result = _run_loop(lambda: _p9_run(bench, content, root, data_dir))
    idle = _within(result["samples"], result["idle"])
    busy = _within(result["samples"], result["sync"])
    lags = _within(result["lags"], result["sync"])
    if len(idle) < 20 or len(busy) < 20 or not lags:
        raise RuntimeError(f"too few samples: {len(idle)} idle, {len(busy)} during the sync, {len(lags)} lags")
    idle_p99, busy_p99 = percentile(idle, 0.99), percentile(busy, 0.99)
    max_lag = max(lags)
    ratio = busy_p99 / idle_p99
    sync_s = result["sync"][1] - result["sync"][0]
    title = (f"event-loop lag during a FULL sync + thumbnails ({bench.sizes.clips} clips, "
             f"{bench.sizes.p9_files:,} files); page query p99 vs idle")  # fmt: skip
    row = Row("P9", title, "max lag <= 100 ms; p99 ratio <= 3")
    row.ours_s, row.reference_s, row.ratio = busy_p99, idle_p99, ratio
    row.value, row.unit = round(max_lag * 1000, 1), "ms max lag"
    row.ok = max_lag <= 0.100 and ratio <= 3
    row.n, row.reps = len(busy), 1
    row.note = (f"lag p99 {percentile(lags, 0.99) * 1000:.0f} ms; query p99 {busy_p99 * 1000:.1f} ms "
                f"during ({len(busy)} queries, sync {sync_s:.1f} s) vs {idle_p99 * 1000:.1f} ms idle "
                f"({len(idle)})")  # fmt: skip
    row.extra = {"max_lag_ms": round(max_lag * 1000, 1), "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
                 "query_p99_sync_ms": round(busy_p99 * 1000, 2), "query_p99_idle_ms": round(idle_p99 * 1000, 2),
                 "sync_s": round(sync_s, 2)}  # fmt: skip
    return row
