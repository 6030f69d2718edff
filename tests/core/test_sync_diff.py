"""The sync diff on its own (pure functions): what counts as a move, an update, an addition."""

from __future__ import annotations

from gql_media.core.models import EntryKind, IndexedEntry, ScanEntry, Scope, minimal_scopes
from gql_media.core.sync.diff import Diff, Key, classify


def indexed(entry_id: int, path: str, *, inode: int, size: int = 1, mtime: int = 10, device: int = 1) -> IndexedEntry:
    return IndexedEntry(EntryKind.VIDEO, entry_id, 1, path, size, mtime, inode, device)


def on_disk(path: str, *, inode: int, size: int = 1, mtime: int = 10, device: int = 1) -> ScanEntry:
    return ScanEntry(EntryKind.VIDEO, path, None, size, mtime, inode, device)


def diff_of(index: list[IndexedEntry], disk: list[ScanEntry], *, incomplete: frozenset[Key] = frozenset()) -> Diff:
    return classify({(1, e.path): e for e in disk}, {(e.root_id, e.path): e for e in index}, incomplete=incomplete)


def test_same_inode_size_and_mtime_is_a_move() -> None:
    diff = diff_of([indexed(7, "a.mp4", inode=5)], [on_disk("b.mp4", inode=5)])
    assert [(old.id, key[1]) for old, key, _ in diff.moves] == [(7, "b.mp4")]
    assert not diff.removed and not diff.added_videos


def test_a_reused_inode_with_other_content_is_not_a_move() -> None:
    diff = diff_of([indexed(7, "a.mp4", inode=5, size=10, mtime=1)], [on_disk("b.mp4", inode=5, size=3, mtime=2)])
    assert not diff.moves
    assert [e.id for e in diff.removed] == [7]
    assert [key[1] for key, _ in diff.added_videos] == ["b.mp4"]


def test_after_a_remount_a_unique_size_and_mtime_is_a_move() -> None:
    diff = diff_of([indexed(7, "a.mp4", inode=5, device=1, size=99, mtime=3)],
                   [on_disk("b.mp4", inode=900, device=2, size=99, mtime=3)])  # fmt: skip
    assert [(old.id, key[1]) for old, key, _ in diff.moves] == [(7, "b.mp4")]


def test_ambiguous_size_and_mtime_are_not_guessed() -> None:
    diff = diff_of(
        [indexed(7, "a.mp4", inode=5, device=1), indexed(8, "b.mp4", inode=6, device=1)],
        [on_disk("c.mp4", inode=900, device=2), on_disk("d.mp4", inode=901, device=2)],
    )
    assert not diff.moves
    assert len(diff.removed) == 2 and len(diff.added_videos) == 2


def test_a_new_file_under_an_old_name_is_an_update_not_a_removal() -> None:
    diff = diff_of([indexed(7, "a.mp4", inode=5, size=1)], [on_disk("a.mp4", inode=6, size=2, mtime=11)])
    assert [(old.id, new.size) for old, new in diff.updates] == [(7, 2)]
    assert not diff.removed and not diff.added_videos and not diff.moves


def test_unreadable_paths_are_protected() -> None:
    diff = diff_of([indexed(7, "locked/a.mp4", inode=5)], [], incomplete=frozenset({(1, "locked")}))
    assert not diff.removed


def test_covered_scopes_are_dropped() -> None:
    scopes = [
        Scope(1, "a", True),
        Scope(1, "a/b", False),
        Scope(1, "a/b/c", True),
        Scope(1, "a", False),
        Scope(1, "x", False),
        Scope(1, "x", False),
        Scope(2, "a/b", True),
    ]
    assert minimal_scopes(scopes) == [Scope(1, "a", True), Scope(1, "x", False), Scope(2, "a/b", True)]
