"""What counts as kept, updated, added, removed or moved: disk against index, as pure functions.

This module is the specification of the sync (``tests/core/test_sync_diff.py`` reads it):

- An entry at the same path with the same kind is kept; a folder whose mtime or inode changed,
  or a video whose size or mtime changed, is updated.
- An entry that vanished and one that appeared are the same entry, moved (it keeps its id),
  when they share device and inode (and, for a video, size and mtime), each side unique; where
  inodes cannot be trusted (another device number after a remount, network shares), a video
  that vanished and one that appeared with the same size and mtime, each unique, moved.
- Another file under a known name (a swap, or a rename over it) is an update of that name
  unless it turns out to be a move.
- Nothing at or under a path that could not be read is removed.

No I/O: it runs in a thread on what the survey collected.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gql_media.core.models import EntryKind, IndexedEntry, ScanEntry, parent_of

__all__ = ["Diff", "Key", "classify", "has_ancestor", "is_protected"]

# An entry's place: (root id, path inside the root).
Key = tuple[int, str]


@dataclass(slots=True)
class Diff:
    """The difference between disk and index, before new entries have ids."""

    removed: list[IndexedEntry] = field(default_factory=list)
    added_folders: list[tuple[Key, ScanEntry]] = field(default_factory=list)
    added_videos: list[tuple[Key, ScanEntry]] = field(default_factory=list)
    # (the entry as indexed, its new place, the entry on disk)
    moves: list[tuple[IndexedEntry, Key, ScanEntry]] = field(default_factory=list)
    # (the entry as indexed, the entry on disk)
    updates: list[tuple[IndexedEntry, ScanEntry]] = field(default_factory=list)
    # The id of every folder that keeps its place (new entries under it need it).
    kept_folders: dict[Key, int] = field(default_factory=dict)


def has_ancestor(key: Key, places: Collection[Key]) -> bool:
    """Whether a folder above ``key`` in its root (not ``key`` itself) is one of ``places``."""
    root_id, path = key
    while path:
        path = parent_of(path)
        if (root_id, path) in places:
            return True
    return False


def is_protected(key: Key, incomplete: Collection[Key]) -> bool:
    """Whether ``key`` is at or under a path that could not be read (its index entries are kept as they are)."""
    if not incomplete:
        return False
    return key in incomplete or has_ancestor(key, incomplete)


def classify(
    disk: Mapping[Key, ScanEntry],
    index: Mapping[Key, IndexedEntry],
    *,
    incomplete: Collection[Key] = frozenset(),
    kept_folders: Mapping[Key, int] | None = None,
) -> Diff:
    """Classify every entry on ``disk`` and in ``index``: kept, updated, added, removed, or moved.

    Args:
        disk: what the walk found, by place.
        index: what the index holds, by place.
        incomplete: places that could not be read: nothing at or under them is removed.
        kept_folders: folders already known to be unchanged (set aside before), by place: their ids.
    """
    diff = Diff(kept_folders=dict(kept_folders or {}))
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
        if (on_disk is None or on_disk.kind is not indexed.kind) and not is_protected(key, incomplete):
            gone.append(indexed)
    if gone:
        diff.removed = _match_moves(gone, new, diff)
    else:
        # Nothing vanished (a first index, new files only): every new entry is an addition.
        folder = EntryKind.FOLDER
        diff.added_folders.extend(item for item in new if item[1].kind is folder)
        diff.added_videos.extend(item for item in new if item[1].kind is not folder)
    _settle_replaced(diff, replaced)
    return diff


def _settle_replaced(diff: Diff, replaced: list[tuple[IndexedEntry, ScanEntry]]) -> None:
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


def _match_moves(gone: list[IndexedEntry], new: list[tuple[Key, ScanEntry]], diff: Diff) -> list[IndexedEntry]:
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
