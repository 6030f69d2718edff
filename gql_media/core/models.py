"""The domain's values: what the scanner sees, what the index holds, jobs and events.

Standard library only. Paths inside a root are POSIX strings relative to the root, "" for the
root itself. A name that is not valid UTF-8 is kept twice: ``path`` shows it with U+FFFD for the
bad bytes (so it is valid Unicode everywhere), ``raw_path`` keeps the real bytes to open it.

Past 400 lines, kept whole: the one vocabulary every layer imports, values and their own
conversions only; split by layer, each half would import the other.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import NamedTuple


class EntryKind(enum.StrEnum):
    FOLDER = "folder"
    VIDEO = "video"


class VideoStatus(enum.StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    BROKEN = "BROKEN"


class SyncMode(enum.StrEnum):
    FULL = "FULL"
    INCREMENTAL = "INCREMENTAL"


class SyncTrigger(enum.StrEnum):
    MANUAL = "MANUAL"
    WATCHER = "WATCHER"
    STARTUP = "STARTUP"


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class SyncPhase(enum.StrEnum):
    SCANNING = "SCANNING"
    DIFFING = "DIFFING"
    WRITING = "WRITING"
    PROBING = "PROBING"
    THUMBNAILS = "THUMBNAILS"
    MERGING = "MERGING"
    DONE = "DONE"


class ChangeKind(enum.StrEnum):
    ADDED = "ADDED"
    UPDATED = "UPDATED"
    REMOVED = "REMOVED"
    MOVED = "MOVED"
    RESYNC = "RESYNC"
    # A library root added or removed at run time (``id`` and ``path`` are its folder's, ``path`` "").
    ROOT_ADDED = "ROOT_ADDED"
    ROOT_REMOVED = "ROOT_REMOVED"
    # One job added, removed or moved more entries than the summary threshold: instead of one
    # change per entry, one per changed folder subtree (``id`` and ``path`` are the folder's).
    SUBTREE_CHANGED = "SUBTREE_CHANGED"


@dataclass(frozen=True, slots=True)
class Root:
    """A library root: an absolute folder. Its own folder row has path ""."""

    id: int
    path: str
    folder_id: int


class ScanEntry(NamedTuple):
    """One folder or video found on disk by the scanner.

    A plain tuple: the walk makes one per new or changed file, and a tuple is made in a third of
    the time of a frozen dataclass (a first index of 100k files makes 100k of them).
    """

    kind: EntryKind
    path: str
    raw_path: bytes | None
    size: int
    mtime_ns: int
    inode: int
    device: int


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """What the index holds of one folder or video, as much as the sync diff needs."""

    kind: EntryKind
    id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int


# An index row as plain values: (id, root_id, path, size, mtime_ns, inode, device); size is 0 for folders.
# The sync reads whole libraries in this shape (no object per row); ``IndexedEntry(kind, *row)`` is the same.
IndexRow = tuple[int, int, str, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Scope:
    """A part of a root to sync: a folder and, when ``recursive``, everything below it.

    A shallow scope covers the folder itself and its direct children. The sync engine widens it
    on its own when a child folder appears, vanishes or moves.
    """

    root_id: int
    path: str
    recursive: bool = True
    raw_path: bytes | None = field(default=None, compare=False)

    def covers(self, other: Scope) -> bool:
        """Whether syncing this scope also syncs everything ``other`` would."""
        if self.root_id != other.root_id:
            return False
        if self.path == other.path:
            return self.recursive or not other.recursive
        return self.recursive and is_under(other.path, self.path)


def minimal_scopes(scopes: Sequence[Scope]) -> list[Scope]:
    """Drop duplicates and the scopes another one covers, keeping the order (linear in scopes times depth)."""
    unique = list(dict.fromkeys(scopes))
    deep = {(s.root_id, s.path) for s in unique if s.recursive}

    def covered(scope: Scope) -> bool:
        if not scope.recursive and (scope.root_id, scope.path) in deep:
            return True
        path = scope.path
        while path:
            path = parent_of(path)
            if (scope.root_id, path) in deep:
                return True
        return False

    return [s for s in unique if not covered(s)]


def is_under(path: str, ancestor: str) -> bool:
    """True when ``path`` lies strictly below ``ancestor`` (relative POSIX paths, "" is the root)."""
    if ancestor == "":
        return path != ""
    return path.startswith(ancestor + "/")


def parent_of(path: str) -> str:
    """The relative path of the folder holding ``path`` ("" for a top-level entry)."""
    cut = path.rfind("/")
    return "" if cut < 0 else path[:cut]


def name_of(path: str) -> str:
    return path[path.rfind("/") + 1 :]


@dataclass(frozen=True, slots=True)
class SyncErrorInfo:
    """A path the sync could not handle, and why, in words a user can act on."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """One progress event of a job; ``sequence`` grows with every event of that job."""

    job_id: int
    sequence: int
    state: JobState
    phase: SyncPhase
    done: int = 0
    total: int | None = None
    current_path: str | None = None
    added: int = 0
    updated: int = 0
    removed: int = 0
    moved: int = 0
    failed: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SyncJob:
    """A snapshot of a sync job. ``paths`` are absolute folders."""

    id: int
    mode: SyncMode
    trigger: SyncTrigger
    paths: tuple[str, ...]
    state: JobState
    created_at: datetime
    progress: SyncProgress
    started_at: datetime | None = None
    finished_at: datetime | None = None
    errors: tuple[SyncErrorInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class LibraryChange:
    """One change of the index. ``sequence`` is given by the event bus (server-wide, +1 each)."""

    kind: ChangeKind
    entry_kind: EntryKind | None
    id: int | None
    root_id: int | None
    root_path: str | None
    path: str | None
    old_path: str | None = None
    job_id: int | None = None
    sequence: int = 0

    @classmethod
    def resync(cls, sequence: int = 0) -> LibraryChange:
        """The change that tells a subscriber it may have missed some: it reads everything again."""
        return cls(ChangeKind.RESYNC, None, None, None, None, None, sequence=sequence)


@dataclass(frozen=True, slots=True)
class NewFolder:
    id: int
    root_id: int
    parent_id: int
    entry: ScanEntry


class NewVideo(NamedTuple):
    """A video to insert (a plain tuple, like ``ScanEntry``: one per new file)."""

    id: int
    root_id: int
    folder_id: int
    entry: ScanEntry


class VideoRun(NamedTuple):
    """New videos of one folder, column by column, by name (a first index's every folder of plain videos).

    The walk finds them (ids 0), the planner gives them their folder and ids (``first_id`` and on,
    one after another), the store inserts them: no tuple and no path is made per file on the way.
    ``folder`` is the folder's relative path; ``names`` are the videos' (UTF-8, no dotfile).
    """

    first_id: int
    root_id: int
    folder_id: int
    folder: str
    names: list[str]
    sizes: list[int]
    mtimes_ns: list[int]
    inodes: list[int]
    devices: list[int]

    def paths(self) -> list[str]:
        """The videos' relative paths."""
        return list(map((self.folder + "/" if self.folder else "").__add__, self.names))

    def entries(self) -> list[ScanEntry]:
        """The videos as the walk's entries."""
        count = len(self.names)
        columns = zip(repeat(EntryKind.VIDEO, count), self.paths(), repeat(None, count), self.sizes,
                      self.mtimes_ns, self.inodes, self.devices, strict=True)  # fmt: skip
        return list(map(tuple.__new__, repeat(ScanEntry), columns))

    def new_videos(self) -> list[NewVideo]:
        """The videos as rows to insert, one tuple each (a job small enough to publish one change per video)."""
        count = len(self.names)
        ids = range(self.first_id, self.first_id + count)
        return list(map(tuple.__new__, repeat(NewVideo), zip(ids, repeat(self.root_id, count),
                        repeat(self.folder_id, count), self.entries(), strict=True)))  # fmt: skip


def run_videos(runs: Iterable[VideoRun]) -> int:
    """How many videos ``runs`` hold."""
    return sum(len(run.names) for run in runs)


@dataclass(frozen=True, slots=True)
class Move:
    """An indexed entry found under a new path: it keeps its id."""

    kind: EntryKind
    id: int
    old_root_id: int
    old_path: str
    root_id: int
    parent_id: int
    entry: ScanEntry


@dataclass(frozen=True, slots=True)
class Update:
    """An indexed entry whose size or mtime changed on disk."""

    kind: EntryKind
    id: int
    root_id: int
    entry: ScanEntry


@dataclass(slots=True)
class SyncPlan:
    """The difference between disk and index for a set of scopes, ready to write."""

    removed: list[IndexedEntry] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    new_folders: list[NewFolder] = field(default_factory=list)
    new_videos: list[NewVideo] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    # New videos by folder, column by column (a first index's: ``VideoRun``), beside ``new_videos``.
    video_runs: list[VideoRun] = field(default_factory=list)

    @property
    def size(self) -> int:
        return (len(self.removed) + len(self.moves) + len(self.new_folders) + len(self.new_videos)
                + run_videos(self.video_runs) + len(self.updates))  # fmt: skip


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What probing a video found. ``error`` is set (and status BROKEN) when it cannot be decoded."""

    status: VideoStatus
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    container: str | None = None
    bitrate: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class VideoFile:
    """A video row as the media work needs it: where it is, which version, what is known."""

    id: int
    root_id: int
    root_path: str
    path: str
    file_path: str | bytes
    size: int
    mtime_ns: int
    status: VideoStatus
    thumbnail_key: str | None

    @property
    def display_path(self) -> str:
        """The absolute path as text (U+FFFD for undecodable bytes), for errors and logs."""
        return os.path.join(self.root_path, self.path) if self.path else self.root_path


class DownloadState(enum.StrEnum):
    WAITING = "WAITING"
    READY = "READY"
    MERGED = "MERGED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class DownloadStatus:
    """What became of one HLS download folder, and why."""

    folder: str  # absolute
    state: DownloadState
    reason: str | None = None
    segments_present: int = 0
    segments_expected: int = 0
    playlist: str | None = None  # the playlist's file name in ``folder``
    output_path: str | None = None  # the merged file (it may have been moved or deleted since)
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """The result of merging one HLS folder into an mp4."""

    playlist_path: str
    output_path: str | None
    ok: bool
    source_deleted: bool
    error: str | None = None


class WatchMode(enum.StrEnum):
    NATIVE = "NATIVE"
    POLLING = "POLLING"


@dataclass(frozen=True, slots=True)
class WatcherStatus:
    """What the watcher is doing, for the API and the watcherStatus subscription."""

    enabled: bool
    mode: WatchMode
    roots: tuple[str, ...]
    settle_ms: int
    pending_paths: int = 0
    error: str | None = None
    last_event_at: datetime | None = None
    last_sync_at: datetime | None = None
    # The instance that runs the watcher (the elected leader); None without election (SQLite).
    leader: str | None = None


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """An absolute folder (or file) to sync; ``recursive=False`` syncs the folder and its direct children."""

    path: str
    recursive: bool = True


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What to sync and why. No targets means every root."""

    mode: SyncMode
    trigger: SyncTrigger
    targets: tuple[SyncTarget, ...] = ()
