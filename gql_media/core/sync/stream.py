"""A streamed scope: a big recursive scope walked, compared and written a batch of folders at a time.

A scope streams when it is recursive and its folder is indexed. Its indexed folders are read
first (a few per thousand videos); its videos reach the walk a folder at a time (``feed``). Each
batch the walk hands on is compared here with what the index holds of the folders it listed:

- what is unchanged is dropped (the walk already dropped unchanged videos: nothing was built);
- an entry at the same place with the same identity whose stamps changed is an update, and a
  folder met is kept (its id noted): both are written with the batch;
- an entry new on disk is written with the batch when nothing indexed can be the other side of a
  move (the job's scopes held nothing but their own folders: a first index); otherwise it is
  held, with every indexed entry gone from its place (or replaced by another file), for
  ``diff.classify`` over the whole job, which matches moves across every scope.

So memory follows the size of a batch and of the change, not of the library. What is held goes
into the job's ``Survey`` (``disk`` and ``rows``), as a survey round would have put it.

A first index (nothing indexed but the scopes' own folders) skips the comparison: each batch is
planned at once (``plan_first_batch``), ids from a block reserved ahead, so that the engine plans
a batch while the one before is being written.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from gql_media.core.models import EntryKind, IndexedEntry, IndexRow, Scope, SyncPlan, Update
from gql_media.core.scanner import Scanner, ScanResult
from gql_media.core.sync.diff import Diff, Key
from gql_media.core.sync.feed import FolderFeed
from gql_media.core.sync.plan import IdBlock, Orphan, plan_new_entries
from gql_media.core.sync.survey import Survey

__all__ = ["StreamedScope", "WalkBatches", "compare_batch", "hold_the_rest", "plan_first_batch"]

_EMIT_WAIT_S = 0.05


@dataclass(slots=True)
class StreamedScope:
    """A scope that streams, and its indexed folders by path (those not met yet by its walk)."""

    scope: Scope
    folders: dict[str, IndexRow]


def compare_batch(batch: ScanResult, root_id: int, folders: dict[str, IndexRow], survey: Survey, add_now: bool) -> Diff:
    """What to write with one batch of a streamed walk; what must wait for the whole job goes into ``survey``.

    ``folders``: the scope's indexed folders not met yet (those met are taken out). ``add_now``:
    new entries are additions (nothing indexed can be the other side of a move). The diff's
    ``kept_folders`` is ``survey.kept_folders`` itself, with the folders met added.
    """
    kept, held, rows = survey.kept_folders, survey.disk, survey.rows
    diff = Diff(kept_folders=kept)
    left = {row[2]: row for row in batch.left}
    folder, video = EntryKind.FOLDER, EntryKind.VIDEO
    found = batch.unchanged
    for entry in batch.entries_with_runs():
        path = entry.path
        key = (root_id, path)
        if path:
            found += 1
        if entry.kind is folder:
            row = folders.pop(path, None)
            if row is not None:
                kept[key] = row[0]
                if entry.mtime_ns != row[4] or entry.inode != row[5]:
                    diff.updates.append((IndexedEntry(folder, *row), entry))
                continue
        else:
            row = left.pop(path, None)
            if row is not None:
                if entry.inode and row[5] and (entry.inode, entry.device) != (row[5], row[6]):
                    held[key] = entry  # another file under the name: a move's side, or an update
                    rows[key] = (video, row)
                elif entry.size != row[3] or entry.mtime_ns != row[4]:
                    diff.updates.append((IndexedEntry(video, *row), entry))
                continue
        if add_now:
            (diff.added_folders if entry.kind is folder else diff.added_videos).append((key, entry))
        else:
            held[key] = entry
    for path, row in left.items():
        rows[(root_id, path)] = (video, row)  # gone from its place (a move's side, or removed)
    survey.found[root_id] = survey.found.get(root_id, 0) + found
    survey.incomplete.update((root_id, path) for path in batch.incomplete)
    survey.errors.extend(batch.errors)
    return diff


def plan_first_batch(
    batch: ScanResult, root_id: int, folders: dict[str, IndexRow], survey: Survey, ids: IdBlock
) -> tuple[SyncPlan, list[Orphan], set[Key]]:
    """``compare_batch`` and ``plan.assign_ids`` at once, for a batch of a first index (nothing indexed
    but the scope's own folders, in ``folders``): every other entry is new. Returns the plan, its
    orphans and the folders its new entries go into (see ``plan_new_entries``; ids from ``ids``)."""
    entries = batch.entries
    kept = survey.kept_folders
    updates: list[Update] = []
    folder = EntryKind.FOLDER
    found = batch.unchanged + len(entries) + batch.run_videos
    met = [n for n, entry in enumerate(entries) if entry[0] is folder and entry[1] in folders] if folders else []
    for n in met:  # the scope's own folder, at the start of its first batch
        entry = entries[n]
        row = folders.pop(entry.path)
        kept[(root_id, entry.path)] = row[0]
        if entry.mtime_ns != row[4] or entry.inode != row[5]:
            updates.append(Update(folder, row[0], root_id, entry))
        if not entry.path:
            found -= 1  # the root's own folder is not one of its entries
    if met:
        skip = set(met)
        entries = [entry for n, entry in enumerate(entries) if n not in skip]
    plan, orphans, places = plan_new_entries(entries, root_id, kept, ids, batch.runs)
    plan.updates = updates
    survey.rows.update(((root_id, row[2]), (EntryKind.VIDEO, row)) for row in batch.left)  # none: nothing was indexed
    survey.found[root_id] = survey.found.get(root_id, 0) + found
    survey.incomplete.update((root_id, path) for path in batch.incomplete)
    survey.errors.extend(batch.errors)
    return plan, orphans, places


def hold_the_rest(streamed: StreamedScope, rest: list[IndexRow], survey: Survey) -> None:
    """After the walk: indexed folders it never met and the videos never taken are held, gone from their place."""
    root_id = streamed.scope.root_id
    survey.rows.update(((root_id, path), (EntryKind.FOLDER, row)) for path, row in streamed.folders.items())
    survey.rows.update(((root_id, row[2]), (EntryKind.VIDEO, row)) for row in rest)
    streamed.folders.clear()
    survey.note_round([streamed.scope], [streamed.scope])


class WalkBatches:
    """A streamed walk in its thread, its batches handed to the event loop (at most ``ahead`` waiting)."""

    def __init__(
        self, scanner: Scanner, scope: Scope, feed: FolderFeed, batch_entries: int, ahead: int = 2, first_batch: int = 0
    ) -> None:
        self.scanner = scanner
        self.scope = scope
        self.feed = feed
        self.batch_entries = batch_entries
        self.first_batch = first_batch  # (0: as big as the others; see ``Scanner.walk``)
        self._room = threading.Semaphore(ahead)
        self._batches: asyncio.Queue[ScanResult | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._stopped = threading.Event()
        self.task: asyncio.Future[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(asyncio.to_thread(self._walk))

    async def batches(self) -> AsyncIterator[ScanResult]:
        while (batch := await self._batches.get()) is not None:
            self._room.release()
            yield batch

    async def stop(self) -> None:
        """Stop the walk (an error or a cancel) and wait for its thread."""
        self._stopped.set()
        self.scanner.cancel()
        if self.task is not None:
            await asyncio.wait([self.task])

    def _walk(self) -> None:
        result = ScanResult()
        try:
            scope = self.scope
            self.scanner.walk(scope.path, True, result, scope.raw_path, by_folder=self.feed, emit=self._emit,
                              batch_entries=self.batch_entries, first_batch_entries=self.first_batch)  # fmt: skip
            self._emit(result)
        finally:
            self.feed.walk_done()
            self._loop.call_soon_threadsafe(self._batches.put_nowait, None)

    def _emit(self, batch: ScanResult) -> None:
        while not self._room.acquire(timeout=_EMIT_WAIT_S):
            if self._stopped.is_set():
                return
        self._loop.call_soon_threadsafe(self._batches.put_nowait, batch)


def index_is_empty(streams: Sequence[StreamedScope]) -> bool:
    """Whether the streamed scopes hold no indexed folder but their own (their videos are read apart)."""
    return all(len(s.folders) == 1 for s in streams)
