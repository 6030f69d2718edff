"""Two-way sync of parts of the library: compare disk and index under some scopes, write the difference.

The engine reads only what the scopes cover. A shallow scope widens by itself where it must: a
folder that appears on disk is walked whole (that is how trees moved in are caught), and a folder
that vanished from disk has its whole indexed subtree read (so its descendants are removed, or
found again under their new path). Entries keep their ids when they move: same device+inode (and,
for files, same size and mtime), or, where inodes are unreliable, a unique size+mtime match.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

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
    is_under,
    parent_of,
)
from gql_media.core.ports import EventBus, JobCancelled, LibraryStore
from gql_media.core.scanner import ScanCancelled, Scanner, ScanResult

logger = logging.getLogger(__name__)

Key = tuple[int, str]


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
    index: dict[Key, IndexedEntry] = field(default_factory=dict)
    incomplete: set[Key] = field(default_factory=set)
    walked_deep: set[Key] = field(default_factory=set)
    walked_shallow: set[Key] = field(default_factory=set)
    read_deep: set[Key] = field(default_factory=set)
    read_shallow: set[Key] = field(default_factory=set)
    errors: list[SyncErrorInfo] = field(default_factory=list)


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

    async def sync(self, scopes: Sequence[Scope], reporter: SyncReporter) -> SyncOutcome:
        """Bring the index in line with the disk under ``scopes``."""
        await reporter.report(SyncPhase.SCANNING, 0, None)
        survey = _Survey()
        walks = list(scopes)
        reads = list(walks)
        while walks or reads:
            await self._survey_round(survey, walks, reads, reporter)
            walks, reads = self._escalations(survey)
        for error in survey.errors:
            reporter.add_error(error.path, error.message)
        await reporter.report(SyncPhase.DIFFING, 0, None)
        reporter.check_cancelled()
        plan = await asyncio.to_thread(_diff, survey)
        return await self._write(plan, reporter)

    async def _survey_round(
        self, survey: _Survey, walks: list[Scope], reads: list[Scope], reporter: SyncReporter
    ) -> None:
        scanners = {root_id: Scanner(root.path, self.ignore_paths) for root_id, root in self.roots.items()}
        walk_task = asyncio.ensure_future(asyncio.to_thread(_walk_all, scanners, walks))
        index_rows: list[IndexedEntry] = []
        for scope in reads:
            index_rows.extend(await self.store.read_scope(scope))
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
        for root_id, result in results:
            for entry in result.entries:
                survey.disk[(root_id, entry.path)] = entry
            survey.incomplete.update((root_id, path) for path in result.incomplete)
            survey.errors.extend(result.errors)
        for row in index_rows:
            survey.index[(row.root_id, row.path)] = row

    def _escalations(self, survey: _Survey) -> tuple[list[Scope], list[Scope]]:
        walks: list[Scope] = []
        reads: list[Scope] = []
        for key, entry in survey.disk.items():
            if entry.kind is not EntryKind.FOLDER:
                continue
            indexed = survey.index.get(key)
            if indexed is not None and indexed.kind is EntryKind.FOLDER:
                continue
            if not _covered(key, survey.walked_deep, survey.walked_shallow):
                walks.append(Scope(key[0], key[1], True, entry.raw_path))
        for key, indexed in survey.index.items():
            if indexed.kind is not EntryKind.FOLDER:
                continue
            on_disk = survey.disk.get(key)
            if on_disk is not None and on_disk.kind is EntryKind.FOLDER:
                continue
            if _protected(key, survey.incomplete):
                continue
            if not _covered(key, survey.read_deep, survey.read_shallow):
                reads.append(Scope(key[0], key[1], True))
        return walks, reads

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
        for batch in _batches(structure.new_videos, self.batch_size):
            reporter.check_cancelled()
            await self.store.insert_videos(batch)
            done += len(batch)
            reporter.added += len(batch)
            outcome.changed_video_ids.extend(v.id for v in batch)
            for video in batch:
                await self._publish(ChangeKind.ADDED, EntryKind.VIDEO, video.id, video.root_id, video.entry.path,
                                    None, reporter.job_id)  # fmt: skip
            await reporter.report(SyncPhase.WRITING, done, total, batch[-1].entry.path)
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


def _walk_all(scanners: dict[int, Scanner], walks: list[Scope]) -> list[tuple[int, ScanResult]]:
    results: list[tuple[int, ScanResult]] = []
    for scope in walks:
        scanner = scanners.get(scope.root_id)
        if scanner is None:
            continue
        result = ScanResult()
        scanner.walk(scope.path, scope.recursive, result, scope.raw_path)
        results.append((scope.root_id, result))
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
    diff = _Diff()
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


T = TypeVar("T")


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def scope_contains(scope: Scope, root_id: int, path: str) -> bool:
    """Whether ``path`` of ``root_id`` lies in ``scope``."""
    if scope.root_id != root_id:
        return False
    if path == scope.path:
        return True
    if scope.recursive:
        return is_under(path, scope.path)
    return parent_of(path) == scope.path
