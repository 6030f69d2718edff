"""The survey: disk and index under some scopes, collected in rounds, and how far each side was read.

Blocking functions, run in threads by the engine. A round walks some scopes on disk and reads
some from the index; ``next_scopes`` then says what the next round must add, because a shallow
scope widens where it must: a folder new on disk is walked whole (that is how trees moved in are
caught), and a folder gone from disk has its whole indexed subtree read (so its descendants are
removed, or found again under their new path). ``settle_unchanged`` finally sets aside what is
the same on both sides, leaving ``disk`` and ``index`` to ``diff.classify``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gql_media.core.models import EntryKind, IndexedEntry, IndexRow, Root, ScanEntry, Scope, SyncErrorInfo, parent_of
from gql_media.core.scanner import Scanner, ScanResult
from gql_media.core.sync.diff import Key, has_ancestor, is_protected

__all__ = [
    "ScopeRows",
    "Survey",
    "merge_round",
    "next_scopes",
    "protect_empty_roots",
    "settle_unchanged",
    "walk",
    "walk_comparing",
]

# One scope's index rows: (folders, videos).
ScopeRows = tuple[list[IndexRow], list[IndexRow]]


@dataclass(slots=True)
class Survey:
    """Disk and index under the scopes, and how far each side has been read."""

    disk: dict[Key, ScanEntry] = field(default_factory=dict)
    # What diff.classify compares: filled by settle_unchanged with the index entries that are not
    # unchanged; the unchanged folders' ids go to kept_folders.
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
    # Entries below each root a streamed walk found and settled on its own (``stream``).
    found: dict[int, int] = field(default_factory=dict)

    def note_round(self, walks: list[Scope], reads: list[Scope]) -> None:
        """Record which scopes this round walked and read."""
        for scope in walks:
            target = self.walked_deep if scope.recursive else self.walked_shallow
            target.add((scope.root_id, scope.path))
        for scope in reads:
            target = self.read_deep if scope.recursive else self.read_shallow
            target.add((scope.root_id, scope.path))


def _covered(key: Key, deep: set[Key], shallow: set[Key]) -> bool:
    """Whether the contents of folder ``key`` were listed (itself shallow, or itself/an ancestor deep)."""
    return key in shallow or key in deep or has_ancestor(key, deep)


def walk(
    scanners: Mapping[int, Scanner], walks: list[Scope], known: dict[int, dict[str, IndexRow]] | None = None
) -> list[tuple[int, ScanResult]]:
    """Walk the scopes on disk; with ``known`` (video rows by root and path) unchanged videos are set aside."""
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


def walk_comparing(
    scanners: Mapping[int, Scanner], walks: list[Scope], index_rows: list[ScopeRows]
) -> list[tuple[int, ScanResult]]:
    """Walk with the index at hand.

    Videos found unchanged are dropped from both sides here, as ``settle_unchanged`` would; on
    return ``index_rows`` holds the folders and only the videos still to compare.
    """
    known: dict[int, dict[str, IndexRow]] = {}
    for _folders, videos in index_rows:
        for row in videos:
            known.setdefault(row[1], {})[row[2]] = row
    results = walk(scanners, walks, known)
    left = [row for rows in known.values() for row in rows.values()]
    index_rows[:] = [(folders, []) for folders, _videos in index_rows]
    index_rows.append(([], left))
    return results


def merge_round(survey: Survey, results: list[tuple[int, ScanResult]], index_rows: list[ScopeRows]) -> None:
    """Add one round's walks and reads to the survey."""
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


def next_scopes(survey: Survey) -> tuple[list[Scope], list[Scope]]:
    """Scopes to walk and to read next: folders new on disk not yet walked, folders gone from disk not yet read."""
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
        if is_protected(key, survey.incomplete):
            continue
        if not _covered(key, survey.read_deep, survey.read_shallow):
            reads.append(Scope(key[0], key[1], True))
    return walks, reads


def _empty_folder(path: str) -> bool:
    """Nothing at all in the folder: what an unmounted drive's mount point looks like."""
    try:
        with os.scandir(path) as listing:
            return next(listing, None) is None
    except OSError:
        return False


def protect_empty_roots(survey: Survey, roots: Mapping[int, Root]) -> None:
    """A walked root found empty while its index is not is marked unreadable, with an error saying why.

    An unmounted drive leaves an empty mount point: removing its whole index would be wrong.
    Lists the suspicious roots again (blocking).
    """
    for root_id, root in roots.items():
        if (root_id, "") not in survey.walked_deep and (root_id, "") not in survey.walked_shallow:
            continue
        if (root_id, "") not in survey.disk and (root_id, "") not in survey.kept_folders:
            continue  # the root itself was not found (the walk says why)
        if survey.unchanged_videos.get(root_id) or survey.found.get(root_id):
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


def settle_unchanged(survey: Survey) -> None:
    """Set aside what is the same on disk and in the index; the rest goes to ``survey.index``.

    An unchanged entry (same kind, same stamps, same identity where both know it) is neither new
    nor gone, so the diff would only note a kept folder's id: dropping it here changes nothing
    else, and spares building an IndexedEntry for each of them.
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
