"""The one place that wires the core to its adapters (used by the server and the CLI).

Past 400 lines, kept whole: it is the composition root, the one module that imports the core and
every adapter, and one opener serves SQLite and PostgreSQL alike with the builders below it (engine,
workers, watcher, media, roots); split, the one map from ``Settings`` to the constructors' arguments would
be spread over several modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gql_media.adapters.broadcast import open_bus
from gql_media.adapters.bus import MemoryBus
from gql_media.adapters.leader import STARTUP_LOCK_KEY, advisory_lock
from gql_media.adapters.media import PyAvMediaTool
from gql_media.adapters.store import Db, IndexStore, SqlJobStore, migrate
from gql_media.adapters.store.bulk import finish_bulk_load
from gql_media.adapters.store.downloads import SqlDownloadLog
from gql_media.adapters.store.media import SqlMediaStore
from gql_media.adapters.store.recount import repair_totals
from gql_media.adapters.store.roots import SqlRootStore
from gql_media.adapters.watcher import WatchfilesSourceFactory, WatchOptions
from gql_media.cluster import (
    Cluster,
    ClusterMedia,
    ClusterRoots,
    ClusterRunner,
    ClusterWatcher,
    OpenWorkers,
    StatusCallback,
    Workers,
)
from gql_media.core.hls import HlsPlaylist, remove_stale_temp_files
from gql_media.core.jobs import JobRunner
from gql_media.core.media_work import MediaWork
from gql_media.core.models import ChangeKind, MediaInfo, Root, WatchMode
from gql_media.core.own_writes import OwnWrites
from gql_media.core.ports import EventBus, JobStep, MediaTool
from gql_media.core.roots import LibraryRoots, RootWorkers
from gql_media.core.streaming import StreamingService
from gql_media.core.sync import SyncEngine
from gql_media.core.sync.walk_process import WalkProcess
from gql_media.core.thumbnails import ThumbnailSpec, thumbnail_suffix
from gql_media.core.watching import WatchService
from gql_media.playback import open_playback
from gql_media.settings import Settings

if TYPE_CHECKING:
    # For the types only: importing the API package loads Strawberry, which `gql-media scan` never needs.
    from gql_media.api.ports import Media, Roots, Runner, Watcher

logger = logging.getLogger(__name__)

# How long a thread running Python keeps the GIL while another waits for it, in a server (CPython's
# default is 5 ms). A sync runs Python in threads (comparing a batch, planning ids, the walk between
# its stats), and the event loop and a query's driver thread each wait for the GIL when they wake,
# several times a query. A loop waking every millisecond beside a thread running Python, alternating
# 3 reps at load 17-19: woken late by p50 7.0/10.2/8.8 -> 1.3/4.9/0.2 ms, p90 19/22/22 -> 10/10/8 ms.
# 1 ms -> 0.2 ms: a query-like chain on the loop (5 round trips to a driver-like thread, a little
# Python at each end) beside a thread running Python, 8 alternating reps at load 8, medians: p90
# 6.3 -> 4.1 ms, p99 20.9 -> 15.2 ms (with no busy thread: p90 0.4 ms); the busy thread did 30%
# less meanwhile (the loop's share of the GIL is what grew). Two threads running Python alone did
# as much work per CPU second at 0.2 as at 1 ms (the switches cost nothing measurable here).
SERVER_SWITCH_INTERVAL_S = 0.0002


@dataclass(slots=True)
class Services:
    """Everything a running gql_media holds; the API reads it, never builds it.

    With SQLite one process does everything: ``runner``, ``watcher`` and ``media`` are the real
    objects. With PostgreSQL replicas elect a leader (``cluster``): they are the cluster's facades,
    which run on the leader and forward from a follower. Either way they are the API's protocols
    (``gql_media.api.ports``); ``media`` is None without media work.
    """

    settings: Settings
    db: Db
    index: IndexStore
    jobs: SqlJobStore
    bus: EventBus
    roots: list[Root]
    engine: SyncEngine
    runner: Runner
    watcher: Watcher
    # Adds and removes roots at run time (``roots`` is its live list).
    library_roots: Roots
    media: Media | None = None
    cluster: Cluster | None = None
    # Every replica streams to its own viewers (not a leader's job).
    playback: StreamingService | None = None


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, media: bool = True, serve: bool = False) -> AsyncIterator[Services]:
    """Open the database (migrated), the bus, the sync engine, media workers and the job runner.

    ``media=False`` leaves out probing, thumbnails and HLS merging (``gql-media scan`` indexes only).
    On PostgreSQL the replica joins the leader election; a lone replica leads before this yields.
    ``serve=True`` (the server) makes each new leader start the watcher, or a start-up sync; with
    SQLite the server does that itself (``app.py``). It also sets the interpreter's switch interval
    to ``SERVER_SWITCH_INTERVAL_S`` while the services are open.
    """
    if not serve:
        async with _open_services(settings, media=media, serve=serve) as services:
            yield services
        return
    previous_s = sys.getswitchinterval()
    sys.setswitchinterval(SERVER_SWITCH_INTERVAL_S)
    try:
        async with _open_services(settings, media=media, serve=serve) as services:
            yield services
    finally:
        sys.setswitchinterval(previous_s)


@contextlib.asynccontextmanager
async def _open_services(settings: Settings, *, media: bool, serve: bool) -> AsyncIterator[Services]:
    """The index side always; the workers in this process (SQLite), or on PostgreSQL this replica's
    part in the cluster, whose leader runs them (``runner``, ``watcher`` and ``media`` are its facades)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    clustered = Db(url).dialect == "postgresql"
    # A first index walks in a process of its own: one starts now, its interpreter's start (~70 ms)
    # beside ours, kept below if a root is empty (a first index is to come). (On PostgreSQL the
    # leader's first index starts its own: a replica may never lead.)
    walk_ahead = await asyncio.to_thread(_walk_process) if settings.sync_walk_process and not clustered else None
    try:
        # Replicas starting together take turns at the schema and the root rows.
        async with advisory_lock(url, STARTUP_LOCK_KEY) if clustered else contextlib.nullcontext():
            await migrate(url)
            db = Db(url)
            await db.connect()
            index = IndexStore(db)
            try:
                roots = await index.ensure_roots(settings.root_paths)
                if walk_ahead is not None and not await index.has_empty_root():
                    await _close_walk_process(walk_ahead)
                    walk_ahead = None
            except BaseException:
                await db.disconnect()
                raise
    except BaseException:
        await _close_walk_process(walk_ahead)
        raise
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_close_walk_process, walk_ahead)  # (if no first index took it)
        stack.push_async_callback(db.disconnect)
        stack.push_async_callback(index.finish_checkpoints)
        jobs = SqlJobStore(db)
        bus: EventBus = (
            await stack.enter_async_context(
                open_bus(settings.broadcast_url, instance=settings.instance, channel=settings.broadcast_channel)
            )
            if clustered
            else MemoryBus()
        )
        engine = _sync_engine(settings, index, bus, roots, walk_ahead)
        # Whose runner and watcher sync and watch a root added or removed: this process's, or the
        # leader's of this term (None until they are open, or while no term runs here).
        own: Workers | None = None
        cluster: Cluster | None = None

        def root_workers() -> RootWorkers | None:
            if cluster is None:
                return _root_workers(own)
            term = cluster.term
            return _root_workers(None if term is None else term.workers)

        library = _library_roots(settings, db, roots, engine, bus, root_workers)
        await library.load()
        open_workers = _workers_opener(settings, db, engine, jobs, bus, roots, library, media=media)
        runner: Runner
        watcher: Watcher
        library_roots: Roots
        work: Media | None
        if clustered:
            cluster = Cluster(
                settings=settings,
                db=db,
                jobs=jobs,
                bus=bus,
                open_workers=open_workers,
                serve=serve,
            )
            await cluster.open()
            stack.push_async_callback(cluster.aclose)
            # A root the leader adds or removes reaches this replica's list (and its API) by the bus.
            follower = asyncio.create_task(_follow_roots(bus, library), name="gql-media-roots")
            stack.push_async_callback(_cancel, follower)
            runner, watcher = ClusterRunner(cluster), ClusterWatcher(cluster, roots)
            library_roots, work = ClusterRoots(cluster, library), ClusterMedia(cluster) if media else None
        else:
            own = await open_workers(stack, bus.publish_watcher)
            runner, watcher, library_roots, work = own.runner, own.watcher, library, own.media
        # Every replica streams to its own viewers (not a leader's job).
        playback = await stack.enter_async_context(open_playback(settings, bus)) if media else None
        yield Services(
            settings,
            db,
            index,
            jobs,
            bus,
            roots,
            engine,
            runner,
            watcher,
            library_roots,
            media=work,
            cluster=cluster,
            playback=playback,
        )


