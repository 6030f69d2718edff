"""Load clients run in their own process, so their work never shares the server's CPU time slice.

``python -m bench.clients subscribers URL COUNT``: COUNT websocket clients (graphql-transport-ws),
each subscribed to ``syncProgress``; prints ``READY <connected>`` once all are subscribed, records
when each event reaches each client, and on ``STOP`` (or end of input) prints one JSON line:
``{"connected": n, "failed": k, "events": {"<jobId>:<sequence>": [elapsedSeconds, [wall times...]]}}``.

``python -m bench.clients queries URL``: sequential GraphQL queries over one keep-alive
connection until ``STOP``; prints ``READY`` first and one JSON line of ``[[start wall time, latency s], ...]``.

``python -m bench.clients changes URL COUNT``: COUNT websocket clients subscribed to ``libraryChanged``
with the web UI's selection (the soak's subscribers); on ``STOP`` prints one JSON line:
``{"connected": n, "failed": k, "subscribers": [{"received", "resyncs", "missing", "missing_silently",
"last_sequence", "ended"}, ...]}`` (``missing``: sequences that never arrived; silently: with no RESYNC in their place).

``python -m bench.clients paced URL COUNT --rate R``: COUNT query clients (one connection each) at R
requests per second each, until ``STOP``; prints ``READY`` first and one JSON line of
``{"samples": [[start wall time, latency s], ...], "failed": k, "errors": [...]}``.

All are bounded: at most ``--max-run-s`` seconds (``MAX_RUN_S`` by default), and the sequential
query client at most ``MAX_QUERIES`` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

import httpx
import websockets

MAX_RUN_S = 600.0
DRAIN_QUIET_S = 2.0
DRAIN_MAX_S = 120.0
MAX_QUERIES = 200_000
CONNECT_CONCURRENCY = 50
PROTOCOL = "graphql-transport-ws"

PROGRESS_SUBSCRIPTION = "subscription { syncProgress { jobId sequence state elapsedSeconds } }"
PAGE_QUERY = "{ videos(first: 50) { edges { node { id name size folder { path } } } } }"
# The web UI's subscription (frontend-example/src/queries.ts).
CHANGES_SUBSCRIPTION = """subscription LibraryChanged {
  libraryChanged {
    sequence kind id path oldPath rootPath jobId
    entry { ...FolderFields ...VideoFields }
  }
}
fragment FolderFields on Folder {
  __typename id name path rootPath
  videoCount(recursive: true)
  totalSize(recursive: true)
  parent { id }
}
fragment VideoFields on Video {
  __typename id name path rootPath size modifiedAt durationSeconds width height
  videoCodec audioCodec container status error thumbnailUrl streamUrl
  folder { id }
}"""


def _stop_requested() -> threading.Event:
    """Set when the parent writes STOP or closes our input."""
    stop = threading.Event()

    def watch() -> None:
        for line in sys.stdin:
            if line.strip() == "STOP":
                break
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    return stop


class _Subscribers:
    query = PROGRESS_SUBSCRIPTION

    def __init__(self, url: str, count: int, max_run_s: float = MAX_RUN_S) -> None:
        self.url = url
        self.count = count
        self.max_run_s = max_run_s
        self.connected = 0
        self.failed = 0
        self.events: dict[str, list[Any]] = {}
        self.sockets: list[Any] = []

    async def _open(self, gate: asyncio.Semaphore) -> Any:
        async with gate:
            ws = await websockets.connect(
                self.url, subprotocols=[PROTOCOL], open_timeout=60, ping_interval=None, max_queue=None
            )
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": self.query}}))
            return ws

    async def _read(self, ws: Any, index: int) -> None:
        async for message in ws:
            received = time.time()
            data = json.loads(message)
            kind = data.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "next":
                self._event(index, data["payload"]["data"], received)
            elif kind in ("error", "complete"):
                self._ended(index, data)
                return

    def _event(self, index: int, data: dict[str, Any], received: float) -> None:
        """One event of subscriber ``index`` (its ``data``), which came at ``received`` (epoch seconds)."""
        progress = data["syncProgress"]
        key = f"{progress['jobId']}:{progress['sequence']}"
        entry = self.events.setdefault(key, [progress["elapsedSeconds"], []])
        entry[1].append(received)

    def _ended(self, index: int, message: dict[str, Any]) -> None:
        """Subscriber ``index``'s subscription ended (``message``: the server's error or complete)."""

    def result(self) -> dict[str, Any]:
        return {"connected": self.connected, "failed": self.failed, "events": self.events}

    async def _drain(self) -> None:
        """Events still on their way are read (not counted lost): until none came for a while."""

    async def run(self, stop: threading.Event) -> dict[str, Any]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        opened = await asyncio.gather(*(self._open(gate) for _ in range(self.count)), return_exceptions=True)
        self.sockets = [ws for ws in opened if not isinstance(ws, BaseException)]
        self.connected = len(self.sockets)
        self.failed = self.count - self.connected
        readers = [asyncio.create_task(self._read(ws, index)) for index, ws in enumerate(self.sockets)]
        print(f"READY {self.connected}", flush=True)
        deadline = time.monotonic() + self.max_run_s
        while not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._drain()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        return self.result()


class _ChangeSubscribers(_Subscribers):
    """``libraryChanged`` subscribers that count what arrived and what never did, by sequence."""

    query = CHANGES_SUBSCRIPTION

    def __init__(self, url: str, count: int, max_run_s: float = MAX_RUN_S) -> None:
        super().__init__(url, count, max_run_s)
        self.stats = [{"received": 0, "resyncs": 0, "missing": 0, "missing_silently": 0, "last_sequence": 0,
                       "ended": 0, "gaps": []}
                      for _ in range(count)]  # fmt: skip

    def _event(self, index: int, data: dict[str, Any], received: float) -> None:
        stats = self.stats[index]
        change = data["libraryChanged"]
        sequence = change["sequence"]
        last = stats["last_sequence"]
        stats["received"] += 1
        if last and sequence > last + 1:
            stats["missing"] += sequence - last - 1
            if change["kind"] != "RESYNC":
                stats["missing_silently"] += sequence - last - 1
                if len(stats["gaps"]) < 20:
                    stats["gaps"].append([last, sequence, change["kind"], round(received, 2)])
        if change["kind"] == "RESYNC":
            stats["resyncs"] += 1
        stats["last_sequence"] = max(last, sequence)

    def _ended(self, index: int, message: dict[str, Any]) -> None:
        print(f"subscription {index} ended: {message}", file=sys.stderr, flush=True)
        self.stats[index]["ended"] = 1

    def result(self) -> dict[str, Any]:
        return {"connected": self.connected, "failed": self.failed, "subscribers": self.stats[: self.connected]}

    async def _drain(self) -> None:
        """Until every subscriber has reached the newest sequence any of them got, and nothing came for
        a while: a subscriber still working through its queue is behind, not missing events."""

        def state() -> tuple[int, bool]:
            stats = self.stats[: self.connected]
            newest = max((s["last_sequence"] for s in stats), default=0)
            return sum(s["received"] for s in stats), all(s["last_sequence"] == newest for s in stats)

        deadline = time.monotonic() + DRAIN_MAX_S
        last = -1
        while time.monotonic() < deadline:
            received, level = state()
            if received == last and level:
                return
            last = received
            await asyncio.sleep(DRAIN_QUIET_S)


def _queries(url: str, stop: threading.Event) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    body = {"query": PAGE_QUERY}
    deadline = time.monotonic() + MAX_RUN_S
    with httpx.Client(timeout=60) as client:
        client.post(url, json=body).raise_for_status()  # connect and warm up
        print("READY", flush=True)
        while not stop.is_set() and time.monotonic() < deadline and len(samples) < MAX_QUERIES:
            wall = time.time()
            started = time.perf_counter()
            response = client.post(url, json=body)
            latency = time.perf_counter() - started
            response.raise_for_status()
            samples.append((wall, latency))
    return samples


async def _paced_queries(url: str, count: int, rate: float, stop: threading.Event, max_run_s: float) -> Any:
    """``count`` clients, each starting a query every ``1 / rate`` s (at once when the last one ran late)."""
    samples: list[tuple[float, float]] = []
    errors: list[str] = []
    body = {"query": PAGE_QUERY}
    deadline = time.monotonic() + max_run_s

    async def client(http: httpx.AsyncClient, offset_s: float) -> None:
        await asyncio.sleep(offset_s)
        next_at = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            wall = time.time()
            started = time.perf_counter()
            try:
                response = await http.post(url, json=body)
                response.raise_for_status()
                if response.json().get("errors"):
                    raise RuntimeError(str(response.json()["errors"])[:300])
                samples.append((wall, time.perf_counter() - started))
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                errors.append(f"{type(error).__name__}: {error}"[:300])
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    clients = [httpx.AsyncClient(timeout=60) for _ in range(count)]
    try:
        for http in clients:
            (await http.post(url, json=body)).raise_for_status()  # connect and warm up
        print("READY", flush=True)
        await asyncio.gather(*(client(http, i / count / rate) for i, http in enumerate(clients)))
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    return {"samples": samples, "failed": len(errors), "errors": errors[:20]}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients")
    parser.add_argument("kind", choices=["subscribers", "changes", "queries", "paced"])
    parser.add_argument("url")
    parser.add_argument("count", type=int, nargs="?", default=1)
    parser.add_argument("--rate", type=float, default=5.0, help="paced: requests per second per client")
    parser.add_argument("--max-run-s", type=float, default=MAX_RUN_S)
    args = parser.parse_args()
    stop = _stop_requested()
    if args.kind == "subscribers":
        result: Any = asyncio.run(_Subscribers(args.url, args.count, args.max_run_s).run(stop))
    elif args.kind == "changes":
        result = asyncio.run(_ChangeSubscribers(args.url, args.count, args.max_run_s).run(stop))
    elif args.kind == "paced":
        result = asyncio.run(_paced_queries(args.url, args.count, args.rate, stop, args.max_run_s))
    else:
        result = _queries(args.url, stop)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
