"""Paths the server writes itself (merged mp4s, temp files): the watcher drops their events.

Standard library only; thread-safe, because the watch adapter asks from its own thread.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["OwnWrites"]


class OwnWrites:
    """Paths the server writes itself (merged mp4s, temp files), which the watcher must not sync.

    Thread-safe. A path stays ignored ``grace_s`` after its write ends, because its events reach
    the watcher a little later. A registered folder covers everything below it.

    Example:
        with own_writes.writing(tmp_path):
            merge_into(tmp_path)
    """

    def __init__(self, *, grace_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace_s = grace_s
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}
        self._until: dict[str, float] = {}

    @contextlib.contextmanager
    def writing(self, *paths: str) -> Iterator[None]:
        """Ignore ``paths`` (absolute) while the block runs and ``grace_s`` after."""
        keys = [posixpath.normpath(os.path.abspath(p)) for p in paths]
        with self._lock:
            for key in keys:
                self._active[key] = self._active.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                until = self._clock() + self._grace_s
                for key in keys:
                    left = self._active[key] - 1
                    if left:
                        self._active[key] = left
                    else:
                        del self._active[key]
                    self._until[key] = max(until, self._until.get(key, until))

    def is_own(self, path: str) -> bool:
        """Whether ``path`` (absolute) is, or lies under, a path the server is writing."""
        now = self._clock()
        with self._lock:
            if self._until:
                for key in [k for k, until in self._until.items() if until < now]:
                    del self._until[key]
            if not self._active and not self._until:
                return False
            probe = posixpath.normpath(path)
            while True:
                if probe in self._active or probe in self._until:
                    return True
                parent = posixpath.dirname(probe)
                if parent == probe:
                    return False
                probe = parent