def _walk_process() -> WalkProcess | None:
    try:
        return WalkProcess()
    except OSError as error:  # (a first index starts its own, or walks in a thread)
        logger.warning("could not start a walk's process ahead: %s", error)
        return None


async def _close_walk_process(process: WalkProcess | None) -> None:
    """Stop a walk's process started ahead that no first index took (it holds nothing: killed, not
    waited for while it imports); one a walk took has ended already."""
    if process is not None:
        process.kill()
        await asyncio.to_thread(process.close)


def _sync_engine(
    settings: Settings, index: IndexStore, bus: EventBus, roots: list[Root], walk_ahead: WalkProcess | None
) -> SyncEngine:
    """The sync engine of ``roots``, with the sync settings; it never walks the server's data folder."""
    return SyncEngine(
        index,
        bus,
        roots,
        ignore_paths=[str(settings.data_dir)],
        batch_size=settings.sync_batch_size,
        summary_threshold=settings.sync_summary_threshold,
        walk_process=settings.sync_walk_process,
        walk_ahead=walk_ahead,
    )


def _workers_opener(
    settings: Settings,
    db: Db,
    engine: SyncEngine,
    jobs: SqlJobStore,
    bus: EventBus,
    roots: list[Root],
    library: LibraryRoots,
    *,
    media: bool,
) -> OpenWorkers:
    """How to build the job runner, the watcher and the media work: once with SQLite, each term on PostgreSQL."""

    async def open_workers(stack: contextlib.AsyncExitStack, on_status: StatusCallback) -> Workers:
        work = await _open_media(settings, db, [root.path for root in roots], stack) if media else None
        steps: list[JobStep] = list(work.steps()) if work is not None else []
        runner = JobRunner(engine=engine, jobs=jobs, bus=bus, roots=roots, steps=steps)
        # Jobs a previous process (or leader) left QUEUED or RUNNING are marked FAILED here, never run again.
        await runner.start()
        stack.push_async_callback(runner.stop)
        watcher = _watch_service(settings, [root.path for root in roots], runner, on_status)
        stack.push_async_callback(watcher.stop)
        # The one writer checks the folder totals, beside start-up (a scan of the videos). A stop
        # waits for it (a second or two at 1M) rather than cancel a statement mid-transaction.
        totals = asyncio.create_task(_repair_totals(db), name="gql-media-totals")
        stack.push_async_callback(asyncio.wait, {totals})
        return Workers(runner, watcher, work, library)

    return open_workers


