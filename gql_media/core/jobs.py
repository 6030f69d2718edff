"""The job runner: the one writer of the index. One job runs at a time; requests coalesce.

A request whose scope the running job covers gets the running job back. Any other request
merges into the single queued job. Jobs can be cancelled (queued: at once; running: between
batches). Every job is kept in the job store for the API. A running job is seen by the sync
engine and the steps after it as a ``ports.RunningJob``; the GC is held off old objects around it.

A job's own state (counts, errors, throttled progress) is ``job_state.ActiveJob``.

``submit`` answers without waiting long for the store's writer (a running sync holds it a batch at a
time, and a request queued behind it took 2.7-60 s to answer in the soak): the job's id is taken
ahead of need, and the queued job's row is written by ``_JobRecords``, in order (a newer snapshot
of a job replaces one not yet written). ``submit`` waits ``SUBMIT_WAIT_S`` at most for that row, so
an index that cannot be written still refuses the request at once; past that the row is written
behind the answer. A job's start and end are written before it runs and before its last event goes
out, as before, so what ``fail_unfinished_jobs`` finds after a crash is unchanged; a crash between
an answer and its row loses only that queued job's row (a client asking for it gets NOT_FOUND).

One module past 400 lines: the runner, the running job's view of it (``_RunningJob``) and the
job rows' writer (``_JobRecords``) share the runner's state (the running, queued and recent jobs);
split, each would reach into the others' private parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace

from gql_media.core.changed_videos import VideoIds
from gql_media.core.gc_hold import old_objects_left_alone
from gql_media.core.job_state import ActiveJob, now_utc
from gql_media.core.models import (
    JobState,
    LibraryChange,
    Root,
    Scope,
    SyncJob,
    SyncMode,
    SyncPhase,
    SyncRequest,
    SyncTarget,
    SyncTrigger,
    minimal_scopes,
)
from gql_media.core.ports import EventBus, JobCancelled, JobStep, JobStore
from gql_media.core.scanner import split_os_path
from gql_media.core.sync import SyncEngine

logger = logging.getLogger(__name__)

# How long ``submit`` waits for the job's row (behind the store's one writer) before answering without it.
SUBMIT_WAIT_S = 1.0


class PathOutsideRoots(ValueError):
    """A path that lies in no library root."""


class _RunningJob:
    """The running job as the sync engine and the steps after it see it (``ports.RunningJob``)."""

    def __init__(self, runner: JobRunner, job: ActiveJob) -> None:
        self._runner = runner
        self._job = job
        # Bounded: past ``VIDEO_IDS_KEPT`` only "many" (a first index of a million files held ~65 MB here).
        self._changed = VideoIds()
        self._removed = VideoIds()
        self._walked_tops: list[str] = []
        self._playlist_folders: set[str] = set()

    @property
    def job_id(self) -> int:
        return self._job.id

    @property
    def roots(self) -> Sequence[Root]:
        return self._runner.roots

    @property
    def scopes(self) -> Sequence[Scope]:
        return self._job.scopes

    @property
    def changed_video_ids(self) -> VideoIds:
        return self._changed

    @property
    def removed_video_ids(self) -> VideoIds:
        return self._removed

    def playlist_folders_under(self, top: str) -> list[str] | None:
        top = os.path.abspath(top)
        if not any(top == walked or top.startswith(walked.rstrip("/") + "/") for walked in self._walked_tops):
            return None
        below = top.rstrip("/") + "/"
        return sorted(folder for folder in self._playlist_folders if folder == top or folder.startswith(below))

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None:
        await self._job.report(phase, done, total, current_path)

    def tally(self, *, added: int = 0, updated: int = 0, removed: int = 0, moved: int = 0) -> None:
        job = self._job
        job.added += added
        job.updated += updated
        job.removed += removed
        job.moved += moved

    def add_error(self, path: str, message: str) -> None:
        self._job.add_error(path, message)

    def count_failures(self, count: int) -> None:
        self._job.failed += count

    def is_cancelled(self) -> bool:
        return self._job.cancel_requested

    def check_cancelled(self) -> None:
        self._job.check_cancelled()

    async def publish_change(self, change: LibraryChange) -> None:
        job_id = self._job.id
        # The media steps' changes carry the job's id already: no copy (``replace`` is ~10 us a call).
        await self._runner.bus.publish_change(change if change.job_id == job_id else replace(change, job_id=job_id))

    async def sync_targets(self, targets: Sequence[SyncTarget]) -> None:
        await self.sync_scopes(self._runner.scopes_for(targets))

    async def sync_scopes(self, scopes: Sequence[Scope]) -> None:
        outcome = await self._runner.engine.sync(scopes, self, confirm_empty_roots=self._job.mode is SyncMode.FULL)
        self._changed.extend(outcome.changed_video_ids)
        self._removed.extend(outcome.removed_video_ids)
        self._walked_tops.extend(outcome.walked_tops)
        self._playlist_folders.update(outcome.playlist_folders)


class _JobRecords:
    """Job rows written by a task of their own, one at a time, the newest snapshot of each job.

    ``record`` never waits: it gives a future done when that snapshot (or a newer one of the same
    job) is written, or failed. ``save`` writes after what was recorded before it, so an older
    snapshot written in the background never lands over a newer one.
    """

    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs
        self._pending: dict[int, tuple[SyncJob, asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, job: SyncJob) -> asyncio.Future[None]:
        known = self._pending.get(job.id)
        written = known[1] if known is not None else asyncio.get_running_loop().create_future()
        self._pending[job.id] = (job, written)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_pending(), name="gql_media-job-records")
        return written

    async def _write_pending(self) -> None:
        while self._pending:
            job_id = next(iter(self._pending))
            job, written = self._pending.pop(job_id)
            try:
                await self._jobs.save_job(job)
            except Exception as exc:
                # The job lives on in memory; its start and end are written by ``save`` again.
                logger.warning("writing sync job %s failed: %s", job_id, exc)
                if not written.done():
                    written.set_exception(exc)
                    written.exception()  # retrieved: a caller that stopped waiting is not an error
            else:
                if not written.done():
                    written.set_result(None)

    async def flush(self) -> None:
        """Until everything recorded so far is written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def save(self, job: ActiveJob) -> None:
        """Write ``job`` now (its snapshot taken once what was recorded before is written)."""
        await self.flush()
        self._pending.pop(job.id, None)
        await self._jobs.save_job(job.snapshot())


