"""What the index's reads take and return: rows of folders and videos, pages, keyset keys, the video query.

Plain frozen dataclasses, no SQL: ``reads.LibraryReads`` fills them, the API turns them into its
types and cursors. The rows of folders and videos are named tuples instead: a page builds hundreds,
and a tuple is made by one C call (0.4 us a video row) where a frozen dataclass sets each field
through ``object.__setattr__`` (2.6 us): 1.5 ms of a 500-video page's 15 ms of CPU.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from gql_media.core.models import VideoStatus

__all__ = [
    "DescendantKey",
    "EntryKey",
    "FolderRow",
    "FolderStats",
    "Page",
    "VideoOrderKey",
    "VideoQuery",
    "VideoRow",
    "VideoSort",
]

T = TypeVar("T")


class FolderRow(NamedTuple):
    """One folder of the index; a root's own folder has ``path == ""`` and no parent."""

    id: int
    root_id: int
    root_path: str
    parent_id: int | None
    path: str
    name: str
    mtime_ns: int
    created_at: float


class VideoRow(NamedTuple):
    """One video of the index. ``path_bytes`` holds the real bytes of a non-UTF-8 path."""

    id: int
    root_id: int
    root_path: str
    folder_id: int
    path: str
    path_bytes: bytes | None
    name: str
    size: int
    mtime_ns: int
    created_at: float
    status: VideoStatus
    duration_s: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    container: str | None
    error: str | None
    thumbnail_key: str | None


@dataclass(frozen=True, slots=True)
class FolderStats:
    video_count: int
    total_size: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool


class VideoOrderKey(enum.StrEnum):
    NAME = "NAME"
    MODIFIED_AT = "MODIFIED_AT"
    SIZE = "SIZE"
    DURATION = "DURATION"


@dataclass(frozen=True, slots=True)
class VideoSort:
    key: VideoOrderKey = VideoOrderKey.NAME
    descending: bool = False

    def value_of(self, row: VideoRow) -> str | int | float:
        """The sort value of ``row``, as the keyset cursor carries it."""
        if self.key is VideoOrderKey.NAME:
            return row.name
        if self.key is VideoOrderKey.MODIFIED_AT:
            return row.mtime_ns
        if self.key is VideoOrderKey.SIZE:
            return row.size
        return -1.0 if row.duration_s is None else row.duration_s


@dataclass(frozen=True, slots=True)
class VideoQuery:
    """Which videos: every filter set here must hold (all ``None`` means every video)."""

    folder_id: int | None = None
    root_id: int | None = None
    under_path: str | None = None  # with root_id when given; "" means the whole root
    name_contains: str | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    status: VideoStatus | None = None


@dataclass(frozen=True, slots=True)
class EntryKey:
    """Keyset position among a folder's children: folders (kind 0) then videos (kind 1), by name."""

    kind: int
    name: str
    id: int


@dataclass(frozen=True, slots=True)
class DescendantKey:
    """Keyset position in a subtree's depth-first order: the relative path of the last entry, and
    whether it is a video (a folder's videos come right after it, before its sub-folders)."""

    path: str
    is_video: bool
