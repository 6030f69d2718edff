"""Big changes, summarised: past the threshold a job publishes one SUBTREE_CHANGED per changed subtree.

Runs the engine on real folders against the in-memory store of ``test_sync_engine``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gql_media.core.models import ChangeKind, EntryKind, NewVideo, ScanEntry, Scope, SyncPlan
from gql_media.core.sync.changes import COUNTED_ON_LOOP, JobChanges
from tests.core.test_sync_engine import FakeJob, Library, open_library, write


@pytest.fixture
async def library(tmp_path: Path) -> Library:
    return await open_library(tmp_path, summary_threshold=3)


def summaries(library: Library) -> list[tuple[int | None, str | None]]:
    return [(c.id, c.path) for c in library.bus.changes if c.kind is ChangeKind.SUBTREE_CHANGED]


async def test_a_big_first_index_is_one_change_for_the_root_folder(library: Library) -> None:
    for name in ("a/1.mp4", "a/2.mp4", "b/c/3.mp4", "4.mkv"):
        write(library.path / name)
    job = FakeJob()

    outcome = await library.sync(job=job)

    tree = library.store.tree()
    assert {path for kind, path in tree if kind == "video"} == {"a/1.mp4", "a/2.mp4", "b/c/3.mp4", "4.mkv"}
    assert summaries(library) == [(library.root.folder_id, "")]
    # Nothing per entry but the root folder's own update (its stamps).
    assert [(c.kind, c.path) for c in library.bus.changes if c.kind is not ChangeKind.SUBTREE_CHANGED] == [
        (ChangeKind.UPDATED, "")
    ]
    assert all(c.entry_kind is EntryKind.FOLDER and c.job_id == job.job_id for c in library.bus.changes)
    assert len(outcome.changed_video_ids) == 4 and job.tallies["added"] == 7


async def test_big_changes_in_two_folders_are_one_change_each_and_small_ones_stay_per_entry(
    library: Library,
) -> None:
    write(library.path / "x" / "keep.mp4")
    write(library.path / "y" / "old.mp4")
    write(library.path / "z" / "deep" / "keep.mp4")
    await library.sync()
    ids = library.store.tree()

    for number in range(3):
        write(library.path / "x" / f"new{number}.mp4")
    (library.path / "y" / "old.mp4").unlink()
    write(library.path / "z" / "deep" / "more.mp4")
    await library.sync()

    assert summaries(library) == [
        (ids[("folder", "x")], "x"),
        (ids[("folder", "y")], "y"),
        (ids[("folder", "z/deep")], "z/deep"),
    ]
    assert not [c for c in library.bus.changes if c.kind in (ChangeKind.ADDED, ChangeKind.REMOVED)]

    # At the threshold or under it: one change per entry, as before.
    write(library.path / "x" / "one more.mp4")
    await library.sync()
    assert summaries(library) == []
    assert (ChangeKind.ADDED, "x/one more.mp4", None) in library.changes()


async def test_a_summary_names_the_folder_holding_a_new_tree_not_each_folder_in_it(library: Library) -> None:
    write(library.path / "shows" / "keep.mp4")
    await library.sync()
    ids = library.store.tree()
    for season in range(2):
        for episode in range(2):
            write(library.path / "shows" / f"s{season}" / f"e{episode}.mp4")

    await library.sync(Scope(library.root.id, "shows", False))

    assert summaries(library) == [(ids[("folder", "shows")], "shows")]
    assert ("video", "shows/s1/e1.mp4") in library.store.tree()


async def test_a_plan_counted_in_a_thread_is_counted_as_on_the_loop(library: Library) -> None:
    # Past COUNTED_ON_LOOP entries a plan whose places the planner did not give is counted in a
    # thread (``JobChanges.count_plan``); a first index's planner gives them.
    for number in range(COUNTED_ON_LOOP + 200):
        write(library.path / ("a" if number % 2 else "b/c") / f"{number}.mp4")
    outcome = await library.sync()

    assert summaries(library) == [(library.root.folder_id, "")]
    assert len(outcome.changed_video_ids) == COUNTED_ON_LOOP + 200

    big = SyncPlan(new_videos=[NewVideo(n, 1, 1, ScanEntry(EntryKind.VIDEO, f"f{n % 3}/{n}.mp4", None, 0, 0, n, 1))
                               for n in range(COUNTED_ON_LOOP + 1)])  # fmt: skip
    small = SyncPlan(new_videos=big.new_videos[:2])
    for plan, places in ((big, None), (small, None), (big, {(1, "f0")})):
        on_loop, counted = JobChanges(threshold=5), JobChanges(threshold=5)
        on_loop.count(plan, places)
        await counted.count_plan(plan, places)
        assert (counted.counted, counted.places, counted.summarised) == (
            on_loop.counted,
            on_loop.places,
            on_loop.summarised,
        )
    assert counted.places == {(1, "f0")} and counted.summarised
