"""Real `gql-media serve` processes for the client tests, and the client run as a user runs it.

A job can be held RUNNING for as long as a test needs: each server's HLS merges stall while its gate
file exists (tests/media_hooks.py), so a sync of a folder holding a new HLS download stays in its
MERGING phase until the test removes the gate.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from gql_media.adapters.demo import ClipSpec, encode_clip, write_hls_folder
from tests.media_hooks import MERGE_GATE_ENV
from tests.processes import REPO, free_port
from tests.reliability.conftest import Server

CLIENT_TOKEN = "client-test-token"
SMALL = ClipSpec(width_px=64, height_px=48, fps=10, duration_s=1.0)


@dataclass
class Site:
    """A running server, its library, and the gate that holds its HLS merges."""

    server: Server
    library: Path
    gate: Path
    clip: Path
    _downloads: int = 0

    @property
    def url(self) -> str:
        return self.server.base

    def held_folder(self) -> Path:
        """A new folder holding a new HLS download: a sync of it stays MERGING while the gate exists."""
        self._downloads += 1
        folder = self.library / f"held-{self._downloads}"
        write_hls_folder(folder / "Lecture", SMALL)
        self.gate.touch()
        return folder

    def add_video(self, name: str) -> Path:
        path = self.library / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.clip.read_bytes())
        return path

    def wait_merging(self, timeout_s: float = 120.0) -> str:
        """The id of the job once it is held in its MERGING phase."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = self.server.data("{ currentSync { id state progress { phase } } }")["currentSync"]
            if last is not None and last["progress"]["phase"] == "MERGING":
                return str(last["id"])
            time.sleep(0.1)
        raise AssertionError(f"no job held in MERGING after {timeout_s} s: {last}\n{self.server.log()}")

    def added_events(self, lines: IO[str], prefix: str) -> list[dict[str, Any]]:
        """Add videos and sync until ``lines`` (a watcher's JSON lines) shows one ADDED; those events."""
        seen: list[dict[str, Any]] = []
        for attempt in range(5):  # a subscription may start a moment after its client says it watches
            name = f"{prefix}-{attempt}.mp4"
            self.add_video(name)
            self.server.data("mutation { syncLibrary { id } }")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(e.get("path") == name for e in seen):
                ready, _, _ = select.select([lines], [], [], 1)
                if ready:
                    seen.append(json.loads(lines.readline()))
            self.server.wait_idle()
            added = [e for e in seen if e["kind"] == "ADDED" and e["path"] == name]
            if added:
                return added
        raise AssertionError(f"no ADDED event came: {seen}")

    def release(self) -> None:
        self.gate.unlink(missing_ok=True)


def start_site(base: Path, token: str | None = None) -> Site:
    library = base / "library"
    (library / "sub").mkdir(parents=True)
    clip = encode_clip(base / "clip.mp4", SMALL)
    (library / "first.mp4").write_bytes(clip.read_bytes())
    gate = base / "merge-gate"
    server = Server.indexed(base, library, token=token, env={MERGE_GATE_ENV: str(gate)})
    return Site(server, library, gate, clip)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server per test module, without a token."""
    made = start_site(tmp_path_factory.mktemp("client"))
    try:
        yield made
    finally:
        made.release()
        made.server.stop()


def client_env(url: str | None, token: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GQL_MEDIA_API_TOKEN", None)
    env.pop("GQL_MEDIA_SERVER", None)
    if url is not None:
        env["GQL_MEDIA_SERVER"] = url
    if token is not None:
        env["GQL_MEDIA_API_TOKEN"] = token
    env["PYTHONPATH"] = str(REPO)
    return env


def gql_media(
    *args: str, url: str | None, token: str | None = None, cwd: Path = REPO, timeout_s: float = 180.0
) -> subprocess.CompletedProcess[str]:
    """``gql-media ARGS`` run to its end, as a user runs it (stdout a pipe, not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "gql_media", *args],
        env=client_env(url, token),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def running_gql_media(*args: str, url: str | None, token: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """``gql-media ARGS`` in the background (stdout and stderr piped); killed and closed on leaving."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gql_media", *args],
        env=client_env(url, token),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def closed_port_url() -> str:
    """The URL of a port of this machine where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
