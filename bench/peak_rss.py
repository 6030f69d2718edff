"""A command's own peak RSS and wall time, not the bench's.

Linux keeps, in the rusage that ``wait4`` reports for a child, the RSS high-water mark of the
memory the child gave up at ``exec``: the forking parent's (shared until ``exec`` under vfork).
A ``gql_media scan`` started straight from a bench process that had grown to 247 MB reported
246.8 MB three times in a row (P10 of a full run, after P1-P9 ran in the bench's own process),
and 153 MB when P10 ran alone. So the command is started by a small launcher (this file run as a
script by a fresh ``python -I -S``: os, sys, json and time only, about 10 MB), whose ``wait4`` of
the command sees the command's own peak; the launcher also times the command itself (its own start
is not in the wall).

``run_measured(command, env=..., output=...)`` returns a ``Measured``; the command's exit code is
in it, so the caller says what a failure means.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Measured", "run_measured"]


@dataclass(frozen=True, slots=True)
class Measured:
    elapsed_s: float
    peak_rss_mb: float
    exit_code: int


def run_measured(command: list[str], *, env: dict[str, str] | None = None, output: IO[bytes] | None = None) -> Measured:
    """Run ``command`` (its stdout and stderr to ``output``) through the launcher; its own figures."""
    with tempfile.TemporaryDirectory(prefix="gql_media_peak_rss_") as scratch:
        result = Path(scratch) / "result.json"
        launcher = [sys.executable, "-I", "-S", str(Path(__file__).resolve()), str(result), "--", *command]
        subprocess.run(launcher, env=env, stdout=output, stderr=output, check=False)
        if not result.is_file():
            raise RuntimeError(f"the launcher of {command[0]!r} reported nothing")
        figures = json.loads(result.read_text())
    return Measured(float(figures["elapsed_s"]), float(figures["maxrss_kb"]) / 1024, int(figures["exit_code"]))


def _launch(result_path: str, command: list[str]) -> int:
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the command: the launcher's small memory is what it leaves at exec
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    elapsed_s = time.perf_counter() - started
    exit_code = os.waitstatus_to_exitcode(status)
    figures = {"elapsed_s": elapsed_s, "maxrss_kb": usage.ru_maxrss, "exit_code": exit_code}  # KiB on Linux
    Path(result_path).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    separator = sys.argv.index("--")
    sys.exit(_launch(sys.argv[1], sys.argv[separator + 1 :]))
