"""P4, P5, P8: measures against a real ``python -m gql_media serve`` subprocess, over loopback HTTP
and websockets (P9, which runs the server in this process, is in ``bench.lag``)."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
from websockets.sync.client import connect as ws_connect

from bench import assets
from bench.library import Library
from bench.measures import Bench, Row
from bench.server import ServerProcess, percentile, scan_into
from gql_media.adapters.store.tables import video_path

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
# The video's path made from its folder's and its name, as the server reads it (migration 0010).
_REFERENCE_SQL = (
    f"SELECT v.id, v.name, {video_path('v', 'f')}, v.size, v.mtime_ns, v.status, f.id, f.name, f.path"
    " FROM videos v JOIN folders f ON f.id = v.folder_id ORDER BY v.name, v.id LIMIT ?"
)


class _ReferencePage:
    """P5's reference: the page's rows read by plain ``sqlite3`` in the bench process and given to
    ``json.dumps``. Timed one at a time, each right after one of ours (``time_one``), so that both
    sides are timed on the same machine: these VMs' speed drifts by a third within a minute, and a
    reference timed after all of ours read 2.3 ms on one run and 4.7 ms on the next."""

    def __init__(self, db_path: Path, size: int) -> None:
        import sqlite3

        self._db = sqlite3.connect(db_path)
        self._size = size
        for _ in range(2):  # warm: the page cache and the statement
            self._page()

    def _page(self) -> None:
        rows = self._db.execute(_REFERENCE_SQL, (self._size,)).fetchall()
        page = [
            {"id": r[0], "name": r[1], "path": r[2], "size": r[3], "modifiedAt": r[4], "status": r[5],
             "folder": {"id": r[6], "name": r[7], "path": r[8]}}
            for r in rows
        ]  # fmt: skip
        json.dumps({"data": {"videos": {"edges": [{"node": node} for node in page]}}})

    def time_one(self) -> float:
        """Seconds of one page."""
        started = time.perf_counter()
        self._page()
        return time.perf_counter() - started

    def close(self) -> None:
        self._db.close()


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
        await runner_idle(services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for first in (10, 500):
                for _ in range(2):  # the second run is counted: nothing warms up on the first
                    before = services.db.statements
                    response = await client.post("/graphql", json={"query": PAGE_QUERY, "variables": {"first": first}})
                    response.raise_for_status()
                    counts[first] = services.db.statements - before
    return counts


async def runner_idle(services: Any, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = await services.runner.list(5)
        if services.runner.current() is None and not any(not j.state.is_terminal for j in jobs):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the job runner stayed busy")


def _page_times(
    library: Library, data_dir: Path, reps: int, env: dict[str, str], reference: _ReferencePage
) -> tuple[list[float], list[float], float]:
    """Seconds per request of the 500-video page from a real server started with ``env``, the
    ``reference``'s seconds timed once right after each of them (the server idle meanwhile), and the
    server's CPU seconds per request over the timed ones (all its threads: steadier under load)."""
    times: list[float] = []
    reference_times: list[float] = []
    with ServerProcess([library.root], data_dir, watch=False, env=env) as server, httpx.Client(timeout=60) as client:
        server.wait_idle()
        process = psutil.Process(server.pid)
        body = {"query": PAGE_QUERY, "variables": {"first": 500}}
        cpu_before = 0.0
        for rep in range(reps + 3):
            if rep == 3:
                cpu_before = sum(process.cpu_times()[:2])
            started = time.perf_counter()
            response = client.post(server.url, json=body)
            response.raise_for_status()
            elapsed = time.perf_counter() - started
            if rep == 0 and len(response.json()["data"]["videos"]["edges"]) != 500:
                raise RuntimeError("the page does not hold 500 videos")
            if rep >= 3:
                times.append(elapsed)
                reference_times.append(reference.time_one())  # (the server's CPU meanwhile is its page's)
        cpu_s = (sum(process.cpu_times()[:2]) - cpu_before) / reps
    return times, reference_times, cpu_s


