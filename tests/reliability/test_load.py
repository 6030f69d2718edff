"""Load on loopback: 200 clients querying and 50 holding subscriptions during a full sync of 20k files.

Zero errors, no "database is locked", and every subscriber sees the job's final progress.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import disk_tree
from tests.reliability.conftest import Server, index_paths

pytestmark = pytest.mark.slow

FILES = 20_000
QUERY_CLIENTS = 200
SUBSCRIBERS = 50
QUERIES = [
    "{ videos(first: 20) { totalCount edges { node { id name size status } } } }",
    "{ roots { path videoCount(recursive: true) folders { name } } }",
    "{ currentSync { id state progress { phase done total } } }",
    '{ folder(path: "f07") { videos(first: 10) { edges { node { name } } } } }',
    "{ syncJobs(first: 3) { id state } watcher { enabled } }",
]
PROGRESS = "subscription { syncProgress { jobId state phase done total } }"


async def subscriber(url: str, ready: asyncio.Event, seen: list[dict[str, Any]], errors: list[str]) -> None:
    try:
        async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": PROGRESS}}))
            ready.set()
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] != "next" or message["payload"].get("errors"):
                    errors.append(str(message)[:300])
                    continue
                event = message["payload"]["data"]["syncProgress"]
                seen.append(event)
                if event["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") and event["jobId"] == _wanted[0]:
                    return
    except Exception as exc:
        errors.append(f"subscriber: {exc!r}")


_wanted: list[str] = [""]


async def query_client(
    client: httpx.AsyncClient,
    index: int,
    stop: asyncio.Event,
    latencies_s: list[float],
    errors: list[str],
    resets: list[str],
) -> None:
    turn = index
    while not stop.is_set():
        query = QUERIES[turn % len(QUERIES)]
        turn += 1
        started = time.monotonic()
        try:
            response = await client.post("/graphql", json={"query": query})
            latencies_s.append(time.monotonic() - started)
            if response.status_code != 200 or response.json().get("errors"):
                errors.append(f"{response.status_code}: {response.text[:300]}")
        except httpx.TransportError as exc:
            resets.append(f"client: {exc!r}")


async def test_queries_and_subscriptions_during_a_20k_sync(
    tmp_path: Path, make_server: Callable[..., Server], record_property: Callable[[str, object], None]
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    server = make_server([library], watch=False, env={"GQL_MEDIA_MEDIA_WORKERS": "4"})
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.wait_idle)
    for index in range(FILES):
        folder = library / f"f{index % 100:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"clip {index:05d}.mp4").write_bytes(b"v%d" % index)

    url = f"ws://127.0.0.1:{server.port}/graphql"
    seen: list[list[dict[str, Any]]] = [[] for _ in range(SUBSCRIBERS)]
    errors: list[str] = []
    readies = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    subscribers = [asyncio.create_task(subscriber(url, readies[i], seen[i], errors)) for i in range(SUBSCRIBERS)]
    async with asyncio.timeout(60):
        await asyncio.gather(*(ready.wait() for ready in readies))
    await asyncio.sleep(0.5)  # the subscribe messages are handled

    stop = asyncio.Event()
    latencies_s: list[float] = []
    # Connections uvicorn closed under us: its 5 s keep-alive timer fires while the event loop,
    # busy with the sync, has not read the next request yet (KNOWN ISSUE: loop starvation).
    resets: list[str] = []
    limits = httpx.Limits(max_connections=QUERY_CLIENTS, max_keepalive_connections=QUERY_CLIENTS)
    async with httpx.AsyncClient(base_url=server.base, timeout=120, limits=limits) as client:
        response = await client.post("/graphql", json={"query": "mutation { syncLibrary(mode: FULL) { id } }"})
        _wanted[0] = response.json()["data"]["syncLibrary"]["id"]
        clients = [
            asyncio.create_task(query_client(client, i, stop, latencies_s, errors, resets))
            for i in range(QUERY_CLIENTS)
        ]
        try:
            async with asyncio.timeout(400):
                await asyncio.gather(*subscribers)
        finally:
            stop.set()
            await asyncio.gather(*clients)

    latencies_s.sort()
    p99_ms = latencies_s[int(len(latencies_s) * 0.99)] * 1000 if latencies_s else 0.0
    record_property("load_queries", len(latencies_s))
    record_property("load_errors", len(errors))
    record_property("load_connection_resets", len(resets))
    record_property("load_p99_ms", round(p99_ms, 1))
    print(
        f"load: {len(latencies_s)} queries, {len(errors)} errors, {len(resets)} connection resets,"
        f" p99 {p99_ms:.0f} ms, rss {server.rss_kb()} KiB"
    )
    assert not errors, errors[:5]
    assert not resets, resets[:5]
    assert "database is locked" not in server.log()
    for events in seen:
        final = [e for e in events if e["jobId"] == _wanted[0] and e["state"] == "SUCCEEDED"]
        assert final and final[-1]["phase"] == "DONE", events[-3:]
    assert index_paths(server.db_path) == disk_tree(library)
