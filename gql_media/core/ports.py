"""The interfaces the core needs from the outside world, and the errors that cross them.

Every seam of the core lives here; adapters implement them and tests fake them:

- the index: ``LibraryStore`` (what the sync engine reads and writes), ``MediaStore`` (the media
  fields the media steps fill in), ``DownloadLog`` (HLS downloads' states), ``JobStore`` (the
  jobs kept for the API);
- ``EventBus`` and its ``Subscription``s;
- ``MediaTool``: probing, thumbnails and HLS merging in worker processes; ``SegmentWorkers``:
  playback's segments and subtitles, in worker processes of their own;
- the watch: ``ChangeSource`` and its ``ChangeSourceFactory``;
- the job runner: ``SyncSubmitter`` (how requests come in), ``RunningJob`` (the job as the sync
  engine and every step after it see it) and ``JobStep``.

One module past 400 lines: it is the core's one list of seams, declarations only (protocols, their
small value types and the errors that cross them); split by seam, a newcomer would have no single
page that says what the core needs from the outside world.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, TypeVar

from gql_media.core.changed_videos import VideoIds
from gql_media.core.debounce import PathChange
from gql_media.core.hls import HlsPlaylist
from gql_media.core.models import (
    DownloadStatus,
    IndexRow,
    LibraryChange,
    MediaInfo,
    NewVideo,
    Root,
    Scope,
    SyncJob,
    SyncPhase,
    SyncPlan,
    SyncProgress,
    SyncRequest,
    SyncTarget,
    Update,
    VideoFile,
    VideoRun,
    VideoStatus,
    WatcherStatus,
    WatchMode,
)
from gql_media.core.playback import SegmentSpec, SourceStreams
from gql_media.core.scanner import FolderStamps

T_co = TypeVar("T_co", covariant=True)

# Where a page of ``MediaStore.videos_page`` ended: the last row's (name, id).
VideoCursor = tuple[str, int]


class LibraryStore(Protocol):
    """The index as the sync engine sees it. One writer at a time (the job runner)."""

    async def ensure_roots(self, paths: Sequence[str]) -> list[Root]:
        """Create missing root rows (and their root folder rows); return all of ``paths`` as roots."""
        ...

    async def read_scope_rows(self, scope: Scope) -> tuple[list[IndexRow], list[IndexRow]]:
        """The indexed folders and videos a scope covers (its folder included), as plain rows.

        Plain tuples, because building an object per indexed entry is most of the cost of an
        unchanged resync of a large library.
        """
        ...

    async def read_scope_folders(self, scope: Scope) -> list[IndexRow]:
        """The indexed folders a scope covers (its folder included), as ``read_scope_rows`` gives them."""
        ...

    async def read_folder_videos(self, folder_ids: Sequence[int]) -> list[IndexRow]:
        """The indexed videos directly in these folders (any order): a big scope's videos, a batch at a time."""
        ...

    async def read_folder_stamps(self, folder_ids: Sequence[int]) -> list[FolderStamps]:
        """The indexed videos directly in these folders, a ``FolderStamps`` per folder holding any (any order):
        what a resync compares its walk with, a batch at a time."""
        ...

    async def read_video_ids(self, root_id: int, paths: Sequence[str]) -> dict[str, int]:
        """The ids of the indexed videos at these paths of a root, by path (a path not indexed is left out)."""
        ...

    async def reserve_ids(self, folders: int, videos: int) -> tuple[int, int]:
        """Reserve fresh ids: returns the first folder id and the first video id of each range."""
        ...

    async def return_ids(self, folder: int, folder_end: int, video: int, video_end: int) -> None:
        """Ids reserved and left unused, ``[folder, folder_end)`` and ``[video, video_end)``: each range
        is handed out again when it ends where the next reservation would start (none came after it)."""
        ...

    async def apply_structure(self, plan: SyncPlan) -> None:
        """Write removals, moves and new folders of ``plan`` in one transaction."""
        ...

    async def insert_videos(
        self, rows: Sequence[NewVideo], *, bulk: bool = False, runs: Sequence[VideoRun] = ()
    ) -> None:
        """Insert new videos in one transaction: ``rows``, and those of ``runs`` (a folder's at a time).

        ``bulk``: a big job's new videos all at once (rows in path order); into an empty index the
        store may then build its secondary indexes after the rows instead of row by row.
        """
        ...

    async def update_entries(self, rows: Sequence[Update]) -> None:
        """Write one batch of changed sizes/mtimes in one transaction; videos go back to PENDING."""
        ...

    async def begin_bulk_load(self) -> None:
        """A job that may add a lot starts (a first index, written a batch of folders at a time).

        Until ``end_bulk_load`` the store may leave its secondary indexes to be built after the
        job's last bulk write (reads stay right, maybe slower; a kill in between is repaired at
        the next start).
        """
        ...

    async def end_bulk_load(self) -> None:
        """The job's writes are done (or it stopped): what ``begin_bulk_load`` left for later is made."""
        ...