def measure_p5(bench: Bench) -> Row:
    """The page with the executor's fast paths (the row's ratio) and without (GQL_MEDIA_FAST_PATHS=false,
    its note and extra fields): a server each, in the order on, off, off, on (the load drifts)."""
    library = bench.main_library()
    data_dir = bench.fresh_data_dir("p5")
    scan_into([library.root], data_dir)
    reps = bench.sizes.page_reps
    half = max(1, reps // 2)
    ours: list[float] = []
    plain: list[float] = []
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    reference: list[float] = []
    paired = _ReferencePage(data_dir / "library.db", 500)
    try:
        for fast in (True, False, False, True):
            env = {} if fast else {"GQL_MEDIA_FAST_PATHS": "false"}
            times, reference_times, cpu_s = _page_times(library, data_dir, half, env, paired)
            (ours if fast else plain).extend(times)
            reference.extend(reference_times)
            cpu["on" if fast else "off"].append(cpu_s)
        # The reference as it was timed until 2026-12-03, for comparison: back to back, after the servers.
        back_to_back = [paired.time_one() for _ in range(reps)]
    finally:
        paired.close()
    counts = asyncio.run(_statement_counts(library, data_dir))
    row = Row("P5", f"GraphQL page of 500 videos + folders over HTTP vs json.dumps of the rows, {library.files:,}",
              "<= 8; equal statements")  # fmt: skip
    row.ours_s, row.reference_s = statistics.median(ours), statistics.median(reference)
    row.ratio = row.ours_s / row.reference_s
    plain_ratio = statistics.median(plain) / row.reference_s
    cpu_on_ms, cpu_off_ms = (statistics.mean(cpu[k]) * 1000 for k in ("on", "off"))
    row.ok = row.ratio <= 8 and counts[10] == counts[500]
    row.n, row.reps = 500, 2 * half
    back_to_back_s = statistics.median(back_to_back)
    row.note = (f"reference timed after each request; back to back after them: {back_to_back_s * 1000:.1f} ms ="
                f" {row.ours_s / back_to_back_s:.2f}; fast paths off: {plain_ratio:.2f}"
                f" ({statistics.median(plain) * 1000:.1f} ms); server CPU per page {cpu_on_ms:.1f} ms on,"
                f" {cpu_off_ms:.1f} ms off; SQL statements: {counts[10]} for 10, {counts[500]} for 500")  # fmt: skip
    row.extra = {"statements_10": counts[10], "statements_500": counts[500],
                 "reference_back_to_back_s": round(back_to_back_s, 5),
                 "ratio_reference_back_to_back": round(row.ours_s / back_to_back_s, 3),
                 "ratio_fast_paths_off": round(plain_ratio, 3),
                 "ours_fast_paths_off_s": round(statistics.median(plain), 5),
                 "server_cpu_per_page_ms": round(cpu_on_ms, 2),
                 "server_cpu_per_page_fast_paths_off_ms": round(cpu_off_ms, 2)}  # fmt: skip
    return row


# ---------------------------------------------------------------------------------------------- P8


def _started_at(server: ServerProcess, job_id: str) -> float:
    data = server.graphql("query($id: ID!) { node(id: $id) { ... on SyncJob { startedAt state } } }", {"id": job_id})
    return datetime.fromisoformat(data["node"]["startedAt"]).timestamp()


def _full_sync(server: ServerProcess, process: psutil.Process) -> tuple[str, float]:
    """A FULL sync's job id, and the server's CPU seconds from the mutation to the last events sent."""
    cpu_before = sum(process.cpu_times()[:2])
    job_id = server.graphql("mutation { syncLibrary(mode: FULL) { id } }")["syncLibrary"]["id"]
    server.wait_idle()
    time.sleep(0.5)  # the last events in flight
    return job_id, sum(process.cpu_times()[:2]) - cpu_before


def measure_p8(bench: Bench) -> Row:
    library = bench.main_library()
    data_dir = bench.fresh_data_dir("p8")
    scan_into([library.root], data_dir)
    count = bench.sizes.subscribers
    with ServerProcess([library.root], data_dir, watch=False) as server:
        server.wait_idle()
        process = psutil.Process(server.pid)
        # The same sync with nobody subscribed: what the subscribers add to the server's CPU is
        # the fan-out's cost (a delivery's CPU, below), steadier than the p99 on a shared machine.
        _, alone_cpu_s = _full_sync(server, process)
        rss_before = process.memory_info().rss
        client = ClientProcess("subscribers", server.ws_url, str(count), log=data_dir.with_name("p8-clients.log"))
        try:
            connected = int(client.ready().split()[1])
            time.sleep(1.0)  # every subscription registered, the server idle again
            rss_after = process.memory_info().rss
            job_id, watched_cpu_s = _full_sync(server, process)
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
    delivery_cpu_us = max(0.0, watched_cpu_s - alone_cpu_s) / len(latencies) * 1e6
    note = (f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
            f"{per_subscriber_kb:.0f} KB RSS per idle subscriber; {len(latencies):,}/{expected:,} deliveries "
            f"of {events} events; {connected}/{count} connected; server CPU a delivery {delivery_cpu_us:.0f} us "
            f"(the sync {watched_cpu_s:.2f} s watched, {alone_cpu_s:.2f} s alone)")  # fmt: skip
    row.extra = {"p99_ms": round(p99 * 1000, 1), "rss_per_subscriber_kb": round(per_subscriber_kb, 1),
                 "deliveries": len(latencies), "expected_deliveries": expected, "connected": connected,
                 "server_cpu_per_delivery_us": round(delivery_cpu_us, 1)}  # fmt: skip
    ok = p99 <= 0.250 and per_subscriber_kb <= 64 and connected == count
    return _value_row(row, p99 * 1000, "ms p99", ok, count, 1, note)
