"""Several replicas on one PostgreSQL database: one elected leader does the work, the others forward.

The leader (``adapters.leader``) runs the job runner, the watcher and the media workers for one
*term*: from its election until it loses the lock or stops. Every replica serves queries and
subscriptions. What the API asks of the runner, the watcher and the media service goes through
the stable facades here (``ClusterRunner``, ``ClusterWatcher``, ``ClusterMedia``): on the leader
they call the term's objects; on a follower they forward the call as a row of ``job_requests``
(``adapters.store.requests``) and wait for the leader's answer. Followers read jobs from the
database and their live progress from the broadcast bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from gql_media.adapters.broadcast import decode_watcher, encode_watcher
from gql_media.adapters.leader import PgLeaderElection
from gql_media.adapters.store import Db, SqlJobStore
from gql_media.adapters.store.requests import ForwardedRequest, RequestFailed, RequestQueue
from gql_media.core.jobs import JobRunner
from gql_media.core.media_work import MediaWork
from gql_media.core.models import (
    ChangeKind,
    JobState,
    LibraryChange,
    MergeOutcome,
    Root,
    SyncJob,
    SyncMode,
    SyncProgress,
    SyncRequest,
    SyncTarget,
    SyncTrigger,
    WatcherStatus,
    WatchMode,
)
from gql_media.core.ports import EventBus
from gql_media.core.sync import SyncEngine
from gql_media.core.thumbnails import ThumbnailSpec
from gql_media.core.watching import WatchService
from gql_media.settings import Settings

__all__ = ["Cluster", "ClusterMedia", "ClusterRunner", "ClusterWatcher", "RequestFailed"]

logger = logging.getLogger(__name__)

StatusCallback = Callable[[WatcherStatus], Awaitable[None]]
OpenMedia = Callable[[contextlib.AsyncExitStack], Awaitable[MediaWork]]
MakeWatcher = Callable[[JobRunner, StatusCallback], WatchService]

# How long a follower waits for the leader: long enough to ride out a failover (< 10 s).
FORWARD_TIMEOUT_S = 30.0
REQUEST_POLL_S = 0.1
MAX_REQUESTS_RUNNING = 16
STATUS_HEARTBEAT_S = 5.0
PROGRESS_KEPT = 64


@dataclasses.dataclass(slots=True)
class LeaderTerm:
    """What runs on this replica while it leads."""

    runner: JobRunner
    watcher: WatchService
    media: MediaWork | None
    stack: contextlib.AsyncExitStack


def _request_payload(request: SyncRequest) -> dict[str, Any]:
    return {
        "mode": request.mode.value,
        "trigger": request.trigger.value,
        "targets": [[t.path, t.recursive] for t in request.targets],
    }


def _request_from(payload: dict[str, Any]) -> SyncRequest:
    targets = tuple(SyncTarget(str(path), bool(recursive)) for path, recursive in payload["targets"])
    return SyncRequest(SyncMode(payload["mode"]), SyncTrigger(payload["trigger"]), targets)


class Cluster:
    """This replica's part in the cluster: the election, the leader's term, the follower's caches.

    Args:
        serve: a server (not ``gql-media scan`` or a test): each new term starts the watcher
            (``settings.watch``) or submits a start-up sync, which reconciles the index with the disk.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        db: Db,
        jobs: SqlJobStore,
        bus: EventBus,
        roots: list[Root],
        engine: SyncEngine,
        instance: str,
        open_media: OpenMedia | None,
        thumbnails: ThumbnailSpec,
        make_watcher: MakeWatcher,
        steps_from: Callable[[MediaWork | None], list[Any]],
        serve: bool,
    ) -> None:
        self.settings = settings
        self.db = db
        self.jobs = jobs
        self.bus = bus
        self.roots = roots
        self.engine = engine
        self.instance = instance
        self.serve = serve
        self._open_media = open_media
        self._make_watcher = make_watcher
        self._steps_from = steps_from
        self.requests = RequestQueue(db, instance)
        self.election = PgLeaderElection(
            db.url,
            instance,
            on_elected=self._on_elected,
            on_lost=self._on_lost,
            poll_s=settings.leader_poll_s,
        )
        self.term: LeaderTerm | None = None
        self.terms = 0
        self._term_lock = asyncio.Lock()
        self._term_tasks: list[asyncio.Task[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._opened = False
        # Follower caches, fed by the bus (on the leader too: cheap, and ready for a step-down).
        self.progress: OrderedDict[int, SyncProgress] = OrderedDict()
        self.job_rows: OrderedDict[int, SyncJob] = OrderedDict()
        self.leader_status: WatcherStatus | None = None
        self.runner = ClusterRunner(self)
        self.watcher = ClusterWatcher(self)
        self.media = ClusterMedia(self, thumbnails) if open_media is not None else None

    @property
    def is_leader(self) -> bool:
        return self.term is not None

    @property
    def leader(self) -> str | None:
        """The instance that leads, as far as this replica knows."""
        return self.instance if self.term is not None else self.election.leader

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Follow the bus, try once to lead (a lone replica leads before this returns), keep competing."""
        self._tasks = [
            asyncio.create_task(self._follow_progress(), name="gql-media-cluster-progress"),
            asyncio.create_task(self._follow_watcher(), name="gql-media-cluster-watcher"),
        ]
        try:
            await self.election.try_to_lead()
        except Exception as exc:
            logger.warning("leader election: first attempt failed (%s); retrying in the background", exc)
        # From now on an election is a takeover (or a return) while replicas serve.
        self._opened = True
        self.election.start()

    async def aclose(self) -> None:
        self._closing = True
        await self._end_term()
        await self.election.aclose()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # ------------------------------------------------------------------ the leader's term

    async def _on_elected(self) -> None:
        async with self._term_lock:
            if self._closing or self.term is not None:
                return
            started = time.monotonic()
            takeover = self._opened
            stack = contextlib.AsyncExitStack()
            try:
                term = await self._begin_term(stack)
            except BaseException:
                await stack.aclose()
                raise
            self.term = term
            self.terms += 1
            self._term_tasks = [
                asyncio.create_task(self._serve_requests(term), name="gql-media-cluster-requests"),
                asyncio.create_task(self._status_heartbeat(term), name="gql-media-cluster-heartbeat"),
            ]
            if takeover:
                # A previous leader may have died mid-stream: every subscriber refetches.
                await self.bus.publish_change(LibraryChange(ChangeKind.RESYNC, None, None, None, None, None))
            await self._publish_status(term)
            if self.serve:
                if self.settings.watch:
                    # Starting the watcher reconciles every root first: the new leader catches up.
                    await term.watcher.start(SyncTrigger.STARTUP)
                else:
                    await term.runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.STARTUP))
            logger.info("%s leads (term ready in %.2f s)", self.instance, time.monotonic() - started)

    async def _begin_term(self, stack: contextlib.AsyncExitStack) -> LeaderTerm:
        abandoned = await self.requests.fail_abandoned()
        if abandoned:
            logger.info("failed %d requests the previous leader took and never answered", abandoned)
        work = await self._open_media(stack) if self._open_media is not None else None
        runner = JobRunner(
            engine=self.engine, jobs=self.jobs, bus=self.bus, roots=self.roots, steps=self._steps_from(work)
        )
        # Jobs the previous leader left QUEUED or RUNNING are marked FAILED here, never run again.
        await runner.start()
        stack.push_async_callback(runner.stop)

        async def on_status(status: WatcherStatus) -> None:
            await self.bus.publish_watcher(dataclasses.replace(status, leader=self.instance))

        watcher = self._make_watcher(runner, on_status)
        stack.push_async_callback(watcher.stop)
        return LeaderTerm(runner=runner, watcher=watcher, media=work, stack=stack)

    async def _on_lost(self) -> None:
        await self._end_term()

    async def _end_term(self) -> None:
        async with self._term_lock:
            term, self.term = self.term, None
            tasks, self._term_tasks = self._term_tasks, []
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            if term is not None:
                await term.stack.aclose()

    async def _publish_status(self, term: LeaderTerm) -> None:
        await self.bus.publish_watcher(dataclasses.replace(term.watcher.status(), leader=self.instance))

    async def _status_heartbeat(self, term: LeaderTerm) -> None:
        # Replicas that start later learn the watcher's state (and who leads) from this.
        while True:
            await asyncio.sleep(STATUS_HEARTBEAT_S)
            await self._publish_status(term)

    async def _serve_requests(self, term: LeaderTerm) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = MAX_REQUESTS_RUNNING - len(running)
                claimed: list[ForwardedRequest] = []
                try:
                    if free > 0 and await self._requests_pending():
                        claimed = await self.requests.claim(free)
                except Exception:
                    logger.exception("forwarded requests: claiming failed")
                for request in claimed:
                    task = asyncio.create_task(self._run_request(term, request))
                    running.add(task)
                    task.add_done_callback(running.discard)
                await asyncio.sleep(REQUEST_POLL_S)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)

    async def _requests_pending(self) -> bool:
        # A cheap read first: claiming takes this process's write lock.
        async with self.db.reading() as conn:
            return await conn.fetch_one("SELECT 1 FROM job_requests WHERE state = 'PENDING' LIMIT 1") is not None

    async def _run_request(self, term: LeaderTerm, request: ForwardedRequest) -> None:
        try:
            result = await self._execute(term, request)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.requests.finish(request.id, error="the leader stopped while running it")
            raise
        except Exception as exc:
            logger.warning("forwarded %s request %d failed: %s", request.kind, request.id, exc)
            await self.requests.finish(request.id, error=f"{type(exc).__name__}: {exc}")
            return
        await self.requests.finish(request.id, result)

    async def _execute(self, term: LeaderTerm, request: ForwardedRequest) -> Any:
        payload = request.payload
        if request.kind == "sync":
            return {"job_id": (await term.runner.submit(_request_from(payload))).id}
        if request.kind == "cancel":
            job = await term.runner.cancel(int(payload["job_id"]))
            return {"job_id": None if job is None else job.id}
        if request.kind == "watcher":
            status = await (term.watcher.start() if payload["enabled"] else term.watcher.stop())
            return encode_watcher(dataclasses.replace(status, leader=self.instance))
        if term.media is None:
            raise RuntimeError("the media service is not set up on the leader")
        if request.kind == "thumbnail":
            return await term.media.regenerate_thumbnail(int(payload["video_id"]))
        if request.kind == "merge":
            return dataclasses.asdict(await term.media.merge_hls(str(payload["path"]), payload["delete_source"]))
        raise ValueError(f"unknown request kind {request.kind!r}")

    async def forward(self, kind: str, payload: dict[str, Any], timeout_s: float = FORWARD_TIMEOUT_S) -> Any:
        """Run a request on the leader and return its answer (``RequestFailed`` if it cannot)."""
        return await self.requests.call(kind, payload, timeout_s)

    # ------------------------------------------------------------------ follower caches

    async def _follow_progress(self) -> None:
        subscription = self.bus.subscribe_progress()
        try:
            async for progress in subscription:
                self.progress[progress.job_id] = progress
                self.progress.move_to_end(progress.job_id)
                while len(self.progress) > PROGRESS_KEPT:
                    self.progress.popitem(last=False)
                if progress.job_id not in self.job_rows and not progress.state.is_terminal:
                    await self._remember_job(progress.job_id)
        finally:
            await subscription.aclose()

    async def _remember_job(self, job_id: int) -> None:
        try:
            job = await self.jobs.get_job(job_id)
        except Exception:
            logger.exception("could not read job %d", job_id)
            return
        if job is not None:
            self.job_rows[job_id] = job
            while len(self.job_rows) > PROGRESS_KEPT:
                self.job_rows.popitem(last=False)

    async def _follow_watcher(self) -> None:
        subscription = self.bus.subscribe_watcher()
        try:
            async for status in subscription:
                if status.leader is not None:
                    self.leader_status = status
        finally:
            await subscription.aclose()

    def live(self, job: SyncJob) -> SyncJob:
        """``job`` as read from the database, with the newest progress seen on the bus."""
        progress = self.progress.get(job.id)
        if progress is None or job.state.is_terminal or progress.sequence < job.progress.sequence:
            return job
        return dataclasses.replace(job, state=progress.state, progress=progress)


class ClusterRunner:
    """The job runner as the API sees it, on any replica (``api.context.JobRunnerLike``)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    @property
    def local(self) -> JobRunner | None:
        """The leader's runner while this replica leads."""
        term = self._cluster.term
        return None if term is None else term.runner

    async def submit(self, request: SyncRequest) -> SyncJob:
        """Queue a sync on the leader; returns the job it runs or queued for it."""
        local = self.local
        if local is not None:
            return await local.submit(request)
        answer = await self._cluster.forward("sync", _request_payload(request))
        job = await self.get(int(answer["job_id"]))
        if job is None:
            raise RequestFailed(f"the leader's job {answer['job_id']} is not in the database")
        return job

    async def cancel(self, job_id: int) -> SyncJob | None:
        local = self.local
        if local is not None:
            return await local.cancel(job_id)
        answer = await self._cluster.forward("cancel", {"job_id": job_id})
        return None if answer["job_id"] is None else await self.get(int(answer["job_id"]))

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
            await asyncio.sleep(0.2)


class ClusterWatcher:
    """The watcher as the API sees it: the leader's, wherever it is asked."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def status(self) -> WatcherStatus:
        cluster = self._cluster
        term = cluster.term
        if term is not None:
            return dataclasses.replace(term.watcher.status(), leader=cluster.instance)
        seen = cluster.leader_status
        leader = cluster.election.leader
        if seen is not None and seen.leader == leader:
            return seen
        settings = cluster.settings
        return WatcherStatus(
            enabled=False,
            mode=WatchMode(settings.watch_mode.upper()),
            roots=tuple(settings.root_paths),
            settle_ms=settings.settle_ms,
            error="no leader has reported its watcher yet" if leader is None else f"waiting for {leader} to report",
            leader=leader,
        )

    async def start(self, trigger: SyncTrigger = SyncTrigger.WATCHER) -> WatcherStatus:
        term = self._cluster.term
        if term is not None:
            return dataclasses.replace(await term.watcher.start(trigger), leader=self._cluster.instance)
        return await self._forward(True)

    async def stop(self) -> WatcherStatus:
        term = self._cluster.term
        if term is not None:
            return dataclasses.replace(await term.watcher.stop(), leader=self._cluster.instance)
        return await self._forward(False)

    async def _forward(self, enabled: bool) -> WatcherStatus:
        status = decode_watcher(await self._cluster.forward("watcher", {"enabled": enabled}))
        self._cluster.leader_status = status
        return status


class ClusterMedia:
    """``regenerate_thumbnail`` and ``merge_hls`` run on the leader; thumbnails are files every replica reads."""

    def __init__(self, cluster: Cluster, thumbnails: ThumbnailSpec) -> None:
        self._cluster = cluster
        self._thumbnails = thumbnails

    def thumbnail_file(self, key: str | None) -> str | None:
        """The image file of a thumbnail key (the thumbnails folder is shared), or None for no key or a bad one."""
        if key is None:
            return None
        try:
            return self._thumbnails.path_for(key)
        except ValueError:
            return None

    def _timeout_s(self) -> float:
        return FORWARD_TIMEOUT_S + 3 * self._cluster.settings.media_timeout_s

    async def regenerate_thumbnail(self, video_id: int) -> str | None:
        """The new thumbnail key, or None when the placeholder is shown."""
        term = self._cluster.term
        if term is not None and term.media is not None:
            return await term.media.regenerate_thumbnail(video_id)
        key = await self._cluster.forward("thumbnail", {"video_id": video_id}, self._timeout_s())
        return None if key is None else str(key)

    async def merge_hls(self, path: str, delete_source: bool | None = None) -> MergeOutcome:
        """Merge an HLS download into an mp4 beside it (on the leader)."""
        term = self._cluster.term
        if term is not None and term.media is not None:
            return await term.media.merge_hls(path, delete_source)
        payload = {"path": path, "delete_source": delete_source}
        return MergeOutcome(**await self._cluster.forward("merge", payload, self._timeout_s()))
