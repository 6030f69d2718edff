"""Two-way sync of parts of the library: compare disk and index under some scopes, write the difference.

The engine reads only what the scopes cover. A shallow scope widens by itself where it must: a
folder that appears on disk is walked whole (that is how trees moved in are caught), and a folder
that vanished from disk has its whole indexed subtree read (so its descendants are removed, or
found again under their new path). Entries keep their ids when they move: same device+inode (and,
for files, same size and mtime), or, where inodes are unreliable, a unique size+mtime match.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

from gql_media.core.models import (
    ChangeKind,
    EntryKind,
    IndexedEntry,
    LibraryChange,
    Move,
    NewFolder,
    NewVideo,
    Root,
    ScanEntry,
    Scope,
    SyncErrorInfo,
    SyncPhase,
    SyncPlan,
    Update,
    parent_of,
)
from gql_media.core.ports import EventBus, JobCancelled, LibraryStore
from gql_media.core.scanner import ScanCancelled, Scanner, ScanResult

logger = logging.getLogger(__name__)

Key = tuple[int, str]
T = TypeVar("T")
# An index row as plain values: (id, root_id, path, size, mtime_ns, inode, device); size is 0 for folders.
IndexRow = tuple[int, int, str, int, int, int, int]


@runtime_checkable
class ScopeRowReader(Protocol):
    """A store that can also hand over a scope's index rows as plain tuples (folders, videos).

    Optional: the engine uses it when the store has it, because building an object per indexed
    entry is most of the cost of an unchanged resync; otherwise it reads ``read_scope``.
    """

    async def read_scope_rows(self, scope: Scope) -> tuple[list[IndexRow], list[IndexRow]]: ...


class SyncReporter(Protocol):
    """The running job as the engine sees it."""

    job_id: int
    added: int
    updated: int
    removed: int
    moved: int

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None: ...

    def add_error(self, path: str, message: str) -> None: ...

    def check_cancelled(self) -> None: ...

    def is_cancelled(self) -> bool: ...


@dataclass(slots=True)
class SyncOutcome:
    """Which videos a sync touched, for the media steps after it."""

    changed_video_ids: list[int] = field(default_factory=list)
    removed_video_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Survey:
    """Disk and index under the scopes, and how far each side has been read."""

    disk: dict[Key, ScanEntry] = field(default_factory=dict)
    # What _diff compares. The engine fills it only with index entries that are not unchanged
    # (see _settle_unchanged); the unchanged folders' ids go to kept_folders.
    index: dict[Key, IndexedEntry] = field(default_factory=dict)
    rows: dict[Key, tuple[EntryKind, IndexRow]] = field(default_factory=dict)
    kept_folders: dict[Key, int] = field(default_factory=dict)
    incomplete: set[Key] = field(default_factory=set)
    walked_deep: set[Key] = field(default_factory=set)
    walked_shallow: set[Key] = field(default_factory=set)
    read_deep: set[Key] = field(default_factory=set)
    read_shallow: set[Key] = field(default_factory=set)
    errors: list[SyncErrorInfo] = field(default_factory=list)
    # Videos the walk found as the index has them (no ScanEntry, no row kept), per root.
    unchanged_videos: dict[int, int] = field(default_factory=dict)


def _empty_folder(path: str) -> bool:
    """Nothing at all in the folder: what an unmounted drive's mount point looks like."""
    try:
        with os.scandir(path) as listing:
            return next(listing, None) is None
    except OSError:
        return False


def _covered(key: Key, deep: set[Key], shallow: set[Key]) -> bool:
    """Whether the contents of folder ``key`` were listed (itself shallow, or itself/an ancestor deep)."""
    if key in shallow or key in deep:
        return True
    root_id, path = key
    while path:
        path = parent_of(path)
        if (root_id, path) in deep:
            return True
    return False


def _protected(key: Key, incomplete: set[Key]) -> bool:
    """Index entries at or under a path that could not be read are kept as they are."""
    if not incomplete:
        return False
    root_id, path = key
    while True:
        if (root_id, path) in incomplete:
            return True
        if not path:
            return False
        path = parent_of(path)


_frozen_holds = 0


