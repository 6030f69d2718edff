"""The runner, the watcher and the media service as the API sees them on any replica.

They implement ``gql_media.api.ports``: what changes the library runs on the leader
(``Cluster.call``: here while this replica leads, else forwarded); what only reads is answered
here, from the leader's objects or, on a follower, from the database and the bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

from gql_media.adapters.store.requests import RequestFailed
from gql_media.cluster.commands import (
    AddRoot,
    CancelJob,
    MergeHls,
    RegenerateThumbnail,
    RemoveRoot,
    SetWatcher,
    SubmitSync,
)
from gql_media.cluster.replica import FORWARD_TIMEOUT_S, Cluster
from gql_media.core.jobs import JobRunner
from gql_media.core.models import (
    JobState,
    MergeOutcome,
    Root,
    SyncJob,
    SyncRequest,
    SyncTrigger,
    WatcherStatus,
    WatchMode,
)
from gql_media.core.roots import LibraryRoots

__all__ = ["ClusterMedia", "ClusterRoots", "ClusterRunner", "ClusterWatcher"]

JOB_POLL_S = 0.2


class ClusterRunner:
    """The job runner (``api.ports.Runner``): the leader's, wherever it is asked."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    @property
    def local(self) -> JobRunner | None:
        """The leader's runner while this replica leads."""
        term = self._cluster.term
        return None if term is None else term.workers.runner

    async def submit(self, request: SyncRequest) -> SyncJob:
        """Queue a sync on the leader; returns the job it runs or queued for it."""
        job_id = await self._cluster.call(SubmitSync(request))
        job = await self.get(job_id)
        if job is None:
            raise RequestFailed(f"the leader's job {job_id} is not in the database")
        return job

    async def cancel(self, job_id: int) -> SyncJob | None:
        cancelled = await self._cluster.call(CancelJob(job_id))
        return None if cancelled is None else await self.get(cancelled)

    def current(self) -> SyncJob | None:
        """The running job (on a follower: as its progress events tell)."""
        local = self.local
        if local is not None:
            return local.current()
        cluster = self._cluster
        for job_id in reversed(cluster.progress):
            progress = cluster.progress[job_id]
            row = cluster.job_rows.get(job_id)
            if row is not None and progress.state is JobState.RUNNING:
                return cluster.live(row)
        return None

    async def get(self, job_id: int) -> SyncJob | None:
        local = self.local
        if local is not None:
            return await local.get(job_id)
        job = await self._cluster.jobs.get_job(job_id)
        return None if job is None else self._cluster.live(job)

    async def list(self, limit: int, offset: int = 0) -> list[SyncJob]:
        local = self.local
        if local is not None:
            return await local.list(limit, offset)
        return [self._cluster.live(job) for job in await self._cluster.jobs.list_jobs(limit, offset)]

    async def wait(self, job_id: int, timeout_s: float | None = None) -> SyncJob | None:
        """Wait until a job has finished; returns its final snapshot (TimeoutError after ``timeout_s``)."""
        local = self.local
        if local is not None:
            return await local.wait(job_id, timeout_s)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = await self._cluster.jobs.get_job(job_id)
            if job is None or job.state.is_terminal:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout_s} s")
            await asyncio.sleep(JOB_POLL_S)


class ClusterWatcher:
    """The watcher (``api.ports.Watcher``): the leader's, wherever it is asked.

    ``roots`` (the replica's live list) is shown until the leader reports its watcher.
    """

    def __init__(self, cluster: Cluster, roots: Sequence[Root] | None = None) -> None:
        self._cluster = cluster
        self._roots = roots

    def status(self) -> WatcherStatus:
        cluster = self._cluster
        term = cluster.term
        if term is not None:
            return dataclasses.replace(term.workers.watcher.status(), leader=cluster.instance)
        seen = cluster.leader_status
        leader = cluster.election.leader
        if seen is not None and seen.leader == leader:
            return seen
        settings = cluster.settings
        return WatcherStatus(
            enabled=False,
            mode=WatchMode(settings.watch_mode.upper()),
            roots=tuple(settings.root_paths) if self._roots is None else tuple(r.path for r in self._roots),
            settle_ms=settings.settle_ms,
            error="no leader has reported its watcher yet" if leader is None else f"waiting for {leader} to report",
            leader=leader,
        )

    async def start(self, trigger: SyncTrigger = SyncTrigger.WATCHER) -> WatcherStatus:
        return await self._set(SetWatcher(True, trigger))

    async def stop(self) -> WatcherStatus:
        return await self._set(SetWatcher(False))

    async def _set(self, command: SetWatcher) -> WatcherStatus:
        status = await self._cluster.call(command)
        # Answered by the leader, whose bus heartbeat may not have reached this replica yet.
        self._cluster.leader_status = status
        return status


class ClusterMedia:
    """The media service (``api.ports.Media``): thumbnails and merges run on the leader."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def _timeout_s(self) -> float:
        return FORWARD_TIMEOUT_S + 3 * self._cluster.settings.media_timeout_s

    async def regenerate_thumbnail(self, video_id: int) -> str | None:
        """The new thumbnail key, or None when the placeholder is shown."""
        return await self._cluster.call(RegenerateThumbnail(video_id), self._timeout_s())

    async def merge_hls(self, path: str, delete_source: bool | None = None) -> MergeOutcome:
        """Merge an HLS download into an mp4 beside it (on the leader)."""
        return await self._cluster.call(MergeHls(path, delete_source), self._timeout_s())


class ClusterRoots:
    """Library roots added and removed at run time (``api.ports.Roots``): on the leader, wherever asked."""

    def __init__(self, cluster: Cluster, library: LibraryRoots) -> None:
        self._cluster = cluster
        self._library = library

    async def add(self, path: str) -> Root:
        root = (await self._cluster.call(AddRoot(path))).unwrap()
        # This replica's list (and its API) knows the root at once, before the leader's event arrives.
        await self._library.refresh()
        return root

    async def remove(self, path: str) -> Root:
        root = (await self._cluster.call(RemoveRoot(path))).unwrap()
        await self._library.refresh()
        return root
