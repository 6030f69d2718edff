"""The index's videos handed to a streamed walk a chunk of folders at a time, read a little ahead of it.

A big scope is not read whole before its walk (a million rows are most of a resync's memory):
the engine reads the videos of the indexed folders, a chunk of folders per statement, in the
order the walk lists them, and the walk (in its thread) compares each folder it lists with what
the chunk holds of it. The read runs in the driver's thread and overlaps the walk; the chunks
read that the walk has not entered yet hold at most ``window_rows`` rows (the first past it
stops the read), so memory is the chunk being walked and those ahead of it.

A folder's videos come as the store reads them for a resync (``scanner.FolderStamps``: their
names and stamps, as two texts) and are kept so until the walk lists the folder (no object of
the collector's per folder, nothing per video): an unchanged folder is compared whole, and no
row is made for it (``scanner.FolderVideos``). Rows are made for what differs, and for the
folders the walk passed by without listing them (gone, unreadable): those go to the batch
being walked once it lists a folder past their chunk. What is left of the chunks never passed
is ``rest()`` at the end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from gql_media.core.scanner import HEX_PER_VIDEO, FolderStamps, FolderVideos, KnownVideo, ScanCancelled

__all__ = ["FolderFeed", "walk_order"]

_WAIT_S = 0.05
_FOLDER_ID, _STAMPS = itemgetter(0), itemgetter(2)


def walk_order(paths: Sequence[str]) -> list[str]:
    """Folder paths in the order a streamed walk lists them (``Scanner.walk``: ``path + "/"``, the root first)."""
    return sorted(paths, key=lambda path: path + "/" if path else "")


@dataclass(slots=True)
class _Chunk:
    """The videos of ``order[start:end]`` by folder (those the walk has not taken), how many were read,
    and whether the walk is in it yet."""

    start: int
    end: int
    videos: dict[str, FolderStamps]
    read: int
    entered: bool = False


class FolderFeed:
    """``scanner.KnownByFolder`` over rows the engine reads ahead (thread-safe: one reader, one walk)."""

    def __init__(
        self,
        order: Sequence[str],
        window_rows: int,
        cancelled: Callable[[], bool],
        on_room: Callable[[], None],
        *,
        root_id: int,
        folder_ids: Sequence[int],
    ) -> None:
        """``folder_ids``: the ids of the folders of ``order``, in its order; ``cancelled``: whether the walk
        was asked to stop; ``on_room`` (called from the walk's thread): the window has room again."""
        self.order = order
        self.root_id = root_id
        self._path_of = dict(zip(folder_ids, order, strict=True))
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

    def put(self, upto: int, folders: Sequence[FolderStamps]) -> None:
        """The videos of ``order[:upto]`` not yet put are ``folders``' (any order)."""
        videos = dict(zip(map(self._path_of.__getitem__, map(_FOLDER_ID, folders)), folders, strict=True))
        read = sum(map(len, map(_STAMPS, folders))) // HEX_PER_VIDEO
        with self._changed:
            self._chunks.append(_Chunk(self._loaded, upto, videos, read))
            self._ahead += read
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
            left = [
                row for chunk in self._chunks for path, one in chunk.videos.items() for row in self._rows(path, one)
            ]
            self._chunks.clear()
            self._ahead = 0
            self._walked = None
        return left

    # The walk's side (its thread).

    def take(self, rel_dir: str, left: list[KnownVideo]) -> FolderVideos | None:
        """The indexed videos of ``rel_dir`` (taken out of its chunk).

        Chunks before it are passed: what is left of them goes to ``left``. None for a folder with
        no video indexed, or one whose chunk was passed already.
        """
        index = self._at.get(rel_dir)
        if index is None:
            return None
        walked = self._walked
        if walked is not None and index < walked.end:
            # Still in the chunk it is in (the walk's order only goes forward): no lock, nothing to wait
            # for. Most folders are taken this way (a chunk is hundreds of them).
            return self._videos(rel_dir, walked.videos.pop(rel_dir, None)) if index >= walked.start else None
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
        return self._videos(rel_dir, chunk.videos.pop(rel_dir, None))

    def _videos(self, rel_dir: str, stamps: FolderStamps | None) -> FolderVideos | None:
        return None if stamps is None else FolderVideos(self.root_id, rel_dir, stamps)

    def _rows(self, rel_dir: str, stamps: FolderStamps) -> list[KnownVideo]:
        return FolderVideos(self.root_id, rel_dir, stamps).rows()

    def _pass(self, index: int, left: list[KnownVideo]) -> None:
        """Let go of the chunks that end at or before ``order[index]`` (the window makes room for those awaited)."""
        chunks = self._chunks
        while chunks and chunks[0].end <= index:
            chunk = chunks.popleft()
            for path, one in chunk.videos.items():
                left.extend(self._rows(path, one))
            if not chunk.entered:
                self._release(chunk.read)

    def _release(self, rows: int) -> None:
        was_full = not self.has_room()
        self._ahead -= rows
        if was_full and self.has_room():
            self._on_room()
