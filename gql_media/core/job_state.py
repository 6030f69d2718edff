"""A queued or running sync job's state: its scopes, counts, errors and progress, published as snapshots.

Standard library only. The job runner (``jobs``) owns these objects: it merges requests into the
queued one, runs one at a time, and keeps each in the job store as ``SyncJob`` snapshots.
Progress goes out at most every ``PROGRESS_INTERVAL_S`` (a phase change always goes out); a job's
end is stored before its last event goes out (``publish_end``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from gql_media.core.models import (
    JobState,
    Scope,
    SyncErrorInfo,
    SyncJob,
    SyncMode,
    SyncPhase,
    SyncProgress,
    SyncRequest,
    minimal_scopes,
)
from gql_media.core.ports import JobCancelled

__all__ = ["MAX_ERRORS_KEPT", "PROGRESS_INTERVAL_S", "ActiveJob", "now_utc"]

PROGRESS_INTERVAL_S = 0.1
MAX_ERRORS_KEPT = 1000


def now_utc() -> datetime:
    """The time now, in UTC (jobs are stamped with it)."""
    return datetime.now(UTC)


class ActiveJob:
    """A queued or running job: mutable while it lives, published as ``SyncJob`` snapshots."""

    def __init__(
        self,
        job_id: int,
        request: SyncRequest,
        scopes: list[Scope],
        paths: list[str],
        publish: Callable[[SyncProgress], Awaitable[None]],
    ) -> None:
        self.id = job_id
        self._publish_progress = publish
        self.mode = request.mode
        self.trigger = request.trigger
        self.scopes = scopes
        self.paths = paths
        self.state = JobState.QUEUED
        self.created_at = now_utc()
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.errors: list[SyncErrorInfo] = []
        self.failed = 0
        self.added = self.updated = self.removed = self.moved = 0
        self.phase = SyncPhase.SCANNING
        self.done = 0
        self.total: int | None = None
        self.current_path: str | None = None
        self.sequence = 0
        self.cancel_requested = False
        self.finished = asyncio.Event()
        self._started_monotonic: float | None = None
        self._last_report = 0.0

    def merge(self, request: SyncRequest, scopes: list[Scope], paths: list[str]) -> None:
        if request.mode is SyncMode.FULL:
            self.mode = SyncMode.FULL
        self.scopes = minimal_scopes([*self.scopes, *scopes])
        self.paths = list(dict.fromkeys([*self.paths, *paths]))

    def covers(self, scopes: Sequence[Scope]) -> bool:
        return all(any(mine.covers(s) for mine in self.scopes) for s in scopes)

    def progress(self) -> SyncProgress:
        elapsed = 0.0 if self._started_monotonic is None else time.monotonic() - self._started_monotonic
        return SyncProgress(
            job_id=self.id,
            sequence=self.sequence,
            state=self.state,
            phase=self.phase,
            done=self.done,
            total=self.total,
            current_path=self.current_path,
            added=self.added,
            updated=self.updated,
            removed=self.removed,
            moved=self.moved,
            failed=self.failed,
            elapsed_s=round(elapsed, 3),
        )

    def snapshot(self) -> SyncJob:
        return SyncJob(
            id=self.id,
            mode=self.mode,
            trigger=self.trigger,
            paths=tuple(self.paths),
            state=self.state,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            progress=self.progress(),
            errors=tuple(self.errors),
        )

    def mark_started(self) -> None:
        self.state = JobState.RUNNING
        self.started_at = now_utc()
        self._started_monotonic = time.monotonic()

    def add_error(self, path: str, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(SyncErrorInfo(path, message))

    def check_cancelled(self) -> None:
        if self.cancel_requested:
            raise JobCancelled

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None:
        """Record progress; publish it when the phase changed or ~100 ms passed since the last event."""
        changed_phase = phase is not self.phase
        self.phase, self.done, self.total = phase, done, total
        if current_path is not None:
            self.current_path = current_path
        now = time.monotonic()
        if changed_phase or self.sequence == 0 or now - self._last_report >= PROGRESS_INTERVAL_S:
            self._last_report = now
            await self.publish()

    async def publish(self) -> None:
        self.sequence += 1
        await self._publish_progress(self.progress())

    async def publish_end(self, save: Callable[[SyncJob], Awaitable[None]]) -> None:
        """Save the ended job, then publish its last event (the same snapshot, the same sequence).

        In this order a client that reads the job (``node(id)``, ``syncJob``) as soon as the last
        event comes finds it ended, on this replica and on any other reading the same store.
        """
        self.sequence += 1
        final = self.snapshot()
        await save(final)
        await self._publish_progress(final.progress)
