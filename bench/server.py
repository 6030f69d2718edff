"""A real ``python -m gql_media serve`` in a subprocess, and the clients the measures talk to it with.

Loopback only. Every wait is bounded: a server that does not come up, or an event that never
arrives, fails the measure with a message instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gql_media.core.models import JobState, SyncMode, SyncRequest, SyncTarget, SyncTrigger
from gql_media.services import open_services
from gql_media.settings import Settings

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
IDLE_TIMEOUT_S = 600.0
_NO_FRONTEND = "/nonexistent-gql-media-frontend"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a bench server: quiet logs, no frontend, no token."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("GQL_MEDIA_"):
            del env[name]
    env |= {"GQL_MEDIA_LOG_LEVEL": "warning", "GQL_MEDIA_FRONTEND_DIR": _NO_FRONTEND}
    env |= dict(extra or {})
    return env


def scan_into(roots: Sequence[Path], data_dir: Path, *, mark_probed: bool = True) -> None:
    """Index ``roots`` into ``data_dir`` as ``gql_media scan`` does (its services, in this process: no start-up).

    ``mark_probed`` marks every video BROKEN ("empty file"): the bench's synthetic files are empty,
    and a server probes every PENDING video on its start-up sync; this stands for a library the
    server has already been through once, so a measure starts from the steady state.
    """
    asyncio.run(_scan(roots, data_dir))
    if mark_probed:
        with contextlib.closing(sqlite3.connect(data_dir / "library.db")) as db, db:
            db.execute("UPDATE videos SET status = 'BROKEN', error = 'empty bench file' WHERE status = 'PENDING'")


async def _scan(roots: Sequence[Path], data_dir: Path) -> None:
    settings = Settings(roots=list(roots), data_dir=data_dir, watch=False)
    async with open_services(settings, media=False) as services:
        request = SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL, tuple(SyncTarget(str(r)) for r in roots))
        job = await services.runner.submit(request)
        final = await services.runner.wait(job.id, timeout_s=IDLE_TIMEOUT_S)
    if final is None or final.state is not JobState.SUCCEEDED:
        raise RuntimeError(f"the scan did not succeed: {final}")


@dataclass
class ServerProcess:
    """``python -m gql_media serve ROOTS`` on a free loopback port; ``with`` starts and stops it."""

    roots: Sequence[Path]
    data_dir: Path
    watch: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    module: str = "gql_media"  # ``bench.memory_trace`` for the soak's --trace-memory
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: Any = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/graphql"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + "-server.log")

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        command = [sys.executable, "-m", self.module, "serve", *map(str, self.roots)]
        command += ["--port", str(self.port), "--host", HOST, "--data-dir", str(self.data_dir)]
        if not self.watch:
            command.append("--no-watch")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, env=server_env(self.env), stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz in {START_TIMEOUT_S:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def graphql(self, query: str, variables: dict[str, Any] | None = None, client: httpx.Client | None = None) -> Any:
        return graphql(self.url, query, variables, client)

    def wait_idle(self, timeout_s: float = IDLE_TIMEOUT_S) -> None:
        """Until no sync job runs or waits (the start-up sync, its media steps, a watcher job)."""
        wait_idle(self.url, timeout_s)


def graphql(url: str, query: str, variables: dict[str, Any] | None = None, client: httpx.Client | None = None) -> Any:
    body = {"query": query, "variables": variables or {}}
    response = (client or httpx).post(url, json=body, timeout=60)  # type: ignore[attr-defined]
    response.raise_for_status()
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


_JOBS = "{ currentSync { id state } syncJobs(first: 5) { state } }"


def wait_idle(url: str, timeout_s: float = IDLE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        data = graphql(url, _JOBS)
        busy = data["currentSync"] is not None or any(j["state"] in ("QUEUED", "RUNNING") for j in data["syncJobs"])
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 0.1:
            return
        time.sleep(0.02)
    raise RuntimeError(f"the server was still busy after {timeout_s:g} s")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


@contextlib.contextmanager
def moved_in(source: Path, target: Path) -> Iterator[Path]:
    """``source`` renamed to ``target`` for the block, renamed back after (also on errors)."""
    if target.exists() and not source.exists():
        os.rename(target, source)  # left there by an interrupted run
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
    try:
        yield target
    finally:
        os.rename(target, source)


def dump_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
