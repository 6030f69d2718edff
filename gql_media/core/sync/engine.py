"""The sync engine: survey rounds until nothing widens, then diff, plan ids, and the write pipeline.

The engine reads only what the scopes cover and widens them where the survey says it must
(``survey.next_scopes``). What counts as a move is ``diff.classify``'s; the ids come from
``plan.assign_ids``. Writes go through the store in batches, pipelined with the publishing of
one change per entry on the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Generic, TypeVar

from gql_media.core.gc_hold import collections_paused
from gql_media.core.models import ChangeKind, EntryKind, LibraryChange, NewVideo, Root, Scope, SyncPhase, SyncPlan
from gql_media.core.ports import EventBus, JobCancelled, LibraryStore, RunningJob
from gql_media.core.scanner import ScanCancelled, Scanner
from gql_media.core.sync.diff import Diff, classify
from gql_media.core.sync.plan import assign_ids
from gql_media.core.sync.summary import changed_subtrees, plan_changes
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

logger = logging.getLogger(__name__)

__all__ = ["SyncEngine", "SyncOutcome"]

T = TypeVar("T")

# While new videos are published, yield to the loop this often (the next batch's write runs meanwhile).
_PUBLISH_YIELD_EVERY = 250
_WALK_POLL_S = 0.1
_VIDEO_ID = itemgetter(0)  # of a NewVideo (a tuple)


@dataclass(slots=True)
class SyncOutcome:
    """Which videos a sync touched, for the media steps after it."""

    changed_video_ids: list[int] = field(default_factory=list)
    removed_video_ids: list[int] = field(default_factory=list)


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
    ) -> None:
        self.store = store
        self.bus = bus
        self.roots = {root.id: root for root in roots}
        self.ignore_paths = tuple(ignore_paths)
        self.batch_size = max(1, batch_size)
        # More added, removed or moved entries than this in one job: one SUBTREE_CHANGED per changed
        # subtree instead of one change per entry (see ``summary``).
        self.summary_threshold = summary_threshold

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
        walks = list(scopes)
        reads = list(walks)
        while walks or reads:
            await self._survey_round(survey, walks, reads, job)
            walks, reads = await asyncio.to_thread(next_scopes, survey)
        if not confirm_empty_roots:
            await asyncio.to_thread(protect_empty_roots, survey, self.roots)
        for error in survey.errors:
            job.add_error(error.path, error.message)
        await job.report(SyncPhase.DIFFING, 0, None)
        job.check_cancelled()
        diff = await asyncio.to_thread(_settle_and_classify, survey)
        outcome, plan = await self._write(diff, job)
        # The last references to the per-file objects go in a thread: freeing 100k+ of them is
        # not the event loop's work.
        await asyncio.to_thread(_forget, diff, plan)
        return outcome

    async def _survey_round(self, survey: Survey, walks: list[Scope], reads: list[Scope], job: RunningJob) -> None:
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
        survey.note_round(walks, reads)
        await asyncio.to_thread(merge_round, survey, results, index_rows)

    async def _write(self, diff: Diff, job: RunningJob) -> tuple[SyncOutcome, SyncPlan]:
        first_folder_id, first_video_id = await self.store.reserve_ids(len(diff.added_folders), len(diff.added_videos))
        plan, orphans = await asyncio.to_thread(assign_ids, diff, first_folder_id, first_video_id)
        for orphan in orphans:
            job.add_error(orphan.key[1], orphan.reason)
        total = plan.size
        done = 0
        await job.report(SyncPhase.WRITING, done, total)
        job.check_cancelled()
        outcome = SyncOutcome()
        summarised = plan_changes(plan) > self.summary_threshold
        if plan.removed or plan.moves or plan.new_folders:
            await self.store.apply_structure(plan)
            done += len(plan.removed) + len(plan.moves) + len(plan.new_folders)
            job.tally(removed=len(plan.removed), moved=len(plan.moves), added=len(plan.new_folders))
            outcome.removed_video_ids.extend(e.id for e in plan.removed if e.kind is EntryKind.VIDEO)
            if not summarised:
                await self._publish_structure(plan, job.job_id)
            await job.report(SyncPhase.WRITING, done, total)
        # Batches are pipelined: while the driver writes batch k+1, the changes of batch k (committed)
        # are published. Every committed batch is published, in order, before a cancel takes effect.
        pending = _PendingWrite[NewVideo]()
        # A summarised job publishes nothing per video: all its new videos go in one bulk write.
        batch_size = max(self.batch_size, len(plan.new_videos)) if summarised else self.batch_size
        try:
            for batch in _batches(plan.new_videos, batch_size):
                if not job.is_cancelled():
                    pending.start(batch, self.store.insert_videos(batch, bulk=summarised))
                done = await self._publish_videos(pending.take_committed(), job, done, total, summarised)
                job.check_cancelled()
                committed = await pending.finish()
                job.tally(added=len(committed))
                outcome.changed_video_ids.extend(map(_VIDEO_ID, committed))
                pending.committed = committed
            done = await self._publish_videos(pending.take_committed(), job, done, total, summarised)
        except JobCancelled:
            if summarised:  # what was committed before the cancel is announced all the same
                await self._publish_subtrees(plan, diff, job.job_id)
            raise
        finally:
            await pending.abandon()
        if summarised:
            await self._publish_subtrees(plan, diff, job.job_id)
        for changed in _batches(plan.updates, self.batch_size):
            job.check_cancelled()
            await self.store.update_entries(changed)
            done += len(changed)
            job.tally(updated=len(changed))
            outcome.changed_video_ids.extend(u.id for u in changed if u.kind is EntryKind.VIDEO)
            for update in changed:
                await self._publish(ChangeKind.UPDATED, update.kind, update.id, update.root_id, update.entry.path,
                                    None, job.job_id)  # fmt: skip
            await job.report(SyncPhase.WRITING, done, total, changed[-1].entry.path)
        return outcome, plan

    async def _publish_videos(
        self, batch: Sequence[NewVideo], job: RunningJob, done: int, total: int, summarised: bool
    ) -> int:
        """Publish one committed batch of new videos, yielding now and then so the next batch's write runs."""
        if not batch:
            return done
        if summarised:
            done += len(batch)
            await job.report(SyncPhase.WRITING, done, total, batch[-1].entry.path)
            return done
        publish, job_id = self.bus.publish_change, job.job_id
        root_paths = {root_id: root.path for root_id, root in self.roots.items()}
        for count, video in enumerate(batch, 1):
            await publish(
                LibraryChange(ChangeKind.ADDED, EntryKind.VIDEO, video.id, video.root_id,
                              root_paths.get(video.root_id), video.entry.path, None, job_id)
            )  # fmt: skip
            if count % _PUBLISH_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        done += len(batch)
        await job.report(SyncPhase.WRITING, done, total, batch[-1].entry.path)
        return done

    async def _publish_subtrees(self, plan: SyncPlan, diff: Diff, job_id: int) -> None:
        """One SUBTREE_CHANGED per changed folder subtree of a big plan."""
        root_folders = {root_id: root.folder_id for root_id, root in self.roots.items()}
        subtrees = await asyncio.to_thread(changed_subtrees, plan, diff.kept_folders, root_folders)
        for folder_id, root_id, path in subtrees:
            await self._publish(ChangeKind.SUBTREE_CHANGED, EntryKind.FOLDER, folder_id, root_id, path, None, job_id)

    async def _publish_structure(self, plan: SyncPlan, job_id: int) -> None:
        for entry in plan.removed:
            await self._publish(ChangeKind.REMOVED, entry.kind, entry.id, entry.root_id, entry.path, None, job_id)
        for move in plan.moves:
            await self._publish(ChangeKind.MOVED, move.kind, move.id, move.root_id, move.entry.path, move.old_path,
                                job_id)  # fmt: skip
        for folder in plan.new_folders:
            await self._publish(ChangeKind.ADDED, EntryKind.FOLDER, folder.id, folder.root_id, folder.entry.path,
                                None, job_id)  # fmt: skip

    async def _publish(
        self,
        kind: ChangeKind,
        entry_kind: EntryKind,
        entry_id: int,
        root_id: int,
        path: str,
        old_path: str | None,
        job_id: int,
    ) -> None:
        root = self.roots.get(root_id)
        await self.bus.publish_change(
            LibraryChange(
                kind=kind,
                entry_kind=entry_kind,
                id=entry_id,
                root_id=root_id,
                root_path=root.path if root else None,
                path=path,
                old_path=old_path,
                job_id=job_id,
            )
        )