@contextmanager
def old_objects_left_alone() -> Iterator[None]:
    """While a sync or a media step runs, the cyclic GC skips the objects that existed before it.

    A full collection walks every tracked object with the GIL held: with the server's own objects
    (modules, schema) and a sync's rows that stalled the event loop 80-110 ms (P9's max lag).
    ``gc.freeze()`` moves the existing objects out of the collector's reach and ``gc.unfreeze()``
    gives them back (both O(1)); nested and overlapping holds share one freeze.
    """
    global _frozen_holds
    if _frozen_holds == 0:
        gc.freeze()
    _frozen_holds += 1
    try:
        yield
    finally:
        _frozen_holds -= 1
        if _frozen_holds == 0:
            gc.unfreeze()


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
    ) -> None:
        self.store = store
        self.bus = bus
        self.roots = {root.id: root for root in roots}
        self.ignore_paths = tuple(ignore_paths)
        self.batch_size = max(1, batch_size)

    async def sync(
        self, scopes: Sequence[Scope], reporter: SyncReporter, *, confirm_empty_roots: bool = False
    ) -> SyncOutcome:
        """Bring the index in line with the disk under ``scopes``.

        A root found empty while its index is not (an unmounted drive leaves an empty mount point)
        is left alone and reported, unless ``confirm_empty_roots`` (a FULL sync) says it is meant.
        """
        with old_objects_left_alone():
            return await self._sync(scopes, reporter, confirm_empty_roots=confirm_empty_roots)

    async def _sync(self, scopes: Sequence[Scope], reporter: SyncReporter, *, confirm_empty_roots: bool) -> SyncOutcome:
        await reporter.report(SyncPhase.SCANNING, 0, None)
        survey = _Survey()
        walks = list(scopes)
        reads = list(walks)
        while walks or reads:
            await self._survey_round(survey, walks, reads, reporter)
            walks, reads = await asyncio.to_thread(_escalations, survey)
        if not confirm_empty_roots:
            await asyncio.to_thread(self._guard_empty_roots, survey)
        for error in survey.errors:
            reporter.add_error(error.path, error.message)
        await reporter.report(SyncPhase.DIFFING, 0, None)
        reporter.check_cancelled()
        plan = await asyncio.to_thread(_settle_and_diff, survey)
        return await self._write(plan, reporter)

    def _guard_empty_roots(self, survey: _Survey) -> None:
        """Blocking (a listing of suspicious roots): run in a thread."""
        for root_id, root in self.roots.items():
            if (root_id, "") not in survey.walked_deep and (root_id, "") not in survey.walked_shallow:
                continue
            if (root_id, "") not in survey.disk or survey.unchanged_videos.get(root_id):
                continue
            if any(k[0] == root_id and k[1] for k in survey.disk) or not _empty_folder(root.path):
                continue
            indexed = sum(1 for k in survey.rows if k[0] == root_id and k[1]) + sum(
                1 for k in survey.index if k[0] == root_id and k[1]
            )
            if indexed:
                survey.incomplete.add((root_id, ""))
                survey.errors.append(
                    SyncErrorInfo(
                        root.path,
                        f"library root is empty but {indexed} entries are indexed (an unmounted drive?);"
                        " nothing was removed: run a FULL sync to remove them",
                    )
                )

    async def _read_rows(self, scope: Scope) -> tuple[list[IndexRow], list[IndexRow]]:
        store = self.store
        if isinstance(store, ScopeRowReader):
            return await store.read_scope_rows(scope)
        entries = await store.read_scope(scope)
        rows: tuple[list[IndexRow], list[IndexRow]] = ([], [])
        for e in entries:
            rows[e.kind is EntryKind.VIDEO].append((e.id, e.root_id, e.path, e.size, e.mtime_ns, e.inode, e.device))
        return rows

    async def _survey_round(
        self, survey: _Survey, walks: list[Scope], reads: list[Scope], reporter: SyncReporter
    ) -> None:
        scanners = {root_id: Scanner(root.path, self.ignore_paths) for root_id, root in self.roots.items()}
        index_rows: list[tuple[list[IndexRow], list[IndexRow]]] = []
        if walks == reads:
            # The first round reads the index first: the walk then compares each video with its row
            # and sets the unchanged ones aside as bare paths (no object per file, nothing to merge).
            for scope in reads:
                index_rows.append(await self._read_rows(scope))
            walk_task = asyncio.ensure_future(asyncio.to_thread(_walk_comparing, scanners, walks, index_rows))
        else:
            # The walk (a thread) and the index read (the driver's thread) overlap.
            walk_task = asyncio.ensure_future(asyncio.to_thread(_walk_all, scanners, walks))
            try:
                for scope in reads:
                    index_rows.append(await self._read_rows(scope))
            except BaseException:
                for scanner in scanners.values():
                    scanner.cancel()
                await asyncio.wait([walk_task])
                raise
        while not walk_task.done():
            if reporter.is_cancelled():
                for scanner in scanners.values():
                    scanner.cancel()
            await asyncio.wait([walk_task], timeout=0.1)
            seen = sum(s.seen for s in scanners.values())
            await reporter.report(SyncPhase.SCANNING, seen, None)
        try:
            results = walk_task.result()
        except ScanCancelled as exc:
            raise JobCancelled from exc
        reporter.check_cancelled()
        for scope in walks:
            target = survey.walked_deep if scope.recursive else survey.walked_shallow
            target.add((scope.root_id, scope.path))
        for scope in reads:
            target = survey.read_deep if scope.recursive else survey.read_shallow
            target.add((scope.root_id, scope.path))
        await asyncio.to_thread(_merge_round, survey, results, index_rows)

    async def _write(self, diff: _Diff, reporter: SyncReporter) -> SyncOutcome:
        first_folder, first_video = await self.store.reserve_ids(len(diff.added_folders), len(diff.added_videos))
        plan = await asyncio.to_thread(_plan, diff, first_folder, first_video)
        for key, message in plan.orphans:
            reporter.add_error(key[1], message)
        total = plan.plan.size
        done = 0
        await reporter.report(SyncPhase.WRITING, done, total)
        reporter.check_cancelled()
        outcome = SyncOutcome()
        structure = plan.plan
        if structure.removed or structure.moves or structure.new_folders:
            await self.store.apply_structure(structure)
            done += len(structure.removed) + len(structure.moves) + len(structure.new_folders)
            reporter.removed += len(structure.removed)
            reporter.moved += len(structure.moves)
            reporter.added += len(structure.new_folders)
            outcome.removed_video_ids.extend(e.id for e in structure.removed if e.kind is EntryKind.VIDEO)
            await self._publish_structure(structure, reporter.job_id)
            await reporter.report(SyncPhase.WRITING, done, total)
        # Batches are pipelined: while the driver writes batch k+1, the changes of batch k (committed)
        # are published. Every committed batch is published, in order, before a cancel takes effect.
        pending = _Pending[NewVideo]()
        try:
            for batch in _batches(structure.new_videos, self.batch_size):
                if not reporter.is_cancelled():
                    pending.start(batch, self.store.insert_videos(batch))
                done = await self._publish_videos(pending.take_committed(), reporter, done, total)
                reporter.check_cancelled()
                committed = await pending.finish()
                reporter.added += len(committed)
                outcome.changed_video_ids.extend(v.id for v in committed)
                pending.committed = committed
            done = await self._publish_videos(pending.take_committed(), reporter, done, total)
        finally:
            await pending.abandon()
        for changed in _batches(structure.updates, self.batch_size):
            reporter.check_cancelled()
            await self.store.update_entries(changed)
            done += len(changed)
            reporter.updated += len(changed)
            outcome.changed_video_ids.extend(u.id for u in changed if u.kind is EntryKind.VIDEO)
            for update in changed:
                await self._publish(ChangeKind.UPDATED, update.kind, update.id, update.root_id, update.entry.path,
                                    None, reporter.job_id)  # fmt: skip
            await reporter.report(SyncPhase.WRITING, done, total, changed[-1].entry.path)
        return outcome

    async def _publish_videos(self, batch: Sequence[NewVideo], reporter: SyncReporter, done: int, total: int) -> int:
        """Publish one committed batch of new videos, yielding now and then so the next batch's write runs."""
        if not batch:
            return done
        publish, job_id = self.bus.publish_change, reporter.job_id
        root_paths = {root_id: root.path for root_id, root in self.roots.items()}
        for count, video in enumerate(batch, 1):
            await publish(
                LibraryChange(ChangeKind.ADDED, EntryKind.VIDEO, video.id, video.root_id,
                              root_paths.get(video.root_id), video.entry.path, None, job_id)
            )  # fmt: skip
            if count % _PUBLISH_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        done += len(batch)
        await reporter.report(SyncPhase.WRITING, done, total, batch[-1].entry.path)
        return done

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


