"""The services the API drives, as protocols it owns.

Two implementations stand behind each: the local objects (``JobRunner``, ``WatchService``,
``MediaWork``) when one process does everything (SQLite), and the cluster's facades
(``gql_media.cluster``) on PostgreSQL, which run on the leader and forward from a follower.
The API calls these methods and nothing else, so either can be wired in.
"""

from __future__ import annotations

from typing import Protocol

from gql_media.core.models import MergeOutcome, Root, SyncJob, SyncRequest, SyncTrigger, WatcherStatus

__all__ = ["Media", "Roots", "Runner", "Watcher"]


class Runner(Protocol):
    """The one job runner of the library (on the leader, wherever it is asked)."""

    async def submit(self, request: SyncRequest) -> SyncJob:
        """Queue a sync; a request the running job covers returns that job, others merge into the queued one."""
        ...

    async def cancel(self, job_id: int) -> SyncJob | None:
        """Cancel a queued or running job; a finished job comes back as it is, an unknown one as None."""
        ...

    def current(self) -> SyncJob | None:
        """The running job, if any."""
        ...

    async def get(self, job_id: int) -> SyncJob | None: ...

    async def list(self, limit: int, offset: int = 0) -> list[SyncJob]:
        """Newest first; live jobs as they are now."""
        ...

    async def wait(self, job_id: int, timeout_s: float | None = None) -> SyncJob | None:
        """Wait until a job has finished (``TimeoutError`` after ``timeout_s``).

        No resolver waits on a job; the CLI's ``scan``, the bench and the tests do, through ``Services``.
        """
        ...


class Watcher(Protocol):
    """The file watcher of the library's roots."""

    async def start(self, trigger: SyncTrigger = SyncTrigger.WATCHER) -> WatcherStatus:
        """Start watching; the roots are reconciled first by a sync with ``trigger``."""
        ...

    async def stop(self) -> WatcherStatus: ...

    def status(self) -> WatcherStatus: ...


class Media(Protocol):
    """Thumbnails and HLS merging on demand; absent (None) where the server runs without media work."""

    async def regenerate_thumbnail(self, video_id: int) -> str | None:
        """Make the video's thumbnail again: its new key, or None when the placeholder is shown.

        Raises ``LookupError`` for an unknown id.
        """
        ...

    async def merge_hls(self, path: str, delete_source: bool | None = None) -> MergeOutcome:
        """Merge the HLS download at ``path`` into an mp4 beside it (``delete_source`` None: the setting)."""
        ...


class Roots(Protocol):
    """Library roots added and removed at run time (``core.roots.LibraryRoots``, on the leader)."""

    async def add(self, path: str) -> Root:
        """Check, store, index and watch a new root; ``core.roots.RootRefused`` (with a code) when a rule says no."""
        ...

    async def remove(self, path: str) -> Root:
        """Forget a root added at run time (index, thumbnails, playback cache), never its files; ``RootRefused``."""
        ...
