"""Real replicas: ``python -m gql_media serve`` processes on one fresh PostgreSQL database.

Events cross between them over the machine's Redis when it answers, else over PostgreSQL
LISTEN/NOTIFY on the same database (a machine with Python only: the embedded server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.postgres import PostgresForTests
from tests.processes import free_port, start_server, wait_healthy, wait_or_kill

TRANSPORT_WS = Subprotocol("graphql-transport-ws")


@pytest.fixture
def cluster_database(postgres: PostgresForTests) -> Iterator[str]:
    """A new PostgreSQL database for this test (a unique name: runs never collide)."""
    url = asyncio.run(postgres.create_database("gqlm_scaleout"))
    try:
        yield url
    finally:
        asyncio.run(postgres.drop_database(url))


@dataclass
class Replica:
    """One server process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        assert not body.get("errors"), (self.name, body)
        return body["data"]

    async def watcher(self) -> dict[str, Any]:
        status: dict[str, Any] = (await self.data("{ watcher { enabled leader error } }"))["watcher"]
        return status

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


async def wait_until(check: Any, timeout_s: float = 30.0, step_s: float = 0.05) -> Any:
    """Poll ``check()`` (async) until it returns something truthy; a generous timeout."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(step_s)


async def leader_of(replica: Replica) -> str | None:
    """The leader ``replica`` names, while its watcher runs."""
    status = await replica.watcher()
    return status["leader"] if status["enabled"] else None


@dataclass
class Cluster:
    """Replicas of one library: same roots, same database, same data dir, same broadcast channel."""

    tmp_path: Path
    database_url: str
    library: Path
    channel: str
    # Redis when the machine has it, else the cluster's database (LISTEN/NOTIFY).
    broadcast_url: str
    replicas: list[Replica] = field(default_factory=list)

    def start(self, name: str) -> Replica:
        port = free_port()
        settings = {
            "GQL_MEDIA_DATABASE_URL": self.database_url,
            "GQL_MEDIA_BROADCAST_URL": self.broadcast_url,
            "GQL_MEDIA_BROADCAST_CHANNEL": self.channel,
            "GQL_MEDIA_INSTANCE_NAME": name,
            "GQL_MEDIA_MEDIA_WORKERS": "1",
            "GQL_MEDIA_SETTLE_MS": "100",
            "GQL_MEDIA_FILE_SETTLE_MS": "300",
        }
        log_path = self.tmp_path / f"replica-{name}.log"
        command = [sys.executable, "-m", "gql_media", "serve", str(self.library)]
        command += ["--port", str(port), "--data-dir", str(self.tmp_path / "data")]
        replica = Replica(name, port, start_server(command, log_path, settings), log_path)
        self.replicas.append(replica)
        return replica

    async def wait_healthy(self, replica: Replica, timeout_s: float = 60.0) -> None:
        await asyncio.to_thread(wait_healthy, replica.process, replica.base, replica.log_path, timeout_s)

    async def start_leader_and_follower(self) -> tuple[Replica, Replica]:
        """Replica A, healthy and leading; then replica B, healthy and knowing that A leads."""
        a = self.start("A")
        await self.wait_healthy(a)
        assert await wait_until(lambda: leader_of(a)) == "A"
        b = self.start("B")
        await self.wait_healthy(b)
        # A replica that starts later learns the leader (and its watcher state) from its heartbeat.
        assert await wait_until(lambda: leader_of(b)) == "A"
        return a, b

    def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in self.replicas:
            wait_or_kill(replica.process, 20)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
            return rows
        finally:
            await connection.close()


@pytest.fixture
def cluster(tmp_path: Path, cluster_database: str, optional_redis_url: str | None) -> Iterator[Cluster]:
    library = tmp_path / "library"
    library.mkdir()
    channel = f"gqlm_test_{uuid.uuid4().hex[:12]}"
    running = Cluster(tmp_path, cluster_database, library, channel, optional_redis_url or cluster_database)
    try:
        yield running
    finally:
        running.stop_all()
        for replica in running.replicas:
            # Shown by pytest when the test failed.
            sys.stderr.write(f"--- {replica.name} log ---\n{replica.log_path.read_text()[-4000:]}\n")


class Subscriber:
    """A graphql-transport-ws client that timestamps every event (``time.monotonic``) as it arrives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] != "next":
                continue
            async with self.arrived:
                self.events.append((time.monotonic(), message["id"], message["payload"]["data"]))
                self.arrived.notify_all()

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"type": "subscribe", "id": op_id, "payload": payload}))

    def of(self, op_id: str) -> list[dict[str, Any]]:
        return [data for _, op, data in self.events if op == op_id]

    async def wait_for(self, predicate: Any, timeout_s: float = 30.0) -> None:
        """Until ``predicate(self)`` holds; a generous timeout, never a timing assertion."""
        async with asyncio.timeout(timeout_s), self.arrived:
            await self.arrived.wait_for(lambda: predicate(self))

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self.ws.close()


@contextlib.asynccontextmanager
async def subscriber(replica: Replica) -> AsyncIterator[Subscriber]:
    ws = await connect(replica.ws_url, subprotocols=[TRANSPORT_WS])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    ack = json.loads(await ws.recv())
    assert ack["type"] == "connection_ack", ack
    client = Subscriber(ws)
    try:
        yield client
    finally:
        await client.aclose()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
