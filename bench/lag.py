"""P9: the event loop's lag and the query p99 during a FULL sync with thumbnails, against idle.

P9 runs the app (``create_app`` under uvicorn, on uvloop like ``serve``) inside this process,
because its probe must be a task on the server's own event loop; its query load comes from a
separate process.

The idle reference is the same query on a page as full as during the sync: the root holds
``SEED_VIDEOS`` empty files (a page of the query's 50) before its first idle window, and a second
idle window follows the sync (the library indexed); their samples together are the reference, so
a load drifting during the run weighs on both sides. Before, the root was empty while idle: the
query answered an empty page there (p50 1.3 ms) and 50 videos with their folders once the sync
had written some (p50 2.5 ms idle after the sync, load 2-3), so the ratio counted the page's
content as the sync's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import assets
from bench.library import make_library
from bench.live import ClientProcess, runner_idle
from bench.measures import Bench, Row
from bench.server import HOST, free_port, moved_in, percentile
from gql_media.core.models import JobState, SyncMode, SyncRequest, SyncTarget, SyncTrigger

# Empty files in the root from the start: the page query (50 videos) answers a full page while idle too.
SEED_VIDEOS = 50
# Between the sync's end and the idle window after it (its last events and writes settle).
SETTLE_S = 0.5


def _seed(root: Path) -> None:
    """``root/seed``: ``SEED_VIDEOS`` empty files, indexed by the start-up sync (kept between runs)."""
    seed = root / "seed"
    seed.mkdir(parents=True, exist_ok=True)
    for number in range(SEED_VIDEOS):
        (seed / f"seed {number:03d}.mp4").touch()


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


async def _phase_marks(services: Any, marks: list[tuple[float, str]]) -> None:
    """The wall time at which the running job enters each phase (its progress events)."""
    subscription = services.bus.subscribe_progress()
    try:
        async for progress in subscription:
            if not marks or marks[-1][1] != progress.phase.name:
                marks.append((time.time(), progress.phase.name))
    finally:
        await subscription.aclose()


class _ServerTimes:
    """ASGI middleware: each HTTP request's time inside the server (its first byte in to its last out),
    beside the client's, which adds the client's own process and the sockets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: list[tuple[float, float]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.samples.append((time.time(), time.perf_counter() - started))

        await self.app(scope, receive, timed_send)


async def _p9_run(bench: Bench, content: Path, root: Path, data_dir: Path) -> dict[str, Any]:
    import uvicorn

    from gql_media.app import create_app
    from gql_media.settings import Settings

    port = free_port()
    settings = Settings(roots=[root], data_dir=data_dir, watch=False, host=HOST, port=port, log_level="warning",
                        frontend_dir=Path("/nonexistent-gql-media-frontend"))  # fmt: skip
    app = create_app(settings)
    timed = _ServerTimes(app)
    server = uvicorn.Server(uvicorn.Config(timed, host=HOST, port=port, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    lags: list[tuple[float, float]] = []
    marks: list[tuple[float, str]] = []
    probe: asyncio.Task[None] | None = None
    phases: asyncio.Task[None] | None = None
    client: ClientProcess | None = None
    try:
        for _ in range(1200):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError("the in-process server did not start")
        services = app.state.services()
        await runner_idle(services)  # the start-up sync of the root (its seed only)
        url = f"http://{HOST}:{port}/graphql"
        client = ClientProcess("queries", url, log=data_dir.with_name("p9-client.log"))
        await asyncio.to_thread(client.ready)
        probe = asyncio.create_task(_lag_probe(lags))
        idle_from = time.time()
        await asyncio.sleep(bench.sizes.p9_idle_s)
        idle_to = time.time()
        phases = asyncio.create_task(_phase_marks(services, marks))
        with moved_in(content, root / "content"):
            request = SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL, (SyncTarget(str(root)),))
            job = await services.runner.submit(request)
            final = await services.runner.wait(job.id, timeout_s=600)
            sync_to = time.time()
            if final is None or final.state is not JobState.SUCCEEDED:
                raise RuntimeError(f"the P9 sync did not succeed: {final}")
            await asyncio.sleep(SETTLE_S)
            after_from = time.time()
            await asyncio.sleep(bench.sizes.p9_idle_s)
            after_to = time.time()
            samples = await asyncio.to_thread(client.finish)
            client = None
        sync_from = final.started_at.timestamp() if final.started_at else idle_to
        return {"lags": lags, "samples": samples, "idle": (idle_from, idle_to), "sync": (sync_from, sync_to),
                "after": (after_from, after_to), "added": final.progress.added, "phases": marks,
                "server": timed.samples}  # fmt: skip
    finally:
        if client is not None:
            client.close()
        for task in (probe, phases):
            if task is not None:
                task.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 60)


def _within(samples: list[Any], window: tuple[float, float]) -> list[float]:
    return [value for at, value in samples if window[0] <= at <= window[1]]


def _by_phase(
    samples: list[Any], marks: list[tuple[float, str]], window: tuple[float, float], slow_s: float
) -> dict[str, Any]:
    """Per phase of the sync: how long it lasted, its queries, their p99 and how many reached ``slow_s`` (the p99
    of the whole window): where the slow queries fall (the index's writes, or the media work after them), and
    their p50 (a phase slowing every query, or a few)."""
    bounds = [(max(at, window[0]), name) for at, name in marks if at < window[1]] + [(window[1], "END")]
    seconds: dict[str, float] = {}
    values: dict[str, list[float]] = {}
    for (start, name), (end, _next) in itertools.pairwise(bounds):
        seconds[name] = seconds.get(name, 0.0) + max(0.0, end - start)
        values.setdefault(name, []).extend(value for at, value in samples if start <= at < end)
    return {name: {"s": round(seconds[name], 2), "n": len(found), "slow": sum(v >= slow_s for v in found),
                   "p50_ms": round(percentile(found, 0.5) * 1000, 1) if found else None,
                   "p99_ms": round(percentile(found, 0.99) * 1000, 1) if found else None}
            for name, found in values.items()}  # fmt: skip


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
    _seed(root)
    data_dir = bench.fresh_data_dir("p9")
    result = _run_loop(lambda: _p9_run(bench, content, root, data_dir))
    before = _within(result["samples"], result["idle"])
    after = _within(result["samples"], result["after"])
    idle = before + after
    busy = _within(result["samples"], result["sync"])
    lags = _within(result["lags"], result["sync"])
    if min(len(before), len(after)) < 20 or len(busy) < 20 or not lags:
        raise RuntimeError(f"too few samples: {len(before)} idle before and {len(after)} after, "
                           f"{len(busy)} during the sync, {len(lags)} lags")  # fmt: skip
    idle_p99, busy_p99 = percentile(idle, 0.99), percentile(busy, 0.99)
    before_p99, after_p99 = percentile(before, 0.99), percentile(after, 0.99)
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
    phases = _by_phase(result["samples"], result["phases"], result["sync"], busy_p99)
    server_idle = _within(result["server"], result["idle"]) + _within(result["server"], result["after"])
    server_busy = _within(result["server"], result["sync"])
    server_p99 = {"idle": percentile(server_idle, 0.99) * 1000, "sync": percentile(server_busy, 0.99) * 1000}
    slow_in = ", ".join(f"{name.lower()} {phase['slow']}/{phase['n']} in {phase['s']:.2f} s"
                        for name, phase in phases.items() if phase["n"])  # fmt: skip
    row.note = (f"lag p99 {percentile(lags, 0.99) * 1000:.0f} ms; query p99 {busy_p99 * 1000:.1f} ms "
                f"during ({len(busy)} queries, sync {sync_s:.1f} s) vs {idle_p99 * 1000:.1f} ms idle "
                f"({len(idle)}: {before_p99 * 1000:.1f} ms before, {after_p99 * 1000:.1f} after); "
                f"queries at the p99 or over, by phase: {slow_in}; inside the server p99 {server_p99['sync']:.1f}"
                f" ms during, {server_p99['idle']:.1f} idle")  # fmt: skip
    row.extra = {"max_lag_ms": round(max_lag * 1000, 1), "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
                 "query_p99_sync_ms": round(busy_p99 * 1000, 2), "query_p99_idle_ms": round(idle_p99 * 1000, 2),
                 "query_p99_idle_before_ms": round(before_p99 * 1000, 2),
                 "query_p99_idle_after_ms": round(after_p99 * 1000, 2),
                 "query_p50_ms": {"idle_before": round(percentile(before, 0.5) * 1000, 2),
                                  "sync": round(percentile(busy, 0.5) * 1000, 2),
                                  "idle_after": round(percentile(after, 0.5) * 1000, 2)},
                 "sync_s": round(sync_s, 2), "phases": phases,
                 "server_p99_ms": {key: round(value, 2) for key, value in server_p99.items()}}  # fmt: skip
    return row