# Which of its named videos a media step reads (``MediaStore.get_video_files``).
VideoNeed = Literal["probe", "thumbnail"]


@dataclass(frozen=True, slots=True)
class EmptyVideos:
    """The empty files ``MediaStore.break_empty_videos`` marked BROKEN in one go."""

    count: int
    # (id, root id, root path, path) of the first of them, in the order of a page of PENDING ones.
    videos: list[tuple[int, int, str, str]]
    # (folder id, root id, path) of every folder holding one of them; only when they were many.
    folders: list[tuple[int, int, str]]


class MediaStore(Protocol):
    """The index's media fields. Writes apply only while the row still has the probed size and mtime."""

    async def get_video_files(self, ids: Sequence[int], *, needing: VideoNeed | None = None) -> list[VideoFile]:
        """The rows of these ids that still exist (any order). ``needing``: only those a step may have
        work for: "probe" the PENDING ones not empty, "thumbnail" the READY ones and the BROKEN ones
        with a key (to forget); None: all."""
        ...

    async def get_video_file(self, video_id: int) -> VideoFile | None: ...

    async def thumbnail_keys(self, ids: Sequence[int]) -> dict[int, str | None]:
        """The thumbnail key of each of these ids that still exists (the orphan sweep's question)."""
        ...

    async def videos_page(
        self,
        root_ids: Sequence[int],
        status: VideoStatus,
        after: VideoCursor | None,
        limit: int,
        *,
        keyed: bool | None = None,
        stale_for: str | None = None,
    ) -> tuple[list[VideoFile], VideoCursor | None]:
        """Up to ``limit`` videos of these roots with ``status``, after ``after`` in the store's order of
        that status, and where the page ended (None: no rows). ``keyed``: only the videos with (True)
        or without (False) a thumbnail key; None: both. ``stale_for`` (a thumbnail suffix): only those
        whose key is not one of their version's (``ThumbnailSpec.is_current``), no key included. A step
        reads a status a page at a time."""
        ...

    async def count_videos(self, root_ids: Sequence[int], status: VideoStatus) -> int:
        """How many videos of these roots have ``status`` (a step's progress total)."""
        ...

    async def set_media_infos(self, rows: Sequence[tuple[VideoFile, MediaInfo]]) -> list[int]:
        """Write probe results in one transaction; returns the ids written (unchanged since read)."""
        ...

    async def break_empty_videos(
        self, root_ids: Sequence[int], ids: Sequence[int], error: str, *, listed: int, folders_over: int
    ) -> EmptyVideos:
        """Mark BROKEN with ``error``, in one transaction, every PENDING video of size 0 of these roots
        and of these ids (an empty file needs no probe: a set-wise write, nothing built per video).

        Returns how many, the first ``listed`` of them, and, when they were more than ``folders_over``,
        the folders holding them. A file that grows later is PENDING again after the sync that sees it.
        """
        ...

    async def set_thumbnails(self, rows: Sequence[tuple[VideoFile, str | None]]) -> list[int]:
        """Write thumbnail keys (None: placeholder) in one transaction; returns the ids written."""
        ...


