"""Helpers of the tests that run servers as processes: a free port, a `gql-media serve` started and
healthy, and stopping one."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(command: Sequence[str], log_path: Path, settings: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` (a ``serve`` command line) in the repository, its output appended to ``log_path``.

    Its environment is this one's without any ``GQL_MEDIA_`` setting (a developer's token or database
    never reaches a test's server), with quiet logs, no web UI, and then ``settings``.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("GQL_MEDIA_")}
    env |= {"GQL_MEDIA_LOG_LEVEL": "warning", "GQL_MEDIA_FRONTEND_DIR": str(log_path.with_name("no-frontend"))}
    env |= settings
    with log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(process: subprocess.Popen[bytes], base: str, log_path: Path, timeout_s: float = 60.0) -> None:
    """Until ``base``/healthz answers 200; fails with the end of the log when the process exits first, or at
    ``timeout_s`` (a bound on a hang, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{log_path.name}: the server exited with {process.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{log_path.name}: the server was not healthy after {timeout_s:g} s:\n{log_tail(log_path)}")


def log_tail(log_path: Path, chars: int = 6000) -> str:
    """The end of a server's log."""
    return log_path.read_text(errors="replace")[-chars:]


def wait_or_kill(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait for ``process``, already asked to stop, to exit; kill it if it has not after ``timeout_s``."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