def _root_workers(workers: Workers | None) -> RootWorkers | None:
    return None if workers is None else RootWorkers(workers.runner, workers.watcher)


async def _follow_roots(bus: EventBus, library: LibraryRoots) -> None:
    subscription = bus.subscribe_changes()
    try:
        async for change in subscription:
            if change.kind in (ChangeKind.ROOT_ADDED, ChangeKind.ROOT_REMOVED, ChangeKind.RESYNC):
                try:
                    await library.refresh()
                except Exception:
                    logger.exception("could not read the library roots again")
    finally:
        await subscription.aclose()


async def _repair_totals(db: Db) -> None:
    try:
        # A first index killed between its batches left its indexes to be made (``bulk.py``).
        if await finish_bulk_load(db):
            logger.warning("an interrupted bulk load was finished: the index's search table and indexes are made")
    except Exception:
        logger.exception("could not finish an interrupted bulk load")
    try:
        if await repair_totals(db):
            logger.warning("the folder totals did not match the videos (written behind the store's back): recounted")
    except Exception:
        logger.exception("could not check the folder totals")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _library_roots(
    settings: Settings,
    db: Db,
    roots: list[Root],
    engine: SyncEngine,
    bus: EventBus,
    workers: Callable[[], RootWorkers | None],
) -> LibraryRoots:
    # Thumbnails are forgotten with their root whether or not this process makes them (a shared folder).
    return LibraryRoots(
        roots=roots,
        config_paths=settings.root_paths,
        store=SqlRootStore(db),
        engine=engine,
        bus=bus,
        workers=workers,
        data_dir=str(settings.data_dir),
        allowed_prefixes=[str(prefix) for prefix in settings.root_allow],
        thumbnails_dir=str(settings.thumbnails_dir),
    )


