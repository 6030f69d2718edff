"""Made HLS segments (and WebVTT subtitles) on disk under the data dir, bounded in bytes, least recently used out.

Standard library only; every method is blocking file work: call them in a thread.

Layout: ``<root>/<source>/<variant>/<name>``. ``source`` is a video's id, so dropping a source
(its file changed or was removed) is one ``rmtree``; ``variant`` names what the files were made
from and how (method, the source's size and mtime, the transcode settings), so a file made for an
older version of the source is never served even if an invalidation was missed.

A file enters the cache only whole: it is written under a temporary name beside its final one
and renamed over (``commit``); temporary files left by a crash are removed by ``load``.

A use is recorded in the file's access time, so the order survives a restart; its modification
time stays its making's, so the Last-Modified (and a stat-based ETag) of every response serving
it stays the same, and a player's Range request with If-Range still gets its range.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["TEMP_MARKER", "SegmentCache"]

TEMP_MARKER = ".tmp-"


class SegmentCache:
    """A byte-bounded LRU of files under ``root``.

    Args:
        root: the cache folder (created when missing).
        max_bytes: the bound; committing a file evicts the least recently used ones past it.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max(0, max_bytes)
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # path -> bytes, least recently used first
        self._total_bytes = 0

    @property
    def total_bytes(self) -> int:
        return self._total_bytes

    def load(self) -> None:
        """Index what a previous run left (least recently used first) and remove its partial files."""
        self.root.mkdir(parents=True, exist_ok=True)
        found: list[tuple[float, str, int]] = []
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(folder, name)
                if TEMP_MARKER in name:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                    continue
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    found.append((max(st.st_atime, st.st_mtime), path, st.st_size))
        found.sort()
        with self._lock:
            self._sizes.clear()
            self._total_bytes = 0
            for _used, path, size in found:
                self._sizes[path] = size
                self._total_bytes += size
        self._evict()

    def path_for(self, source: str, variant: str, name: str) -> Path:
        """Where a file of ``source`` (made as ``variant``) lives once made."""
        return self.root / source / variant / name

    def lookup(self, path: Path) -> bool:
        """Whether ``path`` is cached; a hit counts as a use."""
        key = str(path)
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
                hit = True
            else:
                hit = False
        if hit and not path.exists():  # removed behind our back (another replica's eviction)
            self._forget(key)
            return False
        if not hit and path.exists():  # made by another replica sharing the data dir
            with contextlib.suppress(OSError):
                self._remember(key, path.stat().st_size)
                return True
        if hit:
            with contextlib.suppress(OSError):
                os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))  # used now; made when it was
        return hit

    def temp_path(self, path: Path) -> Path:
        """A fresh temporary name beside ``path`` (its folder is created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f"{path.name}{TEMP_MARKER}{secrets.token_hex(6)}")

    def commit(self, temp: Path, path: Path) -> None:
        """Rename the finished ``temp`` over ``path`` and count it; may evict older files."""
        size = temp.stat().st_size
        os.replace(temp, path)
        self._remember(str(path), size)
        self._evict(keep=str(path))

    def discard(self, temp: Path) -> None:
        """Remove a temporary file that will not be committed (a failed or cancelled make)."""
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    def drop_source(self, source: str) -> int:
        """Remove every file of ``source``; returns the bytes freed."""
        return self.drop_sources([source]).get(source, 0)

    def drop_sources(self, sources: Iterable[str], keep: Callable[[str, str], bool] | None = None) -> dict[str, int]:
        """Remove every file of each of ``sources`` but those of a variant ``keep(source, variant)``
        accepts; returns the bytes freed by each source that had files.

        One pass over the files counted and one listing of the cache folder, whatever the number of
        sources: a sync that probes 10,000 videos drops them all, nearly all with nothing cached, and
        a ``rmtree`` per source (a failed ``lstat`` and its exception each) held the GIL beside the
        server's queries for a quarter of a second (bench P9). ``keep`` is asked only of the variant
        folders a source has.
        """
        wanted = set(sources)
        prefix = str(self.root) + os.sep
        freed: dict[str, int] = {}
        kept: dict[tuple[str, str], bool] = {}

        def stays(source: str, variant: str) -> bool:
            if keep is None:
                return False
            if (source, variant) not in kept:
                kept[(source, variant)] = keep(source, variant)
            return kept[(source, variant)]

        with self._lock:
            counted = [(key, _place_of(key, prefix)) for key in self._sizes]
        gone = [(key, place[0]) for key, place in counted if place and place[0] in wanted and not stays(*place)]
        with self._lock:
            for key, source in gone:
                size = self._sizes.pop(key, 0)
                self._total_bytes -= size
                freed[source] = freed.get(source, 0) + size
        try:
            present = os.listdir(self.root)
        except FileNotFoundError:
            present = []
        for name in present:
            if name not in wanted:
                continue
            if keep is None:
                shutil.rmtree(self.root / name, ignore_errors=True)
                continue
            try:
                variants = os.listdir(self.root / name)
            except OSError:
                continue
            for variant in variants:
                if not stays(name, variant):
                    shutil.rmtree(self.root / name / variant, ignore_errors=True)
            with contextlib.suppress(OSError):  # (not empty: a variant stays, or one is being made)
                os.rmdir(self.root / name)
        return {source: size for source, size in freed.items() if size}

    def _remember(self, key: str, size: int) -> None:
        with self._lock:
            previous = self._sizes.pop(key, 0)
            self._sizes[key] = size
            self._total_bytes += size - previous

    def _forget(self, key: str) -> None:
        with self._lock:
            self._total_bytes -= self._sizes.pop(key, 0)

    def _evict(self, keep: str | None = None) -> None:
        victims: list[str] = []
        with self._lock:
            while self._total_bytes > self.max_bytes and self._sizes:
                key, size = next(iter(self._sizes.items()))
                if key == keep:
                    if len(self._sizes) == 1:
                        break  # a single file larger than the bound stays until the next one
                    self._sizes.move_to_end(key)
                    continue
                del self._sizes[key]
                self._total_bytes -= size
                victims.append(key)
        for key in victims:
            with contextlib.suppress(OSError):
                os.unlink(key)


def _place_of(key: str, prefix: str) -> tuple[str, str] | None:
    """The source and variant folders of a counted file's path (``<root>/<source>/<variant>/<name>``);
    None for one not under ``prefix``."""
    if not key.startswith(prefix):
        return None
    source, _, rest = key[len(prefix) :].partition(os.sep)
    return source, rest.partition(os.sep)[0]
