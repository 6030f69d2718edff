"""A streamed walk's folders that hold no indexed video (a first index): their plain videos are found
over the whole listing at once (``Scanner._add_new_videos``), every other name by the rules."""

from __future__ import annotations

import os
from pathlib import Path

from gql_media.core.models import EntryKind
from gql_media.core.scanner import FolderVideos, KnownVideo, Scanner, ScanResult
from tests.conftest import disk_tree, write


class _NothingIndexed:
    def take(self, rel_dir: str, left: list[KnownVideo]) -> FolderVideos | None:
        return None


def _first_walk(root: Path) -> ScanResult:
    result = ScanResult()
    batches: list[ScanResult] = []
    Scanner(str(root)).walk("", True, result, by_folder=_NothingIndexed(), emit=batches.append, batch_entries=3)
    batches.append(result)
    merged = ScanResult()
    for batch in batches:
        for run in batch.runs:  # a folder's plain videos, column by column, by name
            assert run.names == sorted(run.names) and run.first_id == run.folder_id == 0
            assert len(run.sizes) == len(run.mtimes_ns) == len(run.inodes) == len(run.devices) == len(run.names)
        merged.runs += batch.runs
        merged.entries += batch.entries_with_runs()
        merged.errors += batch.errors
    return merged


def test_a_first_walk_finds_what_the_rules_say_with_the_stamps_of_each_file(tmp_path: Path) -> None:
    root = tmp_path / "library"
    plain = root / "plain"  # videos only: all found at once
    for n in range(5):
        write(plain / f"clip {n}.mp4", b"x" * n)
    mixed = root / "mixed"  # videos beside what the rules must decide
    for name in ("a.mkv", "B.MP4", "c.Webm", ".dot.mp4", "d.mp4.part", "notes.txt", "e.ts", "mp4"):
        write(mixed / name)
    write(mixed / "folder.mp4" / "inner.avi")  # a folder named like a video
    write(mixed / "sub" / "f.mov")
    links = root / "links"
    write(links / "i.mp4")
    os.symlink(mixed / "a.mkv", links / "link.mp4")  # a symlink inside the root: the rules follow it
    odd = root / "odd"
    write(odd / "café.mp4")  # a name that is not ASCII
    write(odd / "g.mp4")
    hls = root / "download"  # a folder with a playlist (any case): its segments are no videos
    write(hls / "index.M3U8", b"#EXTM3U\n")
    write(hls / "seg0.ts")
    write(hls / "h.mp4")

    result = _first_walk(root)

    assert {run.folder for run in result.runs} >= {"plain", "mixed"}  # (the others' videos went by the rules)
    found = {("folder" if e.kind is EntryKind.FOLDER else "video", e.path) for e in result.entries}
    assert found == disk_tree(root) | {("video", "links/link.mp4")}
    assert len(found) == len(result.entries)  # each once
    assert not result.errors
    for entry in result.entries:
        if entry.kind is EntryKind.VIDEO and entry.path != "links/link.mp4":
            st = os.lstat(root / entry.path)
            assert (entry.raw_path, entry.size, entry.mtime_ns, entry.inode, entry.device) == (
                None, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev
            )  # fmt: skip


def test_a_walk_given_a_first_batch_size_hands_on_batches_twice_as_big_each_time(tmp_path: Path) -> None:
    for folder in range(10):
        for n in range(3):
            write(tmp_path / f"d{folder}" / f"v{n}.mp4")
    result = ScanResult()
    batches: list[ScanResult] = []
    Scanner(str(tmp_path)).walk("", True, result, by_folder=_NothingIndexed(), emit=batches.append,
                                batch_entries=16, first_batch_entries=2)  # fmt: skip

    # Handed on after a listed folder brings the batch to 2, then 4, 8 and 16 entries: the root's
    # listing (itself and 10 folders), 2 folders (3 videos each), 3 folders; the last 5 stay.
    assert [len(batch.entries) + batch.run_videos for batch in batches] == [11, 6, 9]
    assert len(result.entries) + result.run_videos == 15