def _watch_service(
    settings: Settings, root_paths: list[str], runner: JobRunner, on_status: StatusCallback
) -> WatchService:
    """The watcher, built stopped: the server starts it (``watch``), the API toggles it."""
    factory = WatchfilesSourceFactory(
        ignored_paths=[str(settings.data_dir)],
        own_writes=OwnWrites(),
        options=WatchOptions(poll_delay_ms=settings.poll_delay_ms),
    )
    return WatchService(
        factory,
        runner,
        root_paths,
        on_status=on_status,
        mode=WatchMode(settings.watch_mode.upper()),
        settle_ms=settings.settle_ms,
        max_wait_ms=settings.max_wait_ms,
        max_pending=settings.watch_queue_size,
        file_settle_ms=settings.file_settle_ms,
        reconcile_interval_s=settings.reconcile_interval_s,
        retry_delay_s=settings.watch_retry_delay_s,
    )


async def _open_media(settings: Settings, db: Db, root_paths: list[str], stack: contextlib.AsyncExitStack) -> MediaWork:
    settings.thumbnails_dir.mkdir(parents=True, exist_ok=True)
    tool = PyAvMediaTool(
        settings.media_workers,
        settings.media_timeout_s,
        niceness=settings.media_worker_nice,
        idle=settings.media_worker_idle,
    )
    await tool.start()
    stack.push_async_callback(tool.aclose)
    # Drawn by a worker, beside start-up (this process never imports Pillow); until it is there the
    # thumbnail route answers with its built-in SVG.
    placeholder = asyncio.create_task(_draw_placeholder(settings, tool), name="gql-media-placeholder")
    stack.push_async_callback(_cancel, placeholder)
    # Every root (those added at run time too) and the thumbnails.
    cleared = _remove_stale_temp_files([*root_paths, settings.thumbnails_dir], stack)
    return MediaWork(
        SqlMediaStore(db),
        _AfterCleanup(tool, cleared),
        ThumbnailSpec(
            str(settings.thumbnails_dir), settings.thumbnail_width, thumbnail_suffix(settings.thumbnail_format)
        ),
        auto_merge=settings.hls_auto_merge,
        delete_source=settings.hls_delete_source,
        downloads=SqlDownloadLog(db),
        summary_threshold=settings.sync_summary_threshold,
    )


async def _draw_placeholder(settings: Settings, tool: PyAvMediaTool) -> None:
    try:
        await tool.ensure_placeholder(settings.thumbnails_dir, settings.thumbnail_width, settings.thumbnail_format)
    except Exception:  # the SVG stands in for it
        logger.exception("could not draw the placeholder image")


def _remove_stale_temp_files(folders: list[str | Path], stack: contextlib.AsyncExitStack) -> asyncio.Event:
    """Remove the temp files a killed merge or thumbnail left, beside start-up: set once done (or failed).

    It walks every root, which takes seconds at a million files, so the server answers meanwhile
    (issue 18: start-up in constant time); nothing that writes such a file starts before it is set.
    """
    cleared = asyncio.Event()
    stop = threading.Event()

    async def remove() -> None:
        try:
            await asyncio.to_thread(remove_stale_temp_files, folders, stop.is_set)
        except Exception:
            logger.exception("could not remove the temp files an interrupted merge left")
        finally:
            cleared.set()

    task = asyncio.create_task(remove(), name="gql-media-stale-temp-files")

    async def finish() -> None:
        stop.set()  # the walk ends at its next folder; shutting down never waits for a whole library
        await asyncio.wait({task})

    stack.push_async_callback(finish)
    return cleared


class _AfterCleanup:
    """The media tool, whose merges and thumbnails wait for the stale temp files' removal.

    Their own temp files look just like a killed process's, so none is written while the removal
    walks; probing writes nothing and never waits.
    """

    def __init__(self, tool: MediaTool, cleared: asyncio.Event) -> None:
        self._tool = tool
        self._cleared = cleared

    @property
    def workers(self) -> int:
        return self._tool.workers

    async def probe(self, path: str | bytes) -> MediaInfo:
        return await self._tool.probe(path)

    async def make_thumbnail(self, path: str | bytes, output_path: str, width_px: int) -> None:
        await self._cleared.wait()
        await self._tool.make_thumbnail(path, output_path, width_px)

    async def merge_hls(self, playlist: HlsPlaylist) -> str:
        await self._cleared.wait()
        return await self._tool.merge_hls(playlist)

    async def aclose(self) -> None:
        await self._tool.aclose()
