"""A fresh Python interpreter on two pipes: how the media workers and a first index's walk start.

Never a fork of a threaded server, and unlike multiprocessing's spawn it never re-imports the
server's main module. The child imports this package exactly as the server did (its ``sys.path``
as ``PYTHONPATH``: a checkout works uninstalled).
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["start_interpreter"]


def start_interpreter(code: str) -> tuple[subprocess.Popen[bytes], int, int]:
    """Run ``python -c code REQUEST_FD REPLY_FD``: the child reads requests from the first descriptor
    and writes replies to the second. Returns the process, the write end of its requests and the
    read end of its replies (the caller's to close). Raises ``OSError`` when it cannot start."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(request_read), str(reply_write)],
            pass_fds=(request_read, reply_write),
            stdin=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
    except BaseException:
        for fd in (request_read, request_write, reply_read, reply_write):
            os.close(fd)
        raise
    os.close(request_read)
    os.close(reply_write)
    return process, request_write, reply_read