def _forget(diff: Diff, plan: SyncPlan) -> None:
    for part in (diff.removed, diff.added_folders, diff.added_videos, diff.moves, diff.updates):
        part.clear()
    diff.kept_folders.clear()
    for entries in (plan.removed, plan.moves, plan.new_folders, plan.new_videos, plan.updates):
        entries.clear()


def _settle_and_classify(survey: Survey) -> Diff:
    settle_unchanged(survey)
    diff = classify(survey.disk, survey.index, incomplete=survey.incomplete, kept_folders=survey.kept_folders)
    survey.disk.clear()  # freed here, in the thread, rather than on the loop
    survey.index.clear()
    return diff


class _PendingWrite(Generic[T]):
    """At most one batch being written while the previous one is published."""

    def __init__(self) -> None:
        self.task: asyncio.Future[None] | None = None
        self.batch: Sequence[T] = ()
        self.committed: Sequence[T] = ()

    def start(self, batch: Sequence[T], write: Awaitable[None]) -> None:
        self.batch = batch
        self.task = asyncio.ensure_future(write)

    def take_committed(self) -> Sequence[T]:
        committed, self.committed = self.committed, ()
        return committed

    async def finish(self) -> Sequence[T]:
        task, self.task = self.task, None
        if task is None:
            return ()
        await task
        return self.batch

    async def abandon(self) -> None:
        """After an error: let a write in flight end (its own transaction commits or rolls back)."""
        task, self.task = self.task, None
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the error that stopped the sync is the one raised


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
