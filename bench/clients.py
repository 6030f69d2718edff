"""Load clients run in their own process, so their work never shares the server's CPU time slice.

``python -m bench.clients subscribers URL COUNT``: COUNT websocket clients (graphql-transport-ws),
each subscribed to ``syncProgress``; prints ``READY <connected>`` once all are subscribed, records
when each event reaches each client, and on ``STOP`` (or end of input) prints one JSON line:
``{"connected": n, "failed": k, "events": {"<jobId>:<sequence>": [elapsedSeconds, [wall times...]]}}``.

``python -m bench.clients queries URL``: sequential GraphQL queries over one keep-alive
connection until ``STOP``; prints ``READY`` first and one JSON line of ``[[start wall time, latency s], ...]``.

Both are bounded: at most ``MAX_RUN_S`` seconds, and the query client at most ``MAX_QUERIES`` requests.
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
MAX_QUERIES = 200_000
CONNECT_CONCURRENCY = 50
PROTOCOL = "graphql-transport-ws"

PROGRESS_SUBSCRIPTION = "subscription { syncProgress { jobId sequence state elapsedSeconds } }"
PAGE_QUERY = "{ videos(first: 50) { edges { node { id name size folder { path } } } } }"


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
    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
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
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": PROGRESS_SUBSCRIPTION}}))
            return ws

    async def _read(self, ws: Any) -> None:
        async for message in ws:
            received = time.time()
            data = json.loads(message)
            kind = data.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "next":
                progress = data["payload"]["data"]["syncProgress"]
                key = f"{progress['jobId']}:{progress['sequence']}"
                entry = self.events.setdefault(key, [progress["elapsedSeconds"], []])
                entry[1].append(received)

    async def run(self, stop: threading.Event) -> dict[str, Any]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        opened = await asyncio.gather(*(self._open(gate) for _ in range(self.count)), return_exceptions=True)
        self.sockets = [ws for ws in opened if not isinstance(ws, BaseException)]
        self.connected = len(self.sockets)
        self.failed = self.count - self.connected
        readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]
        print(f"READY {self.connected}", flush=True)
        deadline = time.monotonic() + MAX_RUN_S
        while not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        return {"connected": self.connected, "failed": self.failed, "events": self.events}


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


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients")
    parser.add_argument("kind", choices=["subscribers", "queries"])
    parser.add_argument("url")
    parser.add_argument("count", type=int, nargs="?", default=1)
    args = parser.parse_args()
    stop = _stop_requested()
    if args.kind == "subscribers":
        result: Any = asyncio.run(_Subscribers(args.url, args.count).run(stop))
    else:
        result = _queries(args.url, stop)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
