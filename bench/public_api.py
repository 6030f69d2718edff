"""``python -m bench.public_api [--reps N] [--quick]``: P1 and P2 as a user meets them, through the public API.

A real server (the demo library as its first root), one ``syncProgress`` subscriber on a websocket
(graphql-transport-ws), and the bench's 100k library:
- P1: ``addRoot`` of the library, to the job's terminal event, and to the end of its writing phase
  (the index complete and queryable; the job goes on with its media steps: the library's files are
  empty, so its probing step marks 100k videos BROKEN, set-wise);
- P2: ``syncLibrary(mode: FULL, path:)`` of it, unchanged, to the job's terminal event (its media
  steps included).

Each is timed beside the bare walk (``timed_walk_s``), alternating, and printed as a ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

from bench.library import make_library, timed_walk_s
from bench.measures import FULL, QUICK
from bench.server import ServerProcess

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
PROGRESS = "subscription { syncProgress { jobId state phase done total } }"
EVENT_TIMEOUT_S = 300.0


def _subscribed(ws: ClientConnection) -> None:
    ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    if json.loads(ws.recv(timeout=30))["type"] != "connection_ack":
        raise RuntimeError("the server did not acknowledge the websocket")
    ws.send(json.dumps({"type": "subscribe", "id": "p", "payload": {"query": PROGRESS}}))
    time.sleep(0.3)  # the subscription registered before the first mutation


def _until_done(ws: ClientConnection, started: float, job_id: str | None = None) -> tuple[float, float]:
    """Seconds from ``started`` to the end of the job's writing phase and to its terminal event."""
    written = 0.0
    while True:
        message = json.loads(ws.recv(timeout=EVENT_TIMEOUT_S))
        if message["type"] != "next":
            continue
        progress = message["payload"]["data"]["syncProgress"]
        if job_id is not None and progress["jobId"] != job_id:
            continue
        if not written and progress["phase"] not in ("SCANNING", "DIFFING", "WRITING"):
            written = time.perf_counter() - started
        if progress["state"] in TERMINAL:
            if progress["state"] != "SUCCEEDED":
                raise RuntimeError(f"the job ended {progress['state']}: {progress}")
            return written or time.perf_counter() - started, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="servers started (each: one P1, two P2)")
    parser.add_argument("--quick", action="store_true", help="the quick bench's library (10k files)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gql_media_bench")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.workdir.mkdir(parents=True, exist_ok=True)
    library = make_library(args.workdir / f"library-{sizes.files}-{sizes.folders}", sizes.files, sizes.folders)
    data = Path(tempfile.mkdtemp(prefix="public-api-", dir=args.workdir))
    times: dict[str, list[float]] = {"p1_written": [], "p1_done": [], "p1_walk": [], "p2_done": [], "p2_walk": []}
    for rep in range(args.reps):
        with ServerProcess([], data / f"data-{rep}", watch=False) as server:
            server.wait_idle()  # the demo library's own first index and media steps
            with connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                _subscribed(ws)
                times["p1_walk"].append(timed_walk_s(library))
                started = time.perf_counter()
                server.graphql("mutation($p: String!) { addRoot(path: $p) { id } }", {"p": str(library.root)})
                written, done = _until_done(ws, started)
                times["p1_written"].append(written)
                times["p1_done"].append(done)
                server.wait_idle()
                for _ in range(2):
                    times["p2_walk"].append(timed_walk_s(library))
                    started = time.perf_counter()
                    job = server.graphql("mutation($p: String!) { syncLibrary(mode: FULL, path: $p) { id } }",
                                   {"p": str(library.root)})["syncLibrary"]["id"]  # fmt: skip
                    times["p2_done"].append(_until_done(ws, started, job)[1])
                    server.wait_idle()
        print(f"rep {rep + 1}: P1 written {written:.3f} s, done {done:.3f} s (walk {times['p1_walk'][-1]:.3f} s); "
              f"P2 {times['p2_done'][-2]:.3f} / {times['p2_done'][-1]:.3f} s "
              f"(walk {times['p2_walk'][-2]:.3f} / {times['p2_walk'][-1]:.3f} s)", flush=True)  # fmt: skip
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"P1 through the API, {library.files:,} files: index written {median['p1_written']:.3f} s = "
          f"{median['p1_written'] / median['p1_walk']:.2f}x the walk ({median['p1_walk']:.3f} s); the job done "
          f"{median['p1_done']:.3f} s = {median['p1_done'] / median['p1_walk']:.2f}x")  # fmt: skip
    print(f"P2 through the API: {median['p2_done']:.3f} s = {median['p2_done'] / median['p2_walk']:.2f}x "
          f"the walk ({median['p2_walk']:.3f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