_PUBLISH_YIELD_EVERY = 250


class _Pending(Generic[T]):
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


def _escalations(survey: _Survey) -> tuple[list[Scope], list[Scope]]:
    """Scopes to walk or read next: folders new on disk not yet walked, folders gone from disk not yet read."""
    walks: list[Scope] = []
    reads: list[Scope] = []
    rows = survey.rows
    folder = EntryKind.FOLDER
    for key, entry in survey.disk.items():
        if entry.kind is not folder:
            continue
        indexed = rows.get(key)
        if indexed is not None and indexed[0] is folder:
            continue
        if not _covered(key, survey.walked_deep, survey.walked_shallow):
            walks.append(Scope(key[0], key[1], True, entry.raw_path))
    # A scope whose folder is new on disk needs its parent's id: sync the parent shallowly too.
    parents: dict[Key, bytes | None] = {}
    for key in survey.walked_deep | survey.walked_shallow:
        top = survey.disk.get(key)
        if key[1] and top is not None and top.kind is folder and key not in rows:
            parent = (key[0], parent_of(key[1]))
            parents[parent] = top.raw_path.rpartition(b"/")[0] if top.raw_path is not None and parent[1] else None
    for parent, raw in parents.items():
        if not _covered(parent, survey.walked_deep, survey.walked_shallow):
            walks.append(Scope(parent[0], parent[1], False, raw))
        if not _covered(parent, survey.read_deep, survey.read_shallow):
            reads.append(Scope(parent[0], parent[1], False))
    for key, (kind, _row) in rows.items():
        if kind is not folder:
            continue
        on_disk = survey.disk.get(key)
        if on_disk is not None and on_disk.kind is folder:
            continue
        if _protected(key, survey.incomplete):
            continue
        if not _covered(key, survey.read_deep, survey.read_shallow):
            reads.append(Scope(key[0], key[1], True))
    return walks, reads


