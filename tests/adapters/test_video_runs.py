"""A first index's videos as runs (a folder's, column by column): the store writes the same rows and
counts the same totals as for the same videos one tuple each, on both backends' row forms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gql_media.adapters.store.index import IndexStore
from gql_media.adapters.store.inserts import run_rows, sqlite_inserts, sqlite_run_inserts, video_rows
from gql_media.adapters.store.totals import TotalsDelta
from gql_media.core.models import EntryKind, NewVideo, ScanEntry, VideoRun, run_videos
from gql_media.core.scanner import ScanResult
from gql_media.services import Services
from tests.adapters.test_sync_property import _assert_totals
from tests.conftest import disk_tree, index_tree, run_sync, write
from tests.video_sql import VIDEOS

_BIG = 1 << 63  # a 64-bit stamp past the signed range (stored as its two's complement)


def _runs() -> list[VideoRun]:
    def run(first_id: int, folder_id: int, folder: str, count: int, inode: int, device: int) -> VideoRun:
        names = [f"Clip {n:05d}.MP4" for n in range(count)]
        return VideoRun(first_id, 1, folder_id, folder, names, list(range(count)), [10**18 + n for n in range(count)],
                        [inode + n for n in range(count)], [device] * count)  # fmt: skip

    return [run(1, 1, "", 3, 5, 64769), run(4, 2, "a/b", 5000, _BIG + 7, 64769), run(5004, 3, "é", 2, 9, _BIG)]


def test_a_run_is_written_as_its_videos_one_by_one() -> None:
    runs = _runs()
    videos = [video for run in runs for video in run.new_videos()]
    assert [v.entry.path for v in videos[:4]] == ["Clip 00000.MP4", "Clip 00001.MP4", "Clip 00002.MP4",
                                                  "a/b/Clip 00000.MP4"]  # fmt: skip
    assert videos[4].entry == ScanEntry(EntryKind.VIDEO, "a/b/Clip 00001.MP4", None, 1, 10**18 + 1, _BIG + 8, 64769)
    assert [v.id for v in videos] == list(range(1, 5006))
    # SQLite: the same statements, the same flat values (ids, signed stamps, case-folded names, the time).
    assert sqlite_run_inserts(runs, 1.5) == sqlite_inserts(videos, 1.5)
    # PostgreSQL: the same rows for executemany.
    assert run_rows(runs, 1.5) == video_rows(videos, 1.5)
    assert run_rows([], 1.5) == [] and sqlite_run_inserts([], 1.5) == []


def test_a_run_counts_in_the_totals_as_its_videos() -> None:
    runs = _runs()
    by_runs, by_videos = TotalsDelta(), TotalsDelta()
    by_runs.add_runs(runs)
    by_videos.add_new([video for run in runs for video in run.new_videos()])
    assert (by_runs._direct, by_runs._tree) == (by_videos._direct, by_videos._tree)


async def test_a_first_index_of_runs_holds_what_the_disk_does(
    services: Services, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enough videos for a summarised first index (its runs go to the store as they are), some by the rules."""
    runs_written: list[int] = []
    insert = IndexStore.insert_videos

    async def insert_noting_runs(self: IndexStore, rows: Sequence[NewVideo], **kwargs: Any) -> None:
        runs_written.append(run_videos(kwargs.get("runs", ())))
        await insert(self, rows, **kwargs)

    monkeypatch.setattr(IndexStore, "insert_videos", insert_noting_runs)
    for folder in range(30):
        for n in range(100):
            write(library / f"g{folder // 10}" / f"d{folder:02d}" / f"clip {n:03d}.mp4", b"x" * n)
    write(library / "g0" / "café.mp4", b"abc")  # a name that is not ASCII: an entry of its own
    job = await run_sync(services, library)

    assert job.progress.added == 3000 + 1 + 3 + 30
    assert sum(runs_written) == 3000  # (café.mp4 went as a row)
    assert await index_tree(services) == disk_tree(library)
    await _assert_totals(services)
    async with services.db.reading() as conn:
        rows = await conn.fetch(f"SELECT path, size, name_fold FROM {VIDEOS} WHERE path LIKE 'g2/d25/%' ORDER BY id")
    # A folder's videos take their ids by name, and keep their sizes and folded names.
    assert [(str(r[0]), int(r[1]), str(r[2])) for r in rows] == [
        (f"g2/d25/clip {n:03d}.mp4", n, f"clip {n:03d}.mp4") for n in range(100)
    ]


async def test_a_resync_takes_a_new_folder_walked_as_a_run_as_new_videos(
    services: Services, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resync's walk finds a folder holding no indexed video as a run too; the comparison takes its videos
    as entries (one of them the other side of a move, which keeps its id)."""
    compared: list[int] = []
    entries_with_runs = ScanResult.entries_with_runs

    def noting_runs(self: ScanResult) -> list[ScanEntry]:
        compared.append(self.run_videos)
        return entries_with_runs(self)

    monkeypatch.setattr(ScanResult, "entries_with_runs", noting_runs)
    write(library / "old" / "kept.mp4", b"k")
    write(library / "old" / "moving.mp4", b"m" * 7)
    await run_sync(services, library)
    async with services.db.reading() as conn:
        moving = await conn.fetch_one(f"SELECT id FROM {VIDEOS} WHERE path = 'old/moving.mp4'")
    assert moving is not None
    for n in range(30):
        write(library / "new" / f"v{n:02d}.mkv", b"n")
    (library / "old" / "moving.mp4").rename(library / "new" / "moved.mp4")

    job = await run_sync(services, library)

    assert (job.progress.added, job.progress.moved, job.progress.removed) == (31, 1, 0)  # (the folder and 30)
    assert sum(compared) == 31  # the new folder's videos came as a run, and were compared as entries
    assert await index_tree(services) == disk_tree(library)
    async with services.db.reading() as conn:
        moved = await conn.fetch_one(f"SELECT id FROM {VIDEOS} WHERE path = 'new/moved.mp4'")
    assert moved == moving
    await _assert_totals(services)
