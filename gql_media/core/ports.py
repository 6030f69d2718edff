"""The interfaces the core needs from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar, Protocol, TypeVar

from gql_media.core.hls import HlsPlaylist
from gql_media.core.models import (
    IndexedEntry,
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
    WatcherStatus,
)

T_co = TypeVar("T_co", covariant=True)


class LibraryStore(Protocol):
    """The index as the sync engine sees it. One writer at a time (the job runner)."""

    async def ensure_roots(self, paths: Sequence[str]) -> list[Root]:
        """Create missing root rows (and their root folder rows); return all of ``paths`` as roots."""
        ...

    async def read_scope(self, scope: Scope) -> list[IndexedEntry]:
        """The indexed folders and videos a scope covers (its folder included)."""
        ...

    async def reserve_ids(self, folders: int, videos: int) -> tuple[int, int]:
        """Reserve fresh ids: returns the first folder id and the first video id of each range."""
        ...

    async def apply_structure(self, plan: SyncPlan) -> None:
        """Write removals, moves and new folders of ``plan`` in one transaction."""
        ...

    async def insert_videos(self, rows: Sequence[NewVideo]) -> None:
        """Insert one batch of new videos in one transaction."""
        ...

    async def update_entries(self, rows: Sequence[Update]) -> None:
        """Write one batch of changed sizes/mtimes in one transaction; videos go back to PENDING."""
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


class SyncSubmitter(Protocol):
    """The job runner as the watcher and the API see it."""

    async def submit(self, request: SyncRequest) -> SyncJob:
        """Queue a sync; a request covered by the running job returns that job, others merge into the queued one."""
        ...


class JobContext(Protocol):
    """What a step after the index writes (merging, probing, thumbnails) gets from its running job."""

    @property
    def job_id(self) -> int: ...

    @property
    def roots(self) -> Sequence[Root]: ...

    @property
    def scopes(self) -> Sequence[Scope]:
        """The parts of the library this job synced."""
        ...

    @property
    def changed_video_ids(self) -> Sequence[int]:
        """Videos this job added or whose content changed (grows when ``sync_targets`` adds more)."""
        ...

    @property
    def removed_video_ids(self) -> Sequence[int]: ...

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None:
        """Publish progress (throttled to ~10/s; phase changes always go out)."""
        ...

    def add_error(self, path: str, message: str) -> None:
        """Record a per-file failure on the job (counted in ``failed``); the job goes on."""
        ...

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` when the job was cancelled; call it between units of work."""
        ...

    async def publish_change(self, change: LibraryChange) -> None: ...

    async def sync_targets(self, targets: Sequence[SyncTarget]) -> None:
        """Index what a step produced on disk (e.g. a merged mp4), inside this job."""
        ...


class JobStep(Protocol):
    """One phase run after the index writes of every job."""

    async def __call__(self, context: JobContext) -> None: ...


class JobCancelled(Exception):
    """Raised inside a job when it was cancelled."""


class StoreUnavailable(Exception):
    """The index database cannot be written or reached (read-only, disk full, gone): a clear reason."""

    # Shown to API clients as is (no host paths in it): they can act on it.
    extensions: ClassVar[dict[str, str]] = {"code": "STORE_UNAVAILABLE"}
