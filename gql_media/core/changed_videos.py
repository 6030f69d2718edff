"""The videos a job changed or removed, by id while they are few; past a bound, only that they are many.

A sync hands the steps after it (probing, thumbnails) the videos it added, changed or removed. A
first index of a million files changes a million videos, and a list of their ids, held from the
first write to the last step, was about 65 MB of the server's memory. ``VideoIds`` keeps up to
``limit`` ids (a watcher's job, a folder synced, a rescan that found some changes); past it, it lets
them go and says ``many``. The steps then ask the store instead, a batch at a time: the store knows
which videos are unprobed (PENDING) and which READY ones lack their thumbnail, and a removed
video's thumbnail is an orphan that the sweep of the thumbnail folder finds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized

__all__ = ["VIDEO_IDS_KEPT", "VideoIds"]

# Ids kept before a job's changes count as many: 10,000 ints are ~0.4 MB, and the steps then read
# what they need a batch at a time, at about the cost of reading these rows by id.
VIDEO_IDS_KEPT = 10_000


class VideoIds:
    """Up to ``limit`` video ids in the order added (repeats kept: the reader drops them); past it, none."""

    __slots__ = ("_ids", "added", "limit")

    def __init__(self, ids: Iterable[int] = (), *, limit: int = VIDEO_IDS_KEPT) -> None:
        self.limit = limit
        self.added = 0  # every id added, also those let go
        self._ids: list[int] | None = []
        self.extend(ids)

    @property
    def many(self) -> bool:
        """More than ``limit`` were added: the ids are not kept (ask the store)."""
        return self._ids is None

    def extend(self, ids: Iterable[int]) -> None:
        """Add ``ids`` (another ``VideoIds`` too: its being many carries over)."""
        if isinstance(ids, VideoIds) and ids.many:
            self.added += ids.added
            self._ids = None
            return
        kept = self._ids
        if kept is None:
            self.added += len(ids) if isinstance(ids, Sized) else sum(1 for _ in ids)
            return
        before = len(kept)
        kept.extend(ids)
        self.added += len(kept) - before
        if len(kept) > self.limit:
            self._ids = None

    def __iter__(self) -> Iterator[int]:
        """The ids kept (none when ``many``)."""
        return iter(self._ids or ())

    def __len__(self) -> int:
        """How many were added, also when they were let go."""
        return self.added

    def __bool__(self) -> bool:
        return self.added > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoIds):
            return NotImplemented
        return (self._ids, self.added) == (other._ids, other.added)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"VideoIds(many, {self.added} added)" if self._ids is None else f"VideoIds({self._ids!r})"
