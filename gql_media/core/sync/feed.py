"""The index's videos handed to a streamed walk a folder at a time, read a little ahead of it.

A big scope is not read whole before its walk (a million rows are most of a resync's memory):
the engine reads the videos of the indexed folders, a chunk of folders per statement, in the
order the walk lists them, and the walk (in its thread) takes each folder's rows as it lists
the folder, comparing them with the disk and building nothing for what is unchanged. The read
runs in the driver's thread and overlaps the walk; it stays at most ``window_rows`` rows ahead.

Folders the walk passes by without listing (gone from disk, or unreadable) let their rows go to
the batch that passed them; the rows of indexed folders never reached are ``rest()`` at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from gql_media.core.models import IndexRow, parent_of
from gql_media.core.scanner import KnownVideo, ScanCancelled

__all__ = ["FolderFeed", "by_folder", "walk_order"]

_WAIT_S = 0.05


def walk_order(paths: Sequence[str]) -> list[str]:
    """Folder paths in the order a streamed walk lists them (``Scanner.walk``: ``path + "/"``, the root first)."""
    return sorted(paths, key=lambda path: path + "/" if path else "")


def by_folder(rows: Sequence[IndexRow]) -> dict[str, dict[str, KnownVideo]]:
    """Video rows grouped by their folder's path, each folder's by path."""
    grouped: dict[str, dict[str, KnownVideo]] = {}
    for row in rows:
        path = row[2]
        folder = grouped.get(parent := parent_of(path))
        if folder is None:
            grouped[parent] = folder = {}
        folder[path] = row
    return grouped


class FolderFeed:
    """``scanner.KnownByFolder`` over rows the engine reads ahead (thread-safe: one reader, one walk)."""

    def __init__(
        self, order: Sequence[str], window_rows: int, cancelled: Callable[[], bool], on_room: Callable[[], None]
    ) -> None:
        """``cancelled``: whether the walk was asked to stop; ``on_room`` (called from the walk's thread):
        the window has room again."""
        self.order = order
        self.window_rows = window_rows
        self._at = {path: index for index, path in enumerate(order)}
        self._rows: dict[str, dict[str, KnownVideo]] = {}
        self._loaded = 0  # order[:_loaded] have been read
        self._passed = 0  # order[:_passed] have been taken or passed by the walk
        self._ahead = 0  # rows read and not yet taken
        self._walk_done = False
        self._failed = False
        self._cancelled = cancelled
        self._on_room = on_room
        self._changed = threading.Condition()

    # The reader's side (the event loop).

    def has_room(self) -> bool:
        return self._walk_done or self._ahead < self.window_rows

    def put(self, upto: int, rows: dict[str, dict[str, KnownVideo]]) -> None:
        """The rows of ``order[:upto]`` are read (those not yet put are ``rows``)."""
        with self._changed:
            for path, videos in rows.items():
                self._rows[path] = videos  # one the walk passed already is in ``rest()``
                self._ahead += len(videos)
            self._loaded = upto
            self._changed.notify_all()

    def fail(self) -> None:
        """The read failed: a walk waiting for rows stops (the engine raises the read's error)."""
        with self._changed:
            self._failed = True
            self._changed.notify_all()

    def walk_done(self) -> None:
        """The walk ended: the rest is read without a window (it is what vanished)."""
        with self._changed:
            self._walk_done = True
        self._on_room()

    def rest(self) -> list[KnownVideo]:
        """Once everything is read: the rows of the folders the walk never took."""
        with self._changed:
            left = [row for videos in self._rows.values() for row in videos.values()]
            self._rows.clear()
            self._ahead = 0
        return left

    # The walk's side (its thread).

    def take(self, rel_dir: str, left: list[KnownVideo]) -> dict[str, KnownVideo] | None:
        index = self._at.get(rel_dir)
        if index is None:
            return None
        with self._changed:
            if index >= self._passed:
                # Folders before this one that were not taken are passed (what is read of them
                # goes to ``left`` now, so that the window makes room for the rows awaited).
                while True:
                    self._pass(min(index, self._loaded), left)
                    if self._loaded > index:
                        break
                    if self._failed or self._cancelled():
                        raise ScanCancelled
                    self._changed.wait(_WAIT_S)
                self._passed = index + 1
            rows = self._rows.pop(rel_dir, None)
            if rows:
                self._release(len(rows))
            return rows

    def _pass(self, upto: int, left: list[KnownVideo]) -> None:
        for path in self.order[self._passed : upto]:
            passed = self._rows.pop(path, None)
            if passed:
                self._release(len(passed))
                left.extend(passed.values())
        self._passed = max(self._passed, upto)

    def _release(self, rows: int) -> None:
        was_full = not self.has_room()
        self._ahead -= rows
        if was_full and self.has_room():
            self._on_room()