class DownloadLog(Protocol):
    """Where download statuses are kept (``SqlDownloadLog``); folders are absolute paths inside a root."""

    async def record(self, statuses: Sequence[DownloadStatus], replacing: Sequence[tuple[str, bool]] = ()) -> None:
        """Write ``statuses``; first forget every status of a folder in ``replacing`` (folder, recursive) scopes.

        A non-recursive scope covers the folder and its direct children.
        """
        ...


class JobStore(Protocol):
    """Where sync jobs are kept for the API."""

    async def save_job(self, job: SyncJob) -> None: ...

    async def list_jobs(self, limit: int, offset: int = 0) -> list[SyncJob]:
        """Newest first."""
        ...

    async def get_job(self, job_id: int) -> SyncJob | None: ...

    async def next_job_id(self) -> int: ...

    async def fail_unfinished_jobs(self, message: str) -> int:
        """Mark jobs left QUEUED/RUNNING by a previous process as FAILED; return how many."""
        ...


class Subscription(Protocol[T_co]):
    """A subscriber's bounded stream of events."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def aclose(self) -> None: ...


class EventBus(Protocol):
    """Fans events out to subscribers without ever blocking the publisher."""

    async def publish_change(self, change: LibraryChange) -> LibraryChange:
        """Publish one change; returns it with its server-wide sequence."""
        ...

    async def publish_progress(self, progress: SyncProgress) -> None: ...

    async def publish_watcher(self, status: WatcherStatus) -> None: ...

    def subscribe_changes(self) -> Subscription[LibraryChange]:
        """On overflow the subscriber's backlog is dropped and one RESYNC change is delivered."""
        ...

    def subscribe_progress(self) -> Subscription[SyncProgress]:
        """On overflow the oldest events are dropped: a slow subscriber sees the newest."""
        ...

    def subscribe_watcher(self) -> Subscription[WatcherStatus]: ...


class MediaError(Exception):
    """A media operation failed for one file; ``str(error)`` is a short reason a user can act on."""


class MediaTool(Protocol):
    """Probing, thumbnails and HLS merging, off the event loop (worker processes)."""

    @property
    def workers(self) -> int:
        """How many calls run at once (callers keep about that many in flight)."""
        ...

    async def probe(self, path: str | bytes) -> MediaInfo:
        """Undecodable content (and a hung or crashed decoder) gives a BROKEN ``MediaInfo``.

        Raises ``MediaError`` when the file cannot be read at all (gone, no permission).
        """
        ...

    async def make_thumbnail(self, path: str | bytes, output_path: str, width_px: int) -> None:
        """Write one frame, ``width_px`` wide, atomically to ``output_path`` (.jpg or .webp); ``MediaError`` if not."""
        ...

    async def merge_hls(self, playlist: HlsPlaylist) -> str:
        """Remux, verify and rename the playlist to a free ``<folder>.mp4`` beside it; returns its path.

        Never overwrites and never touches the source; raises ``MediaError`` with the reason.
        """
        ...

    async def aclose(self) -> None: ...


class SegmentWorkers(Protocol):
    """What the media worker processes do for playback (adapters/transcode on PyAV)."""

    async def probe_streams(self, path: str | bytes) -> SourceStreams:
        """The streams of a file; raises ``MediaError`` when it cannot be read."""
        ...

    async def make_segment(self, spec: SegmentSpec) -> None:
        """Write one MPEG-TS segment or fMP4 fragment (``spec.variant``) to ``spec.output_path``; ``MediaError``."""
        ...

    async def make_init_segment(self, spec: SegmentSpec) -> None:
        """Write the init segment of the fMP4 stream ``spec.variant`` to ``spec.output_path``; raises ``MediaError``."""
        ...

    async def make_subtitle(self, path: str | bytes, stream_index: int, output_path: str) -> None:
        """Write an embedded text subtitle stream as WebVTT to ``output_path``; raises ``MediaError``."""
        ...


class WatchLimitError(OSError):
    """The OS refused more watches (Linux: ``fs.inotify.max_user_watches`` is too low)."""


class RootMissingError(OSError):
    """A watched root disappeared (deleted, renamed or unmounted); ``filename`` is the root."""