def _merge_round(
    survey: _Survey,
    results: list[tuple[int, ScanResult]],
    index_rows: list[tuple[list[IndexRow], list[IndexRow]]],
) -> None:
    """Add one round's walks and reads to the survey (blocking; run in a thread)."""
    disk = survey.disk
    for root_id, result in results:
        disk.update(((root_id, entry.path), entry) for entry in result.entries)
        survey.incomplete.update((root_id, path) for path in result.incomplete)
        survey.errors.extend(result.errors)
        if result.unchanged:
            survey.unchanged_videos[root_id] = survey.unchanged_videos.get(root_id, 0) + result.unchanged
    rows = survey.rows
    for folders, videos in index_rows:
        for kind, part in ((EntryKind.FOLDER, folders), (EntryKind.VIDEO, videos)):
            rows.update(((r[1], r[2]), (kind, r)) for r in part)


def _settle_and_diff(survey: _Survey) -> _Diff:
    _settle_unchanged(survey)
    return _diff(survey)


def _settle_unchanged(survey: _Survey) -> None:
    """Set aside what is the same on disk and in the index; the rest goes to ``survey.index`` for _diff.

    An unchanged entry (same kind, same stamps, same identity where both know it) is neither new
    nor gone, so _diff would only note a kept folder's id: dropping it here changes nothing else,
    and spares building an IndexedEntry for each of them.
    """
    disk, index, kept = survey.disk, survey.index, survey.kept_folders
    folder = EntryKind.FOLDER
    for key, (kind, r) in survey.rows.items():
        entry = disk.get(key)
        if entry is not None and entry.kind is kind:
            if kind is folder:
                if entry.mtime_ns == r[4] and entry.inode == r[5]:
                    kept[key] = r[0]
                    del disk[key]
                    continue
            elif (
                entry.size == r[3]
                and entry.mtime_ns == r[4]
                and (not entry.inode or not r[5] or (entry.inode == r[5] and entry.device == r[6]))
            ):
                del disk[key]
                continue
        index[key] = IndexedEntry(kind, *r)
    survey.rows = {}


def _walk_all(
    scanners: dict[int, Scanner], walks: list[Scope], known: dict[int, dict[str, IndexRow]] | None = None
) -> list[tuple[int, ScanResult]]:
    results: list[tuple[int, ScanResult]] = []
    for scope in walks:
        scanner = scanners.get(scope.root_id)
        if scanner is None:
            continue
        result = ScanResult()
        scanner.walk(
            scope.path, scope.recursive, result, scope.raw_path, None if known is None else known.get(scope.root_id)
        )
        results.append((scope.root_id, result))
    return results


