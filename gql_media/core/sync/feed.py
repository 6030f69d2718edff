"""The index's videos handed to a streamed walk a chunk of folders at a time, read a little ahead of it.

A big scope is not read whole before its walk (a million rows are most of a resync's memory):
the engine reads the videos of the indexed folders, a chunk of folders per statement, in the
order the walk lists them, and the walk (in its thread) looks each file up in its folder's chunk
as it lists the folder, building nothing for what is unchanged. The read runs in the driver's
thread and overlaps the walk; the chunks read that the walk has not entered yet hold at most
``window_rows`` rows (the first past it stops the read), so memory is the chunk being walked and
those ahead of it.

A chunk's rows are one dict by path, made in C from the rows as read (``dict(zip(...))``): no
Python code runs per row beside the walk, whose thread would wait for the GIL at each of its
stats. The walk takes from it what it finds; once it lists a folder past the chunk, what is
left of the chunk (videos gone from their place, or in folders it passed by: gone, unreadable)
goes to the batch being walked. What is left of the chunks never passed is ``rest()`` at the end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from gql_media.core.models import IndexRow
from gql_media.core.scanner import KnownVideo, ScanCancelled

__all__ = ["FolderFeed", "walk_order"]

_WAIT_S = 0.05
_PATH = itemgetter(2)


def walk_order(paths: Sequence[str]) -> list[str]:
    """Folder paths in the order a streamed walk lists them (``Scanner.walk``: ``path + "/"``, the root first)."""
    return sorted(paths, key=lambda path: path + "/" if path else "")


@dataclass(slots=True)
class _Chunk:
    """The videos of ``order[start:end]``, by path, how many were read, and whether the walk is in it yet."""

    start: int
    end: int
    videos: dict[str, KnownVideo]
    read: int
    entered: bool = False


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
        self._chunks: deque[_Chunk] = deque()  # read and not yet passed by the walk, in order
        self._loaded = 0  # order[:_loaded] have been read
        self._ahead = 0  # rows of the chunks read that the walk has not entered yet (the window)
        self._walk_done = False
        self._failed = False
        self._cancelled = cancelled
        self._on_room = on_room
        self._changed = threading.Condition()
        self._walked: _Chunk | None = None  # the chunk the walk is in (its thread's alone)

    # The reader's side (the event loop).

    def has_room(self) -> bool:
        return self._walk_done or self._ahead < self.window_rows

    def put(self, upto: int, rows: Sequence[IndexRow]) -> None:
        """The videos of ``order[:upto]`` not yet put are ``rows`` (any order)."""
        videos = dict(zip(map(_PATH, rows), rows, strict=True))
        with self._changed:
            self._chunks.append(_Chunk(self._loaded, upto, videos, len(videos)))
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
        """Once everything is read: the rows the walk never took (of every chunk not passed, its last one's too)."""
        with self._changed:
            left = [row for chunk in self._chunks for row in chunk.videos.values()]
            self._chunks.clear()
            self._ahead = 0
            self._walked = None
        return left

    # The walk's side (its thread).

    def take(self, rel_dir: str, left: list[KnownVideo]) -> dict[str, KnownVideo] | None:
        """The videos of the chunk holding ``rel_dir``, by path (the walk pops what it finds).

        Chunks before it are passed: what is left of them goes to ``left``. None for a folder not
        indexed, or one whose chunk was passed already.
        """
        index = self._at.get(rel_dir)
        if index is None:
            return None
        walked = self._walked
        if walked is not None and index < walked.end:
            # Still in the chunk it is in (the walk's order only goes forward): no lock, nothing to wait
            # for. Most folders are taken this way (a chunk is hundreds of them).
            return walked.videos if index >= walked.start else None
        with self._changed:
            while True:
                self._pass(index, left)
                if self._loaded > index:
                    break
                if self._failed or self._cancelled():
                    raise ScanCancelled
                self._changed.wait(_WAIT_S)
            chunk = self._chunks[0] if self._chunks else None
            if chunk is None or chunk.start > index:
                return None
            if not chunk.entered:
                # The chunk being walked leaves the window: the next one is read while it is walked
                # (chunks may hold more rows than the window).
                chunk.entered = True
                self._release(chunk.read)
            self._walked = chunk
        return chunk.videos

    def _pass(self, index: int, left: list[KnownVideo]) -> None:
        """Let go of the chunks that end at or before ``order[index]`` (the window makes room for those awaited)."""
        chunks = self._chunks
        while chunks and chunks[0].end <= index:
            chunk = chunks.popleft()
            left.extend(chunk.videos.values())
            if not chunk.entered:
                self._release(chunk.read)

    def _release(self, rows: int) -> None:
        was_full = not self.has_room()
        self._ahead -= rows
        if was_full and self.has_room():
            self._on_room()