class JobRunner:
    """Runs sync jobs one at a time. ``submit`` never waits for a job to run, nor for the store's writer."""

    def __init__(
        self,
        *,
        engine: SyncEngine,
        jobs: JobStore,
        bus: EventBus,
        roots: Sequence[Root],
        steps: Sequence[JobStep] = (),
        on_finished: Callable[[SyncJob], Awaitable[None]] | None = None,
    ) -> None:
        self.engine = engine
        self.jobs = jobs
        self.bus = bus
        self.roots = list(roots)
        self.steps = list(steps)
        self.on_finished = on_finished
        self._running: ActiveJob | None = None
        self._queued: ActiveJob | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._submit_lock = asyncio.Lock()
        # Held while a job runs: ``exclusive`` waits for it (a root's index is forgotten between jobs).
        self._run_lock = asyncio.Lock()
        self._recent: dict[int, ActiveJob] = {}
        self._records = _JobRecords(jobs)
        # The next job's id, taken from the store ahead of need (the store's writer may be busy then).
        self._next_id: asyncio.Task[int] | None = None

    async def start(self) -> None:
        if self._task is None:
            await self.jobs.fail_unfinished_jobs("the server stopped while this job was queued or running")
            self._next_id = self._take_next_id()
            self._task = asyncio.create_task(self._loop(), name="gql_media-job-runner")

    async def stop(self) -> None:
        """Cancel what runs and stop; the stopped job is recorded as CANCELLED."""
        if self._running is not None:
            self._running.cancel_requested = True
        if self._queued is not None:
            await self.cancel(self._queued.id)
        if self._task is not None:
            task, self._task = self._task, None
            if self._running is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._running.finished.wait(), timeout=10)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._records.flush()
        if self._next_id is not None:
            # An id taken and never used is a gap in the numbering, nothing more.
            next_id, self._next_id = self._next_id, None
            next_id.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await next_id

    # ------------------------------------------------------------------ roots

    async def set_roots(self, roots: Sequence[Root]) -> list[Scope]:
        """Sync these roots from now on (a root added or removed at run time).

        The queued job forgets the scopes of roots no longer there. A running job that walks
        one of them is cancelled (it would write under a root being forgotten); its scopes are
        returned, so the caller can ask again for the part of it under the roots that stay.
        """
        known = {root.id for root in roots}
        async with self._submit_lock:
            self.roots = list(roots)
            queued = self._queued
            if queued is not None:
                queued.scopes = [scope for scope in queued.scopes if scope.root_id in known]
            running = self._running
            if running is not None and any(scope.root_id not in known for scope in running.scopes):
                running.cancel_requested = True
                return list(running.scopes)
        return []

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No job runs inside this block (it waits for the running one to end)."""
        async with self._run_lock:
            yield

    # ------------------------------------------------------------------ requests

    def resolve(self, abs_path: str) -> tuple[Root, str, bytes | None]:
        """The root holding an absolute path, and the path relative to it."""
        path = os.path.abspath(abs_path)
        for root in sorted(self.roots, key=lambda r: len(r.path), reverse=True):
            if path == root.path or path.startswith(root.path.rstrip(os.sep) + os.sep):
                rel, raw = split_os_path(root.path, path)
                return root, rel, raw
        raise PathOutsideRoots(f"{abs_path} is not inside any library root")

    def scopes_for(self, targets: Sequence[SyncTarget]) -> list[Scope]:
        if not targets:
            return [Scope(root.id, "", True) for root in self.roots]
        scopes: list[Scope] = []
        for target in targets:
            root, rel, raw = self.resolve(target.path)
            if rel and not os.path.isdir(target.path):
                # A file (or something gone): its folder, shallow, finds it added, changed or removed.
                parent = os.path.dirname(os.path.abspath(target.path))
                root, rel, raw = self.resolve(parent)
                scopes.append(Scope(root.id, rel, False, raw))
            else:
                scopes.append(Scope(root.id, rel, target.recursive, raw))
        return minimal_scopes(scopes)

    async def submit(self, request: SyncRequest) -> SyncJob:
        """Queue a sync; returns the running job when it covers the request, else the (merged) queued job."""
        targets = () if request.mode is SyncMode.FULL else request.targets
        scopes = self.scopes_for(targets)
        paths = [t.path for t in targets] if targets else [root.path for root in self.roots]
        async with self._submit_lock:
            running = self._running
            # The watcher reports changes made after the running job may have walked past them:
            # those always queue. A user's request is answered by a running job that covers it.
            if (
                running is not None
                and request.trigger is not SyncTrigger.WATCHER
                and not running.cancel_requested
                and running.covers(scopes)
                and (request.mode is not SyncMode.FULL or running.mode is SyncMode.FULL)
            ):
                return running.snapshot()
            if self._queued is not None:
                self._queued.merge(request, scopes, paths)
                snapshot = self._queued.snapshot()
                await self._record(snapshot)
                return snapshot
            job = ActiveJob(await self._take_job_id(), request, scopes, paths, self.bus.publish_progress)
            snapshot = job.snapshot()
            await self._record(snapshot)  # a store that cannot be written refuses the job here, as before
            self._queued = job
            self._recent[job.id] = job
            await job.publish()
            self._wake.set()
            return snapshot

    async def _record(self, job: SyncJob) -> None:
        """Write the job's row, waiting ``SUBMIT_WAIT_S`` at most: its failure then is the caller's (an
        index that cannot be written), and past that the row is written behind the answer."""
        written = self._records.record(job)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(written), SUBMIT_WAIT_S)

    async def _take_job_id(self) -> int:
        """An id taken ahead (waited for only when the last one was taken moments ago), and the next asked for."""
        task, self._next_id = self._next_id, None
        job_id = await (task if task is not None else self.jobs.next_job_id())
        self._next_id = self._take_next_id()
        return job_id

    def _take_next_id(self) -> asyncio.Task[int]:
        task = asyncio.create_task(self.jobs.next_job_id(), name="gql_media-next-job-id")
        # Its failure (an index that cannot be written) is raised to the submit that awaits it, if any.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return task

    async def cancel(self, job_id: int) -> SyncJob | None:
        """Cancel a queued or running job; a finished job is returned as it is."""
        queued = self._queued
        if queued is not None and queued.id == job_id:
            self._queued = None
            queued.state = JobState.CANCELLED
            queued.phase = SyncPhase.DONE
            queued.finished_at = now_utc()
            await self._finish(queued)
            return queued.snapshot()
        running = self._running
        if running is not None and running.id == job_id:
            running.cancel_requested = True
            return running.snapshot()
        return await self.get(job_id)

    def current(self) -> SyncJob | None:
        return None if self._running is None else self._running.snapshot()

    def queued(self) -> SyncJob | None:
        return None if self._queued is None else self._queued.snapshot()

    async def get(self, job_id: int) -> SyncJob | None:
        active = self._recent.get(job_id)
        if active is not None and not active.state.is_terminal:
            return active.snapshot()
        return await self.jobs.get_job(job_id)

    async def list(self, limit: int, offset: int = 0) -> list[SyncJob]:
        """Newest first; live jobs are shown as they are now (the queued one also before its row is written)."""
        stored = await self.jobs.list_jobs(limit, offset)
        live = {job.id: job for job in (self._running, self._queued) if job is not None}
        listed = [live.pop(job.id).snapshot() if job.id in live else job for job in stored]
        if offset == 0 and live:
            # Not written yet: newer than every stored job, so they belong at the top of the first page.
            newest = sorted((job.snapshot() for job in live.values()), key=lambda job: job.id, reverse=True)
            listed = (newest + listed)[:limit]
        return listed

    async def wait(self, job_id: int, timeout_s: float | None = None) -> SyncJob | None:
        """Wait until a job has finished; returns its final snapshot."""
        active = self._recent.get(job_id)
        if active is not None:
            await asyncio.wait_for(active.finished.wait(), timeout=timeout_s)
            return active.snapshot()
        return await self.jobs.get_job(job_id)

    # ------------------------------------------------------------------ running

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._submit_lock:
                job, self._queued = self._queued, None
                self._running = job
            if job is None:
                continue
            try:
                async with self._run_lock:
                    await self._run(job)
            finally:
                self._running = None

    async def _run(self, job: ActiveJob) -> None:
        job.mark_started()
        await self._records.save(job)
        running = _RunningJob(self, job)
        try:
            # One hold for the whole job: the GC leaves the older objects alone (no long full collections).
            with old_objects_left_alone():
                await running.sync_scopes(job.scopes)
                for step in self.steps:
                    job.check_cancelled()
                    await step(running)
            job.state = JobState.SUCCEEDED
        except JobCancelled:
            job.state = JobState.CANCELLED
        except asyncio.CancelledError:
            job.state = JobState.CANCELLED
            await self._finish(job)
            raise
        except Exception as exc:
            logger.exception("sync job %s failed", job.id)
            job.state = JobState.FAILED
            job.add_error("", f"sync failed: {type(exc).__name__}: {exc}")
        await self._finish(job)

    async def _save_final(self, job: SyncJob) -> None:
        await self._records.flush()
        await self.jobs.save_job(job)

    async def _finish(self, job: ActiveJob) -> None:
        job.phase = SyncPhase.DONE
        if job.finished_at is None:
            job.finished_at = now_utc()
        await job.publish_end(self._save_final)
        job.finished.set()
        # Keep only a few finished jobs in memory; the store has them all.
        for old_id in [i for i, j in self._recent.items() if j.state.is_terminal][:-20]:
            del self._recent[old_id]
        if self.on_finished is not None:
            await self.on_finished(job.snapshot())


__all__ = ["JobRunner", "PathOutsideRoots"]
