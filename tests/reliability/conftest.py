"""A real server process for the reliability suite: start, query, wait, kill, and look at its database."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, log_tail, start_server, wait_healthy
from tests.video_sql import VIDEOS

# The real CLI, with one test hook: with GQL_MEDIA_TEST_MERGE_GATE naming a file, the media tool
# gets the test's operation table, whose merge stalls after its remux while that file exists (as a
# slow disk would), so a kill can land mid-merge. Nothing else is patched.
_LAUNCHER = """
import os, sys
if os.environ.get("GQL_MEDIA_TEST_MERGE_GATE"):
    from gql_media.adapters.media import tool
    from tests.media_hooks import GATED_OPERATIONS
    original = tool.PyAvMediaTool.__init__
    def patched(self, workers=1, timeout_s=60.0, operations=None, **options):
        original(self, workers, timeout_s, GATED_OPERATIONS, **options)
    tool.PyAvMediaTool.__init__ = patched
from gql_media.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Server:
    """One ``gql-media serve`` process on loopback."""

    roots: list[Path]
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    watch: bool = True
    token: str | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "library.db"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @classmethod
    def indexed(cls, base: Path, library: Path, token: str | None = None, env: dict[str, str] | None = None) -> Server:
        """A server of ``library`` with no watcher (data and log under ``base``), started and its first index done."""
        server = cls([library], base / "data", base / "server.log", env=env or {}, watch=False, token=token)
        server.start()
        server.wait_idle()
        return server

    def start(self, timeout_s: float = 60.0) -> Server:
        settings = {"GQL_MEDIA_MEDIA_WORKERS": "2", **self.env}
        if self.token is not None:
            settings["GQL_MEDIA_API_TOKEN"] = self.token
        args = [sys.executable, "-c", _LAUNCHER, "serve", *map(str, self.roots)]
        args += ["--data-dir", str(self.data_dir), "--port", str(self.port)]
        if not self.watch:
            args.append("--no-watch")
        self.proc = start_server(args, self.log_path, settings)
        wait_healthy(self.proc, self.base, self.log_path, timeout_s)
        return self

    def log(self) -> str:
        return log_tail(self.log_path)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._reap_workers()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap_workers()

    def _reap_workers(self) -> None:
        """Media workers of a killed server see their pipe close and exit; wait a little for them."""
        if self.proc is None:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _children_of(self.proc.pid):
            time.sleep(0.1)

    def headers(self, token: str | None = None) -> dict[str, str]:
        chosen = token if token is not None else self.token
        return {} if chosen is None else {"Authorization": f"Bearer {chosen}"}

    def post(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> httpx.Response:
        return httpx.post(
            self.base + "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.headers(token),
            timeout=60,
        )

    def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    def rss_kb(self) -> int:
        """The server's peak resident set size (VmHWM), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def wait_idle(self, timeout_s: float = 240.0, after_job: int = 0) -> dict[str, Any]:
        """Until no job runs or waits, the watcher holds nothing back, and a job newer than ``after_job`` ended."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = self.data(IDLE_QUERY)
                jobs = last["syncJobs"]
                pending = last["watcher"]["pendingPaths"]
                newest = int(_job_number(jobs[0]["id"])) if jobs else 0
                if (
                    last["currentSync"] is None
                    and pending == 0
                    and jobs
                    and newest > after_job
                    and all(j["state"] in TERMINAL for j in jobs)
                ):
                    return dict(jobs[0])
            time.sleep(0.25)
        raise AssertionError(f"server not idle after {timeout_s} s: {last}\n{self.log()}")


IDLE_QUERY = """{ currentSync { id state } watcher { pendingPaths error }
  syncJobs(first: 5) { id state progress { phase done total added removed failed } errors { path message } } }"""
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def _job_number(global_id: str) -> int:
    import base64

    return int(base64.b64decode(global_id).decode().partition(":")[2])


def _children_of(pid: int) -> list[int]:
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Builds servers (not started); every one still running at the end is stopped."""
    made: list[Server] = []

    def make(roots: list[Path], **kwargs: Any) -> Server:
        data_dir = kwargs.pop("data_dir", tmp_path / "data")
        server = Server(roots=roots, data_dir=data_dir, log_path=tmp_path / f"server-{len(made)}.log", **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def index_paths(db_path: Path) -> set[tuple[str, str]]:
    """(kind, path) of every indexed entry, read straight from the SQLite file."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
        folders = conn.execute("SELECT path FROM folders").fetchall()
        videos = conn.execute(f"SELECT path FROM {VIDEOS}").fetchall()
    return {("folder", r[0]) for r in folders} | {("video", r[0]) for r in videos}


def db_health(db_path: Path) -> dict[str, Any]:
    """integrity_check, duplicate (root, path) rows, and the videos' thumbnail keys."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
        dup_folders = conn.execute(
            "SELECT root_id, path, COUNT(*) FROM folders GROUP BY root_id, path HAVING COUNT(*) > 1"
        ).fetchall()
        dup_videos = conn.execute(
            f"SELECT root_id, path, COUNT(*) FROM {VIDEOS} GROUP BY root_id, path HAVING COUNT(*) > 1"
        ).fetchall()
        keys = {r[0] for r in conn.execute("SELECT thumbnail_key FROM videos WHERE thumbnail_key IS NOT NULL")}
        ids = {r[0] for r in conn.execute("SELECT id FROM videos")}
    return {
        "integrity": [r[0] for r in integrity],
        "foreign_keys": foreign,
        "duplicates": dup_folders + dup_videos,
        "thumbnail_keys": keys,
        "video_ids": ids,
    }


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