def _walk_comparing(
    scanners: dict[int, Scanner], walks: list[Scope], index_rows: list[tuple[list[IndexRow], list[IndexRow]]]
) -> list[tuple[int, ScanResult]]:
    """Walk with the index at hand (blocking; run in a thread).

    Videos found unchanged are dropped from both sides here, as ``_settle_unchanged`` would; on
    return ``index_rows`` holds the folders and only the videos still to compare.
    """
    known: dict[int, dict[str, IndexRow]] = {}
    for _folders, videos in index_rows:
        for row in videos:
            known.setdefault(row[1], {})[row[2]] = row
    results = _walk_all(scanners, walks, known)
    left = [row for rows in known.values() for row in rows.values()]
    index_rows[:] = [(folders, []) for folders, _videos in index_rows]
    index_rows.append(([], left))
    return results


@dataclass(slots=True)
class _Diff:
    removed: list[IndexedEntry] = field(default_factory=list)
    added_folders: list[tuple[Key, ScanEntry]] = field(default_factory=list)
    added_videos: list[tuple[Key, ScanEntry]] = field(default_factory=list)
    moves: list[tuple[IndexedEntry, Key, ScanEntry]] = field(default_factory=list)
    updates: list[tuple[IndexedEntry, ScanEntry]] = field(default_factory=list)
    kept_folders: dict[Key, int] = field(default_factory=dict)


def _diff(survey: _Survey) -> _Diff:
    """Classify every entry: kept, updated, added, removed, or moved (blocking; run in a thread)."""
    diff = _Diff(kept_folders=dict(survey.kept_folders))
    disk, index = survey.disk, survey.index
    gone: list[IndexedEntry] = []
    new: list[tuple[Key, ScanEntry]] = []
    # Another file under a known name (a swap, or a rename over it): decided after move matching.
    replaced: list[tuple[IndexedEntry, ScanEntry]] = []
    for key, entry in disk.items():
        indexed = index.get(key)
        if indexed is None or indexed.kind is not entry.kind:
            new.append((key, entry))
        elif entry.kind is EntryKind.FOLDER:
            diff.kept_folders[key] = indexed.id
            if entry.mtime_ns != indexed.mtime_ns or entry.inode != indexed.inode:
                diff.updates.append((indexed, entry))
        elif entry.inode and indexed.inode and (entry.inode, entry.device) != (indexed.inode, indexed.device):
            replaced.append((indexed, entry))
            gone.append(indexed)
            new.append((key, entry))
        elif entry.size != indexed.size or entry.mtime_ns != indexed.mtime_ns:
            diff.updates.append((indexed, entry))
    for key, indexed in index.items():
        on_disk = disk.get(key)
        if (on_disk is None or on_disk.kind is not indexed.kind) and not _protected(key, survey.incomplete):
            gone.append(indexed)
    diff.removed = _match_moves(gone, new, diff)
    _settle_replaced(diff, replaced)
    return diff


def _settle_replaced(diff: _Diff, replaced: list[tuple[IndexedEntry, ScanEntry]]) -> None:
    """A name whose old and new file both stayed unmatched is an update; a move onto itself is one too."""
    removed_ids = {id(indexed) for indexed in diff.removed}
    added_ids = {id(entry) for _key, entry in diff.added_videos}
    kept_updates: set[int] = set()
    for indexed, entry in replaced:
        if id(indexed) in removed_ids and id(entry) in added_ids:
            kept_updates.add(id(indexed))
            kept_updates.add(id(entry))
            diff.updates.append((indexed, entry))
    self_moves = [(old, key, entry) for old, key, entry in diff.moves if (old.root_id, old.path) == key]
    for old, _key, entry in self_moves:
        diff.updates.append((old, entry))
    if self_moves:
        diff.moves = [m for m in diff.moves if (m[0].root_id, m[0].path) != m[1]]
    if kept_updates:
        diff.removed = [e for e in diff.removed if id(e) not in kept_updates]
        diff.added_videos = [(k, e) for k, e in diff.added_videos if id(e) not in kept_updates]


