"""What the watcher tests share (tests/core/test_watching.py on fakes, tests/adapters/test_watcher.py on
real folders): a submitter that records the sync requests it gets, and a generous wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from gql_media.core.models import JobState, SyncJob, SyncPhase, SyncProgress, SyncRequest, SyncTarget, SyncTrigger

TIMEOUT_S = 20.0


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    """Wait (generously) for something the watcher does in the background."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting: {what}")
        await asyncio.sleep(0.01)


class RecordingSubmitter:
    """Implements ``core.ports.SyncSubmitter``: keeps every request; raises the queued ``errors`` first."""

    def __init__(self) -> None:
        self.requests: list[SyncRequest] = []
        self.errors: list[BaseException] = []

    async def submit(self, request: SyncRequest) -> SyncJob:
        if self.errors:
            raise self.errors.pop(0)
        self.requests.append(request)
        job_id = len(self.requests)
        progress = SyncProgress(job_id=job_id, sequence=0, state=JobState.QUEUED, phase=SyncPhase.SCANNING)
        paths = tuple(t.path for t in request.targets)
        return SyncJob(job_id, request.mode, request.trigger, paths, JobState.QUEUED, datetime.now(UTC), progress)

    @property
    def targets(self) -> list[tuple[SyncTarget, ...]]:
        """The targets of each request, in order."""
        return [r.targets for r in self.requests]

    def fired_targets(self) -> list[SyncTarget]:
        """Targets of the debouncer's fires (the reconciles are left out)."""
        return [t for r in self.requests if r.trigger is SyncTrigger.WATCHER for t in r.targets]
