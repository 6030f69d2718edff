"""This replica's part in the cluster: the election, the leader's term, the commands it serves, the caches."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gql_media.adapters.leader import PgLeaderElection
from gql_media.adapters.store import Db, SqlJobStore
from gql_media.adapters.store.requests import ForwardedRequest, RequestQueue
from gql_media.cluster.commands import Command, decode, encode
from gql_media.cluster.term import LeaderTerm, Workers, execute
from gql_media.core.models import (
    LibraryChange,
    SyncJob,
    SyncMode,
    SyncProgress,
    SyncRequest,
    SyncTrigger,
    WatcherStatus,
)
from gql_media.core.ports import EventBus
from gql_media.settings import Settings

__all__ = ["FORWARD_TIMEOUT_S", "Cluster", "OpenWorkers", "StatusCallback"]

logger = logging.getLogger(__name__)

R = TypeVar("R")

StatusCallback = Callable[[WatcherStatus], Awaitable[None]]
# Builds the workers of a new term; what they hold open is closed with the stack when the term ends.
OpenWorkers = Callable[[contextlib.AsyncExitStack, StatusCallback], Awaitable[Workers]]

# How long a follower waits for the leader: long enough to ride out a failover (< 10 s).
FORWARD_TIMEOUT_S = 30.0
REQUEST_POLL_S = 0.1
MAX_REQUESTS_RUNNING = 16
STATUS_HEARTBEAT_S = 5.0
PROGRESS_KEPT = 64


class Cluster:
    """This replica's part in the cluster: the election, the leader's term, the follower's caches.

    Args:
        open_workers: builds the runner, watcher and media work of each term (``gql_media.services``).
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
        open_workers: OpenWorkers,
        serve: bool,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.bus = bus
        # This replica's name: in the watcher's status, the leader row and the requests it forwards.
        self.instance = settings.instance
        self.serve = serve
        self._open_workers = open_workers
        self.requests = RequestQueue(db, self.instance)
        self.election = PgLeaderElection(
            db.url,
            self.instance,
            on_elected=self._on_elected,
            on_lost=self._on_lost,
            poll_s=settings.leader_poll_s,
        )
        self.term: LeaderTerm | None = None
        self.terms = 0
        self._term_stack: contextlib.AsyncExitStack | None = None
        self._term_lock = asyncio.Lock()
        self._term_tasks: list[asyncio.Task[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._opened = False
        # Follower caches, fed by the bus (on the leader too: cheap, and ready for a step-down).
        self.progress: OrderedDict[int, SyncProgress] = OrderedDict()
        self.job_rows: OrderedDict[int, SyncJob] = OrderedDict()
        self.leader_status: WatcherStatus | None = None

    @property
    def is_leader(self) -> bool:
        return self.term is not None

    @property
    def leader(self) -> str | None:
        """The instance that leads, as far as this replica knows."""
        return self.instance if self.term is not None else self.election.leader

    async def call(self, command: Command[R], timeout_s: float = FORWARD_TIMEOUT_S) -> R:
        """Run ``command`` on the leader: here while this replica leads, else forwarded through the database.

        Raises ``RequestFailed`` when the leader could not run it or none answered within ``timeout_s``.
        """
        term = self.term
        if term is not None:
            return await execute(term, command)
        kind, payload = encode(command)
        return command.decode_result(await self.requests.call(kind, payload, timeout_s))

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
            self.term, self._term_stack = term, stack
            self.terms += 1
            self._term_tasks = [
                asyncio.create_task(self._serve_requests(term), name="gql-media-cluster-requests"),
                asyncio.create_task(self._status_heartbeat(term), name="gql-media-cluster-heartbeat"),
            ]
            if takeover:
                # A previous leader may have died mid-stream: every subscriber refetches.
                await self.bus.publish_change(LibraryChange.resync())
            await self._publish_status(term)
            if self.serve:
                # The watch (one per folder) grows with the library: it opens beside the term, so a
                # lone replica answers queries before it is done.
                self._term_tasks.append(asyncio.create_task(self._catch_up(term), name="gql-media-cluster-catch-up"))
            logger.info("%s leads (term ready in %.2f s)", self.instance, time.monotonic() - started)

    async def _catch_up(self, term: LeaderTerm) -> None:
        try:
            if self.settings.watch:
                # Starting the watcher reconciles every root first: the new leader catches up.
                await term.workers.watcher.start(SyncTrigger.STARTUP)
            else:
                await term.workers.runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.STARTUP))
        except Exception:
            logger.exception("the new leader could not start its watcher or its start-up sync")

    async def _begin_term(self, stack: contextlib.AsyncExitStack) -> LeaderTerm:
        abandoned = await self.requests.fail_abandoned()
        if abandoned:
            logger.info("failed %d requests the previous leader took and never answered", abandoned)

        async def on_status(status: WatcherStatus) -> None:
            await self.bus.publish_watcher(dataclasses.replace(status, leader=self.instance))

        # The runner marks jobs the previous leader left QUEUED or RUNNING as FAILED: never run again.
        return LeaderTerm(self.instance, await self._open_workers(stack, on_status))

    async def _on_lost(self) -> None:
        await self._end_term()

    async def _end_term(self) -> None:
        async with self._term_lock:
            self.term = None
            stack, self._term_stack = self._term_stack, None
            tasks, self._term_tasks = self._term_tasks, []
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            if stack is not None:
                await stack.aclose()

    async def _publish_status(self, term: LeaderTerm) -> None:
        await self.bus.publish_watcher(dataclasses.replace(term.workers.watcher.status(), leader=self.instance))

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
                    # A cheap read first: claiming takes this process's write lock.
                    if free > 0 and await self.requests.pending():
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

    async def _run_request(self, term: LeaderTerm, request: ForwardedRequest) -> None:
        try:
            command = decode(request.kind, request.payload)
            result = command.encode_result(await execute(term, command))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.requests.finish(request.id, error="the leader stopped while running it")
            raise
        except Exception as exc:
            logger.warning("forwarded %s request %d failed: %s", request.kind, request.id, exc)
            await self.requests.finish(request.id, error=f"{type(exc).__name__}: {exc}")
            return
        await self.requests.finish(request.id, result)

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