def _match_moves(gone: list[IndexedEntry], new: list[tuple[Key, ScanEntry]], diff: _Diff) -> list[IndexedEntry]:
    """Pair vanished index entries with new disk entries; fill diff.moves/added_*; return the removed."""
    by_inode: dict[tuple[EntryKind, int, int], list[IndexedEntry]] = {}
    for indexed in gone:
        if indexed.inode:
            by_inode.setdefault((indexed.kind, indexed.device, indexed.inode), []).append(indexed)
    new_inodes: dict[tuple[EntryKind, int, int], int] = {}
    for _key, entry in new:
        if entry.inode:
            ident = (entry.kind, entry.device, entry.inode)
            new_inodes[ident] = new_inodes.get(ident, 0) + 1
    matched: set[int] = set()
    leftovers: list[tuple[Key, ScanEntry]] = []
    for key, entry in new:
        ident = (entry.kind, entry.device, entry.inode)
        candidates = by_inode.get(ident) if entry.inode else None
        if candidates and len(candidates) == 1 and new_inodes.get(ident) == 1:
            old = candidates[0]
            same_content = entry.kind is EntryKind.FOLDER or (old.size == entry.size and old.mtime_ns == entry.mtime_ns)
            if same_content and id(old) not in matched:
                matched.add(id(old))
                diff.moves.append((old, key, entry))
                continue
        leftovers.append((key, entry))
    # Where inodes cannot be trusted (another device number after a remount, network shares),
    # a file that vanished and one that appeared with the same size and mtime, each unique, moved.
    by_stamp: dict[tuple[int, int], list[IndexedEntry]] = {}
    for indexed in gone:
        if indexed.kind is EntryKind.VIDEO and id(indexed) not in matched:
            by_stamp.setdefault((indexed.size, indexed.mtime_ns), []).append(indexed)
    new_stamps: dict[tuple[int, int], int] = {}
    for _key, entry in leftovers:
        if entry.kind is EntryKind.VIDEO:
            stamp = (entry.size, entry.mtime_ns)
            new_stamps[stamp] = new_stamps.get(stamp, 0) + 1
    for key, entry in leftovers:
        if entry.kind is EntryKind.VIDEO:
            stamp = (entry.size, entry.mtime_ns)
            candidates = by_stamp.get(stamp)
            if candidates and len(candidates) == 1 and new_stamps[stamp] == 1 and id(candidates[0]) not in matched:
                matched.add(id(candidates[0]))
                diff.moves.append((candidates[0], key, entry))
                continue
            diff.added_videos.append((key, entry))
        else:
            diff.added_folders.append((key, entry))
    return [indexed for indexed in gone if id(indexed) not in matched]


@dataclass(slots=True)
class _PlanResult:
    plan: SyncPlan
    orphans: list[tuple[Key, str]]


def _plan(diff: _Diff, first_folder_id: int, first_video_id: int) -> _PlanResult:
    """Give new entries their ids and every new or moved entry its parent folder id."""
    folder_ids = dict(diff.kept_folders)
    for old, key, entry in diff.moves:
        if entry.kind is EntryKind.FOLDER:
            folder_ids[key] = old.id
    new_folders_sorted = sorted(diff.added_folders, key=lambda item: item[0][1].count("/"))
    for offset, (key, _entry) in enumerate(new_folders_sorted):
        folder_ids[key] = first_folder_id + offset
    plan = SyncPlan(removed=diff.removed)
    orphans: list[tuple[Key, str]] = []
    for key, entry in new_folders_sorted:
        parent = folder_ids.get((key[0], parent_of(key[1])))
        if parent is None or key[1] == "":
            orphans.append((key, "parent folder not indexed; will be picked up by the next sync"))
            folder_ids.pop(key, None)  # its entries are orphans too: never rows under a folder not written
            continue
        plan.new_folders.append(NewFolder(folder_ids[key], key[0], parent, entry))
    for offset, (key, entry) in enumerate(diff.added_videos):
        parent = folder_ids.get((key[0], parent_of(key[1])))
        if parent is None:
            orphans.append((key, "parent folder not indexed; will be picked up by the next sync"))
            continue
        plan.new_videos.append(NewVideo(first_video_id + offset, key[0], parent, entry))
    for old, key, entry in diff.moves:
        parent = folder_ids.get((key[0], parent_of(key[1])))
        if parent is None or key[1] == "":
            orphans.append((key, "parent folder not indexed; will be picked up by the next sync"))
            plan.removed.append(old)
            continue
        plan.moves.append(Move(entry.kind, old.id, old.root_id, old.path, key[0], parent, entry))
    plan.updates = [Update(old.kind, old.id, old.root_id, entry) for old, entry in diff.updates]
    return _PlanResult(plan, orphans)


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
