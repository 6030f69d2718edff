"""The sync engine: streamed scopes and survey rounds, then diff, plan ids, write, and publish.

A big scope streams (``stream``): walked, compared with the index and written a batch at a time,
holding back only what may be one side of a move. Other scopes are surveyed in rounds, widened
where the survey says they must be (``survey.next_scopes``). What is held back and what the
rounds found go to ``diff.classify`` (what counts as a move), ``plan.assign_ids`` (the ids) and
the store, in batches. The job's changes are published once its writes are done: one per entry,
or past the summary threshold one per changed subtree (``summary``).

Past 400 lines, kept whole: what each step does already lives in its own module (``diff``,
``plan``, ``stream``, ``feed``, ``survey``, ``summary``); what stays here is their order and the
state they share within one job (the store, the reserved id block, the writes in flight, what is
held back for the diff), which a split would have to pass between modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import TypeVar

from gql_media.core.changed_videos import VideoIds
from gql_media.core.gc_hold import collections_paused, young_collections_spaced
from gql_media.core.models import (
    ChangeKind,
    EntryKind,
    LibraryChange,
    Root,
    Scope,
    SyncPhase,
    SyncPlan,
    VideoRun,
    run_videos,
)
from gql_media.core.ports import EventBus, JobCancelled, LibraryStore, RunningJob
from gql_media.core.scanner import KnownVideo, ScanCancelled, Scanner
from gql_media.core.sync.changes import JobChanges, change
from gql_media.core.sync.diff import Diff, Key, classify
from gql_media.core.sync.feed import FolderFeed, walk_order
from gql_media.core.sync.plan import IdBlock, Orphan, assign_ids
from gql_media.core.sync.stream import (
    StreamedScope,
    WalkBatches,
    compare_batch,
    hold_the_rest,
    index_is_empty,
    plan_first_batch,
)
from gql_media.core.sync.summary import topmost_subtrees
from gql_media.core.sync.survey import (
    ScopeRows,
    Survey,
    merge_round,
    next_scopes,
    protect_empty_roots,
    settle_unchanged,
    walk,
    walk_comparing,
)
from gql_media.core.sync.walk_process import ProcessWalkBatches, WalkProcess

logger = logging.getLogger(__name__)

__all__ = ["SyncEngine", "SyncOutcome"]

T = TypeVar("T")

# While changes are published, yield to the loop this often.
_PUBLISH_YIELD_EVERY = 250
# UPDATED changes held until the job's writes are done, at most (beyond, they are published as written).
_UPDATES_HELD = 10_000
_WALK_POLL_S = 0.1
_VIDEO_ID = itemgetter(0)  # of a NewVideo (a tuple)
_KIND = itemgetter(0)  # of a ScanEntry
# A streamed walk hands on a batch at this many entries (and unchanged videos) per write batch.
_WALK_BATCHES_PER_WRITE_BATCH = 10
# A first index's first walk batch: this part of the others (then twice the one before, up to them).
_FIRST_BATCH_PART = 8
# The read-ahead of a streamed scope's videos: folders per statement.
_FOLDERS_PER_READ = 500


@dataclass(slots=True)
class SyncOutcome:
    """Which videos a sync touched, for the media steps after it."""

    changed_video_ids: VideoIds = field(default_factory=VideoIds)  # bounded: past it only ``many``
    removed_video_ids: VideoIds = field(default_factory=VideoIds)
    # The absolute folders this sync walked whole (recursive scopes), and the folders under them
    # naming a playlist (``ScanResult.playlist_folders``): the merging step's candidates.
    walked_tops: list[str] = field(default_factory=list)
    playlist_folders: list[str] = field(default_factory=list)


class SyncEngine:
    """Syncs scopes of the library into the index and publishes one change per entry."""

    def __init__(
        self,
        store: LibraryStore,
        bus: EventBus,
        roots: Sequence[Root],
        *,
        ignore_paths: Iterable[str] = (),
        batch_size: int = 2000,
        summary_threshold: int = 2000,
        walk_process: bool = True,
        walk_ahead: WalkProcess | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.roots = {root.id: root for root in roots}
        self.ignore_paths = tuple(ignore_paths)
        self.batch_size = max(1, batch_size)
        # A streamed walk's batch (entries and unchanged videos), and how many rows its read-ahead holds.
        self.walk_batch = self.batch_size * _WALK_BATCHES_PER_WRITE_BATCH
        self.folders_per_read = _FOLDERS_PER_READ
        # More added, removed or moved entries than this in one job: one SUBTREE_CHANGED per changed
        # subtree instead of one change per entry (see ``summary``).
        self.summary_threshold = summary_threshold
        # A first index's walk runs in a process of its own (``walk_process``); False: in a thread. The
        # first one takes ``walk_ahead``, a process started ahead (its owner closes it if none does).
        self.walk_process = walk_process
        self._spare_walk = walk_ahead

    async def sync(self, scopes: Sequence[Scope], job: RunningJob, *, confirm_empty_roots: bool = False) -> SyncOutcome:
        """Bring the index in line with the disk under ``scopes``.

        A root found empty while its index is not (an unmounted drive leaves an empty mount point)
        is left alone and reported, unless ``confirm_empty_roots`` (a FULL sync) says it is meant.
        """
        with collections_paused():
            return await self._sync(scopes, job, confirm_empty_roots)

    async def _sync(self, scopes: Sequence[Scope], job: RunningJob, confirm_empty_roots: bool) -> SyncOutcome:
        await job.report(SyncPhase.SCANNING, 0, None)
        survey = Survey()
        outcome = SyncOutcome()
        changes = JobChanges(self.summary_threshold)
        streams, walks = await self._streams(scopes)
        # A first index: its new videos go in as they are walked, batch after batch, and the store
        # may build its indexes once after the last (``LibraryStore.begin_bulk_load``).
        add_now = bool(streams) and not walks and index_is_empty(streams) and not await self._top_videos(streams)
        if add_now:
            await self.store.begin_bulk_load()
        try:
            # (A first index keeps each file's objects from the walk to the write: ``young_collections_spaced``.)
            with young_collections_spaced() if add_now else contextlib.nullcontext():
                for streamed in streams:
                    await self._stream(streamed, survey, add_now, changes, outcome, job)
            reads = list(walks)
            while walks or reads:
                await self._survey_round(survey, walks, reads, job, outcome)
                walks, reads = await asyncio.to_thread(next_scopes, survey)
            if not confirm_empty_roots:
                await asyncio.to_thread(protect_empty_roots, survey, self.roots)
            for error in survey.errors:
                job.add_error(error.path, error.message)
            await job.report(SyncPhase.DIFFING, 0, None)
            job.check_cancelled()
            diff = await asyncio.to_thread(_settle_and_classify, survey)
            plan = await self._write(diff, changes, outcome, job, last=True)
            if add_now:
                await self.store.end_bulk_load()
        except JobCancelled:
            if add_now:
                await self.store.end_bulk_load()
            # What was committed before the cancel is announced all the same.
            await self._announce(changes, survey.kept_folders, job.job_id)
            raise
        except BaseException:
            # Another error (the store unavailable, a bug) or the task cancelled (a shutdown): the
            # indexes are made if they can be; if not, the bulk load's marker has the next start make them.
            if add_now:
                with contextlib.suppress(Exception):
                    await self.store.end_bulk_load()
            raise
        await self._announce(changes, diff.kept_folders, job.job_id)
        # The last references to the per-file objects go in a thread: freeing 100k+ of them is
        # not the event loop's work.
        await asyncio.to_thread(_forget, diff, plan)
        return outcome

    async def _streams(self, scopes: Sequence[Scope]) -> tuple[list[StreamedScope], list[Scope]]:
        """The scopes that stream (recursive, their folder indexed), with their indexed folders; and the others."""
        streams: list[StreamedScope] = []
        others: list[Scope] = []
        for scope in scopes:
            if scope.recursive and scope.root_id in self.roots:
                folders = {row[2]: row for row in await self.store.read_scope_folders(scope)}
                if scope.path in folders:
                    streams.append(StreamedScope(scope, folders))
                    continue
            others.append(scope)
        return streams, others

    async def _top_videos(self, streams: Sequence[StreamedScope]) -> bool:
        """Whether the streamed scopes' own folders hold indexed videos."""
        return bool(await self.store.read_folder_videos([s.folders[s.scope.path][0] for s in streams]))

    async def _stream(
        self,
        streamed: StreamedScope,
        survey: Survey,
        add_now: bool,
        changes: JobChanges,
        outcome: SyncOutcome,
        job: RunningJob,
    ) -> None:
        """Walk, compare and write one streamed scope a batch at a time (see ``stream``)."""
        scope = streamed.scope
        scanner = Scanner(self.roots[scope.root_id].path, self.ignore_paths)
        # A first index's walk in its own process compares nothing: no folder's videos are read for it.
        # (Read beside its writes, the scope folder's would hold the videos the job had just
        # written, and the walk, never taking them, would leave them to the diff as gone.)
        by_process = add_now and self.walk_process
        order = [] if by_process else walk_order(list(streamed.folders))
        room = asyncio.Event()
        loop = asyncio.get_running_loop()

        def room_made() -> None:  # called from the walk's thread
            loop.call_soon_threadsafe(room.set)

        folder_ids = [streamed.folders[path][0] for path in order]
        feed = FolderFeed(order, self.walk_batch, scanner.stopped, room_made, root_id=scope.root_id,
                          folder_ids=folder_ids)  # fmt: skip
        # A first index's writes wait for its first batch: a small one starts them sooner (the next ones grow).
        first_batch = max(self.summary_threshold + 1, self.walk_batch // _FIRST_BATCH_PART) if add_now else 0
        walker = self._walker(scanner, scope, feed, by_process, first_batch)
        reader = asyncio.ensure_future(self._read_ahead(feed, room, folder_ids))
        ids = IdBlock()
        # A first index writes a batch while it plans the next (``plan_first_batch``): at most one write
        # at a time, in order.
        writing: asyncio.Future[None] | None = None
        walker.start()
        try:
            async for batch in walker.batches():
                if job.is_cancelled():
                    scanner.cancel()
                outcome.playlist_folders.extend(batch.playlist_folders)
                batch.left = await self._with_ids(scope.root_id, batch.left)
                if not add_now:
                    diff = await asyncio.to_thread(
                        compare_batch, batch, scope.root_id, streamed.folders, survey, add_now
                    )
                    await self._write(diff, changes, outcome, job, last=False)
                else:
                    kinds = list(map(_KIND, batch.entries))
                    folders = kinds.count(EntryKind.FOLDER)
                    videos = len(kinds) - folders + batch.run_videos
                    if ids.lacks(folders, videos):
                        if writing is not None:
                            await writing  # (its transaction would hold the reservation up anyway)
                        await self._reserve(ids, folders, videos)
                    plan, orphans, places = await asyncio.to_thread(
                        plan_first_batch, batch, scope.root_id, streamed.folders, survey, ids
                    )
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(self._apply(plan, orphans, changes, outcome, job, places=places))
                await job.report(SyncPhase.SCANNING, scanner.seen, None)
            if writing is not None:
                await writing
            if add_now:
                await self.store.return_ids(ids.folder, ids.folder_end, ids.video, ids.video_end)
            assert walker.task is not None
            try:
                await walker.task
            except ScanCancelled as exc:
                if reader.done() and reader.exception() is not None:
                    reader.result()  # the read's own error
                raise JobCancelled from exc
            job.check_cancelled()
            await reader
            outcome.walked_tops.append(self._top_of(scope))
        finally:
            await walker.stop()
            if not reader.done():
                reader.cancel()
            await asyncio.wait([reader])
            if writing is not None:  # an error or a cancel before it was awaited: stopped, its error taken
                writing.cancel()
                await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()  # (the error being raised is the job's)
        await asyncio.to_thread(hold_the_rest, streamed, await self._with_ids(scope.root_id, feed.rest()), survey)

    def _walker(
        self, scanner: Scanner, scope: Scope, feed: FolderFeed, by_process: bool, first_batch: int
    ) -> WalkBatches:
        """A streamed scope's walk: a first index's in a process of its own (``walk_process``), others in a thread."""
        if by_process:
            spare, self._spare_walk = self._spare_walk, None
            return ProcessWalkBatches(scanner, scope, feed, self.walk_batch, ignore_paths=self.ignore_paths,
                                      first_batch=first_batch, spare=spare)  # fmt: skip
        return WalkBatches(scanner, scope, feed, self.walk_batch, first_batch=first_batch)

    async def _with_ids(self, root_id: int, rows: list[KnownVideo]) -> list[KnownVideo]:
        """The rows a streamed walk let go of (changed or gone), with their ids (``FolderVideos.rows``)."""
        if not rows:
            return rows
        ids = await self.store.read_video_ids(root_id, [row[2] for row in rows])
        return [(ids[path], root_id, path, size, mtime_ns, inode, device)
                for _id, _root, path, size, mtime_ns, inode, device in rows if path in ids]  # fmt: skip

    async def _reserve(self, ids: IdBlock, folders: int, videos: int) -> None:
        """Reserve ids for a first index's batches ahead: this batch's and the next ones', at least as many
        as were reserved before (a reservation waits for the batch being written: a few per job)."""
        ahead = 4 * self.walk_batch
        folders = max(2 * folders, ahead // 20, ids.folders_reserved)
        videos = max(2 * videos, ahead, ids.videos_reserved)
        first_folder, first_video = await self.store.reserve_ids(folders, videos)
        ids.add(first_folder, folders, first_video, videos)

    async def _read_ahead(self, feed: FolderFeed, room: asyncio.Event, folder_ids: list[int]) -> None:
        """Read the videos of ``folder_ids`` (in the walk's order) into ``feed``, staying within its window."""
        # The walk waits for the first read: a tenth of the others.
        start, step = 0, max(1, self.folders_per_read // 10)
        try:
            while start < len(folder_ids):
                room.clear()
                if not feed.has_room():
                    await room.wait()
                end = min(start + step, len(folder_ids))
                feed.put(end, await self.store.read_folder_stamps(folder_ids[start:end]))
                start, step = end, self.folders_per_read
        except BaseException:
            feed.fail()
            raise

    def _top_of(self, scope: Scope) -> str:
        """The absolute path of a scope's folder, as its scanner names it."""
        root = os.path.abspath(self.roots[scope.root_id].path)
        rel = os.fsdecode(scope.raw_path) if scope.raw_path is not None else scope.path
        return os.path.join(root, rel) if rel else root

    async def _survey_round(
        self, survey: Survey, walks: list[Scope], reads: list[Scope], job: RunningJob, outcome: SyncOutcome
    ) -> None:
        scanners = {root_id: Scanner(root.path, self.ignore_paths) for root_id, root in self.roots.items()}
        index_rows: list[ScopeRows] = []
        if walks == reads:
            # The first round reads the index first: the walk then compares each video with its row
            # and sets the unchanged ones aside as bare paths (no object per file, nothing to merge).
            for scope in reads:
                index_rows.append(await self.store.read_scope_rows(scope))
            walk_task = asyncio.ensure_future(asyncio.to_thread(walk_comparing, scanners, walks, index_rows))
        else:
            # The walk (a thread) and the index read (the driver's thread) overlap.
            walk_task = asyncio.ensure_future(asyncio.to_thread(walk, scanners, walks))
            try:
                for scope in reads:
                    index_rows.append(await self.store.read_scope_rows(scope))
            except BaseException:
                for scanner in scanners.values():
                    scanner.cancel()
                await asyncio.wait([walk_task])
                raise
        while not walk_task.done():
            if job.is_cancelled():
                for scanner in scanners.values():
                    scanner.cancel()
            await asyncio.wait([walk_task], timeout=_WALK_POLL_S)
            seen = sum(s.seen for s in scanners.values())
            await job.report(SyncPhase.SCANNING, seen, None)
        try:
            results = walk_task.result()
        except ScanCancelled as exc:
            raise JobCancelled from exc
        job.check_cancelled()
        for _root_id, result in results:
            outcome.playlist_folders.extend(result.playlist_folders)
        outcome.walked_tops.extend(self._top_of(s) for s in walks if s.recursive and s.root_id in self.roots)
        survey.note_round(walks, reads)
        await asyncio.to_thread(merge_round, survey, results, index_rows)

    async def _write(
        self, diff: Diff, changes: JobChanges, outcome: SyncOutcome, job: RunningJob, *, last: bool
    ) -> SyncPlan:
        """Write one plan: a streamed batch's, or (``last``) the job's diff, reported as the WRITING phase.

        Its changes are counted, and noted to be published once the job's writes are done.
        """
        first_folder_id = first_video_id = 0
        if diff.added_folders or diff.added_videos:  # a write transaction: not for a batch found unchanged
            first_folder_id, first_video_id = await self.store.reserve_ids(
                len(diff.added_folders), len(diff.added_videos)
            )
        plan, orphans = await asyncio.to_thread(assign_ids, diff, first_folder_id, first_video_id)
        await self._apply(plan, orphans, changes, outcome, job, last=last)
        for folder in plan.new_folders:  # the batches after this one plan against them
            diff.kept_folders[(folder.root_id, folder.entry.path)] = folder.id
        return plan

    async def _apply(
        self,
        plan: SyncPlan,
        orphans: Sequence[Orphan],
        changes: JobChanges,
        outcome: SyncOutcome,
        job: RunningJob,
        *,
        last: bool = False,
        places: set[Key] | None = None,
    ) -> None:
        """Write one plan (``places``: the folders its new entries go into, when known; see ``_write``)."""
        for orphan in orphans:
            job.add_error(orphan.key[1], orphan.reason)
        total = plan.size
        done = 0
        if last:
            await job.report(SyncPhase.WRITING, done, total)
        job.check_cancelled()
        await changes.count_plan(plan, places)
        if plan.removed or plan.moves or plan.new_folders:
            await self.store.apply_structure(plan)
            done += len(plan.removed) + len(plan.moves) + len(plan.new_folders)
            job.tally(removed=len(plan.removed), moved=len(plan.moves), added=len(plan.new_folders))
            outcome.removed_video_ids.extend(e.id for e in plan.removed if e.kind is EntryKind.VIDEO)
            changes.note_structure(plan, self.roots, job.job_id)
            if last:
                await job.report(SyncPhase.WRITING, done, total)
        # A summarised job publishes nothing per video: its new videos go in one bulk write (a streamed
        # batch's), its runs with them. Otherwise a run's videos are rows like the others, published each.
        summarised = changes.summarised
        if plan.video_runs and not summarised:
            for run in plan.video_runs:
                plan.new_videos.extend(run.new_videos())
            plan.video_runs = []
        if plan.video_runs:  # (summarised) the runs and the rows in one write
            done = await self._insert_runs(plan, job, outcome, done, total if last else None)
        batch_size = max(self.batch_size, len(plan.new_videos)) if summarised else self.batch_size
        for batch in [] if plan.video_runs else _batches(plan.new_videos, batch_size):
            job.check_cancelled()
            await self.store.insert_videos(batch, bulk=summarised)
            done += len(batch)
            job.tally(added=len(batch))
            outcome.changed_video_ids.extend(list(map(_VIDEO_ID, batch)))
            changes.note_videos(batch, self.roots, job.job_id)
            if last:
                await job.report(SyncPhase.WRITING, done, total, batch[-1].entry.path)
        for changed in _batches(plan.updates, self.batch_size):
            job.check_cancelled()
            await self.store.update_entries(changed)
            done += len(changed)
            job.tally(updated=len(changed))
            outcome.changed_video_ids.extend(u.id for u in changed if u.kind is EntryKind.VIDEO)
            for update in changed:
                changes.note_update(update, self.roots, job.job_id)
            if len(changes.updates) > _UPDATES_HELD:  # a change of every file: published as it goes
                await self._publish_all(changes.take_updates())
            if last:
                await job.report(SyncPhase.WRITING, done, total, changed[-1].entry.path)

    async def _insert_runs(
        self, plan: SyncPlan, job: RunningJob, outcome: SyncOutcome, done: int, total: int | None
    ) -> int:
        """A summarised plan's runs and rows, in one bulk write; how many entries are done after it
        (``total``: the job's, reported when this is its last write)."""
        job.check_cancelled()
        await self.store.insert_videos(plan.new_videos, bulk=True, runs=plan.video_runs)
        added = len(plan.new_videos) + run_videos(plan.video_runs)
        job.tally(added=added)
        outcome.changed_video_ids.extend(list(chain(map(_VIDEO_ID, plan.new_videos), *map(_run_ids, plan.video_runs))))
        if total is not None:
            await job.report(SyncPhase.WRITING, done + added, total)
        return done + added

    async def _announce(self, changes: JobChanges, kept_folders: Mapping[Key, int], job_id: int) -> None:
        """Publish what the job wrote: one change per entry, or one SUBTREE_CHANGED per changed subtree."""
        if not changes.summarised:
            await self._publish_all(changes.take())
        else:
            root_folders = {root_id: root.folder_id for root_id, root in self.roots.items()}
            subtrees = await asyncio.to_thread(topmost_subtrees, changes.take_places(), kept_folders, root_folders)
            await self._publish_all(
                [change(self.roots, ChangeKind.SUBTREE_CHANGED, EntryKind.FOLDER, folder_id, root_id, path, None,
                         job_id) for folder_id, root_id, path in subtrees]
            )  # fmt: skip
        await self._publish_all(changes.take_updates())

    async def _publish_all(self, changes: Sequence[LibraryChange]) -> None:
        for count, one in enumerate(changes, 1):
            await self.bus.publish_change(one)
            if count % _PUBLISH_YIELD_EVERY == 0:
                await asyncio.sleep(0)


def _forget(diff: Diff, plan: SyncPlan) -> None:
    for part in (diff.removed, diff.added_folders, diff.added_videos, diff.moves, diff.updates):
        part.clear()
    diff.kept_folders.clear()
    for entries in (plan.removed, plan.moves, plan.new_folders, plan.new_videos, plan.updates, plan.video_runs):
        entries.clear()


def _run_ids(run: VideoRun) -> range:
    return range(run.first_id, run.first_id + len(run.names))


def _settle_and_classify(survey: Survey) -> Diff:
    settle_unchanged(survey)
    diff = classify(survey.disk, survey.index, incomplete=survey.incomplete, kept_folders=survey.kept_folders)
    survey.disk.clear()  # freed here, in the thread, rather than on the loop
    survey.index.clear()
    return diff


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