class ChangeSource(Protocol):
    """One watch over some roots: open it, iterate batches of changes, close it."""

    @property
    def mode(self) -> WatchMode:
        """How it watches once open (a network file system forces polling)."""
        ...

    async def open(self) -> None:
        """Establish the watch; once this returns no change is missed.

        Raises:
            WatchLimitError: the OS ran out of watches.
            FileNotFoundError: a root does not exist.
            OSError: any other failure to watch.
        """
        ...

    def __aiter__(self) -> AsyncIterator[Sequence[PathChange]]:
        """Batches of relevant changes, until closed. Raises ``RootMissingError`` when a root goes."""
        ...

    async def aclose(self) -> None:
        """Stop watching and release every descriptor and thread. Idempotent."""
        ...


class ChangeSourceFactory(Protocol):
    def __call__(self, roots: Sequence[str], *, force_polling: bool) -> ChangeSource: ...


class SyncSubmitter(Protocol):
    """The job runner as the watcher and the API see it."""

    async def submit(self, request: SyncRequest) -> SyncJob:
        """Queue a sync; a request covered by the running job returns that job, others merge into the queued one."""
        ...


class RunningJob(Protocol):
    """The running job, as the sync engine and every step after it (merging, probing, thumbnails) see it."""

    @property
    def job_id(self) -> int: ...

    @property
    def roots(self) -> Sequence[Root]: ...

    @property
    def scopes(self) -> Sequence[Scope]:
        """The parts of the library this job syncs."""
        ...

    @property
    def changed_video_ids(self) -> VideoIds:
        """Videos this job added or whose content changed (grows when ``sync_targets`` adds more); past
        a bound only ``many`` (the steps then read the roots' unfinished videos from the store)."""
        ...

    @property
    def removed_video_ids(self) -> VideoIds: ...

    def playlist_folders_under(self, top: str) -> list[str] | None:
        """The folders at or under ``top`` (absolute) whose listing named a playlist when this job walked
        them, sorted; None when no walk of this job listed all of ``top``'s tree (look on disk instead)."""
        ...

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None:
        """Publish progress (throttled to ~10/s; phase changes always go out)."""
        ...

    def tally(self, *, added: int = 0, updated: int = 0, removed: int = 0, moved: int = 0) -> None:
        """Count entries the job wrote to the index (shown in its progress)."""
        ...

    def add_error(self, path: str, message: str) -> None:
        """Record a per-file failure on the job (counted in ``failed``); the job goes on."""
        ...

    def count_failures(self, count: int) -> None:
        """Count ``count`` more failed files whose errors are not listed (past those a job keeps)."""
        ...

    def is_cancelled(self) -> bool:
        """Whether the job was asked to stop (for work that cannot raise where it runs, like a walk)."""
        ...

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` when the job was cancelled; call it between units of work."""
        ...

    async def publish_change(self, change: LibraryChange) -> None:
        """Publish a change to the index as this job's."""
        ...

    async def sync_targets(self, targets: Sequence[SyncTarget]) -> None:
        """Index what a step produced on disk (e.g. a merged mp4), inside this job."""
        ...


class JobStep(Protocol):
    """One phase run after the index writes of every job."""

    async def __call__(self, job: RunningJob) -> None: ...


class JobCancelled(Exception):
    """Raised inside a job when it was cancelled."""


class StoreUnavailable(Exception):
    """The index database cannot be written or reached (read-only, disk full, gone): a clear reason."""

    # Shown to API clients as is (no host paths in it): they can act on it.
    extensions: ClassVar[dict[str, str]] = {"code": "STORE_UNAVAILABLE"}


class RootStore(Protocol):
    """The library roots added at run time (``core.roots.LibraryRoots``); roots from the settings are not here."""

    async def added_roots(self) -> list[Root]:
        """The roots added at run time, oldest first."""
        ...

    async def add_root(self, path: str) -> Root:
        """Remember ``path`` as a root added at run time, with its root folder."""
        ...

    async def remove_root(self, root_id: int) -> list[tuple[int, str]]:
        """Forget a root and its whole index; returns the ids and paths of the videos it held."""
        ...
