"""Helpers of the tests that run servers as processes: a free port to give one, and stopping one."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_or_kill(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait for ``process``, already asked to stop, to exit; kill it if it has not after ``timeout_s``."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
