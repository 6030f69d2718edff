"""The watchfiles adapter and the watcher service on real folders, with real inotify and polling.

One module past 400 lines: every test runs on the same rig (a real folder, the service over
watchfiles in both modes, a recording submitter) and asks the one question of the adapter, whether
what happens on disk reaches the service.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gql_media.adapters.folder_watch import FolderWatch
from gql_media.adapters.watcher import (
    PathFilter,
    WatchfilesSource,
    WatchfilesSourceFactory,
    WatchOptions,
    folders_under,
    network_roots,
    watch_error,
)
from gql_media.core.debounce import PathChange, PathChangeKind
from gql_media.core.models import (
    SyncJob,
    SyncRequest,
    SyncTarget,
    SyncTrigger,
    WatcherStatus,
    WatchMode,
)
from gql_media.core.own_writes import OwnWrites
from gql_media.core.ports import WatchLimitError
from gql_media.core.watching import WatchService
from tests.watching import TIMEOUT_S, RecordingSubmitter, wait_until


def covers(target: SyncTarget, path: str) -> bool:
    """Whether syncing ``target`` syncs the entry at ``path`` (a file or a folder)."""
    if path == target.path:
        return True
    if target.recursive:
        return path.startswith(target.path + "/")
    return posixpath.dirname(path) == target.path


def all_covered(submitter: RecordingSubmitter, paths: Iterable[str]) -> bool:
    targets = submitter.fired_targets()
    return all(any(covers(t, p) for t in targets) for p in paths)


@dataclass
class Rig:
    root: Path
    service: WatchService
    submitter: RecordingSubmitter
    statuses: list[WatcherStatus]

    async def expect_covered(self, *paths: Path, what: str = "the changes are synced") -> None:
        wanted = [str(p) for p in paths]
        await wait_until(lambda: all_covered(self.submitter, wanted), f"{what}: {wanted}")


MODES = [pytest.param(WatchMode.NATIVE, id="native"), pytest.param(WatchMode.POLLING, id="polling")]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


@pytest.fixture(params=MODES)
async def rig(request: pytest.FixtureRequest, library: Path, tmp_path: Path) -> AsyncIterator[Rig]:
    mode: WatchMode = request.param
    submitter = RecordingSubmitter()
    statuses: list[WatcherStatus] = []

    async def on_status(status: WatcherStatus) -> None:
        statuses.append(status)

    factory = WatchfilesSourceFactory(ignored_paths=[str(library / "data")], options=WatchOptions(poll_delay_ms=100))
    service = WatchService(
        factory,
        submitter,
        [str(library)],
        on_status=on_status,
        mode=mode,
        settle_ms=150,
        max_wait_ms=2000,
        reconcile_interval_s=0,
    )
    status = await service.start(SyncTrigger.STARTUP)
    assert status.mode is mode
    assert status.error is None
    try:
        yield Rig(library, service, submitter, statuses)
    finally:
        await service.stop()


def write(path: Path, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"v" * size)
    return path


# --- the core cases, native and polling ---------------------------------------------------------


async def test_start_reconciles_the_root_first(rig: Rig) -> None:
    first = rig.submitter.requests[0]
    assert first.trigger is SyncTrigger.STARTUP
    assert first.targets == (SyncTarget(str(rig.root), recursive=True),)


async def test_create_modify_delete_a_file(rig: Rig) -> None:
    folder = rig.root / "show"
    folder.mkdir()
    await rig.expect_covered(folder, what="the new folder")
    count = len(rig.submitter.requests)
    video = write(folder / "ep1.MKV")
    await wait_until(lambda: len(rig.submitter.requests) > count, "the new file")
    assert SyncTarget(str(folder), recursive=False) in rig.submitter.fired_targets()

    count = len(rig.submitter.requests)
    with video.open("ab") as f:
        f.write(b"more")
    await wait_until(lambda: len(rig.submitter.requests) > count, "the modified file")
    assert rig.submitter.requests[-1].targets == (SyncTarget(str(folder), recursive=False),)

    count = len(rig.submitter.requests)
    video.unlink()
    await wait_until(lambda: len(rig.submitter.requests) > count, "the deleted file")
    assert rig.submitter.requests[-1].targets == (SyncTarget(str(folder), recursive=False),)


async def test_rename_and_move_a_file(rig: Rig) -> None:
    a, b = rig.root / "a", rig.root / "b"
    a.mkdir()
    b.mkdir()
    video = write(a / "x.mp4")
    await rig.expect_covered(video)
    count = len(rig.submitter.requests)
    renamed = video.rename(a / "y.mp4")
    await wait_until(lambda: len(rig.submitter.requests) > count, "the rename")
    assert SyncTarget(str(a), recursive=False) in rig.submitter.requests[-1].targets
    moved = renamed.rename(b / "y.mp4")
    await rig.expect_covered(moved, video, what="both ends of the move")


async def test_mkdir_p_with_files_is_rescanned_whole(rig: Rig) -> None:
    deep = rig.root / "new" / "sub" / "deeper"
    deep.mkdir(parents=True)
    files = [write(deep / f"{i}.mp4") for i in range(5)] + [write(rig.root / "new" / "top.webm")]
    await rig.expect_covered(rig.root / "new", *files, deep)
    assert any(t.recursive and covers(t, str(deep)) for t in rig.submitter.fired_targets())


async def test_a_tree_moved_in_is_rescanned_whole(rig: Rig, tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "Season 1"
    files = [write(outside / "disc1" / f"e{i}.mkv") for i in range(3)] + [write(outside / "e9.mp4")]
    moved_in = rig.root / "Season 1"
    os.rename(outside, moved_in)
    await rig.expect_covered(moved_in)
    assert SyncTarget(str(moved_in), recursive=True) in rig.submitter.fired_targets()
    for path in files:
        assert all_covered(rig.submitter, [str(moved_in / path.relative_to(outside))])


async def test_a_folder_deleted_with_its_videos(rig: Rig) -> None:
    folder = rig.root / "gone"
    for i in range(100):
        write(folder / f"{i:03}.mp4")
    await rig.expect_covered(folder)
    count = len(rig.submitter.requests)
    shutil.rmtree(folder)
    await wait_until(lambda: len(rig.submitter.requests) > count, "the deletion")
    await wait_until(
        lambda: any(covers(t, str(folder)) for r in rig.submitter.requests[count:] for t in r.targets),
        "the gone folder is synced",
    )


async def test_irrelevant_paths_cause_no_sync(rig: Rig) -> None:
    (rig.root / "data").mkdir()
    count = len(rig.submitter.requests)
    write(rig.root / "notes.txt")
    write(rig.root / ".hidden" / "x.mp4")
    write(rig.root / ".x.mp4")
    write(rig.root / "movie.mp4.part")
    write(rig.root / "movie.crdownload")
    write(rig.root / "data" / "thumbs" / "1.mp4")
    marker = write(rig.root / "marker.mp4")  # comes after the others: when it is synced, they were seen
    await rig.expect_covered(marker)
    targets = [t for r in rig.submitter.requests[count:] for t in r.targets]
    assert all(not t.path.startswith(str(rig.root / ".hidden")) for t in targets)
    assert all(not t.path.startswith(str(rig.root / "data")) for t in targets)
    # The data folder itself is a folder of the root: only its creation may be synced, not its content.
    assert set(targets) <= {SyncTarget(str(rig.root), recursive=False), SyncTarget(str(rig.root / "data"), True)}


async def test_a_burst_of_files_then_half_deleted(rig: Rig) -> None:
    folders = [rig.root / f"burst{i}" for i in range(5)]
    for folder in folders:
        folder.mkdir()
    await rig.expect_covered(*folders)
    files = [write(folders[i % 5] / f"{i}.mp4", size=1) for i in range(2000)]
    await rig.expect_covered(*files, what="every new file")
    count = len(rig.submitter.requests)
    for path in files[::2]:
        path.unlink()
    await wait_until(lambda: len(rig.submitter.requests) > count, "the deletions")
    await rig.expect_covered(*files[::2], what="every deleted file")
    # Coalesced: far fewer requests than files.
    assert len(rig.submitter.requests) < 50


async def test_a_file_written_slowly_is_synced_after_its_last_write(rig: Rig) -> None:
    folder = rig.root / "downloads"
    folder.mkdir()
    await rig.expect_covered(folder)
    video = folder / "slow.mp4"
    sizes_at_submit: list[int] = []
    record = rig.submitter.submit

    async def submit_and_look(request: SyncRequest) -> SyncJob:
        if any(covers(t, str(video)) for t in request.targets) and video.exists():
            sizes_at_submit.append(video.stat().st_size)
        return await record(request)

    rig.submitter.submit = submit_and_look  # type: ignore[method-assign]
    with video.open("wb") as f:
        for _ in range(10):  # 2 s in all, in steps longer than settle_ms
            f.write(b"x" * 100_000)
            f.flush()
            await asyncio.sleep(0.2)
    # Whatever fired while it grew, a sync is asked for after the last write: it sees the final size.
    await wait_until(lambda: 1_000_000 in sizes_at_submit, f"a sync after the last write (synced at {sizes_at_submit})")
    assert sizes_at_submit == sorted(sizes_at_submit)


# --- native only ----------------------------------------------------------------------------------


@pytest.fixture
async def native(library: Path) -> AsyncIterator[tuple[WatchService, RecordingSubmitter]]:
    submitter = RecordingSubmitter()
    own = OwnWrites(grace_s=5.0)
    factory = WatchfilesSourceFactory(own_writes=own)
    service = WatchService(factory, submitter, [str(library)], settle_ms=150, max_pending=20, reconcile_interval_s=0)
    service.own_writes = own  # type: ignore[attr-defined]
    await service.start(SyncTrigger.STARTUP)
    try:
        yield service, submitter
    finally:
        await service.stop()


async def test_overflow_of_the_pending_set_becomes_a_root_rescan(
    native: tuple[WatchService, RecordingSubmitter], library: Path
) -> None:
    service, submitter = native
    for i in range(200):
        write(library / f"d{i % 40}" / f"{i}.mp4")
    await wait_until(lambda: service.overflows >= 1, "the pending set overflowed")
    await wait_until(
        lambda: SyncTarget(str(library), recursive=True) in submitter.fired_targets(), "a rescan of the root"
    )


async def test_the_servers_own_writes_are_ignored(
    native: tuple[WatchService, RecordingSubmitter], library: Path
) -> None:
    service, submitter = native
    own: OwnWrites = service.own_writes  # type: ignore[attr-defined]
    merged = library / "show" / "merged.mp4"
    merged.parent.mkdir()
    await wait_until(lambda: bool(submitter.fired_targets()), "the folder")
    count = len(submitter.requests)
    with own.writing(str(merged)):
        write(merged, size=1000)
    marker = write(library / "marker.mp4")  # written after: once it is synced, the merge was seen
    await wait_until(lambda: len(submitter.requests) > count, "the marker")
    targets = {t for r in submitter.requests[count:] for t in r.targets}
    assert targets == {SyncTarget(str(marker.parent), recursive=False)}


async def test_stop_then_changes_then_start_catches_up(
    native: tuple[WatchService, RecordingSubmitter], library: Path
) -> None:
    service, submitter = native
    await service.stop()
    write(library / "while-stopped.mp4")
    count = len(submitter.requests)
    await service.start()
    assert submitter.requests[count].targets == (SyncTarget(str(library), recursive=True),)


async def test_a_vanishing_root_is_reported_and_comes_back(tmp_path: Path) -> None:
    keep, usb = tmp_path / "keep", tmp_path / "usb"
    keep.mkdir()
    usb.mkdir()
    submitter = RecordingSubmitter()
    service = WatchService(
        WatchfilesSourceFactory(), submitter, [str(keep), str(usb)], settle_ms=100, retry_delay_s=0.1
    )
    await service.start(SyncTrigger.STARTUP)
    try:
        shutil.rmtree(usb)
        await wait_until(lambda: str(usb) in (service.status().error or ""), "the missing root is reported")
        assert service.status().enabled
        # The other root is still watched.
        video = write(keep / "x.mp4")
        await wait_until(lambda: all_covered(submitter, [str(video)]), "changes in the other root")
        assert not any(t.path.startswith(str(usb)) for t in submitter.fired_targets())
        usb.mkdir()
        await wait_until(lambda: service.status().error is None, "the root is back")
        await wait_until(
            lambda: SyncTarget(str(usb), recursive=True) in submitter.requests[-1].targets, "and reconciled"
        )
    finally:
        await service.stop()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _inotify_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "inotify" in os.readlink(f"/proc/self/fd/{fd}"):
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.slow
async def test_fifty_start_stop_cycles_leak_nothing(library: Path) -> None:
    for i in range(20):
        (library / f"d{i}").mkdir()
    submitter = RecordingSubmitter()
    service = WatchService(WatchfilesSourceFactory(), submitter, [str(library)], reconcile_interval_s=3600)
    inotify = _inotify_fds()
    # One warm-up cycle fills the loop's default thread pool; it is reused, not leaked.
    await service.start()
    await service.stop()
    await wait_until(lambda: _inotify_fds() == inotify, "the warm-up watch closed", timeout_s=10)
    tasks, fds = asyncio.all_tasks(), len(_fds())
    threads = threading.active_count()
    for _ in range(50):
        assert (await service.start()).mode is WatchMode.NATIVE
        write(library / "d0" / "x.mp4")
        await service.stop()
    assert asyncio.all_tasks() == tasks
    # notify's own thread drops its epoll and eventfd descriptors a moment after the watch is closed.
    await wait_until(lambda: _inotify_fds() == inotify, "the inotify descriptors closed", timeout_s=10)
    await wait_until(lambda: len(_fds()) <= fds, f"descriptors back to {fds}", timeout_s=10)
    await wait_until(lambda: threading.active_count() <= threads, "the watch threads ended", timeout_s=10)


# --- the adapter's parts ------------------------------------------------------------------------


async def test_source_reports_folders_and_videos_only(library: Path) -> None:
    (library / "a").mkdir()
    source = WatchfilesSource([str(library)], path_filter=PathFilter([str(library)]))
    await source.open()
    try:
        assert source.mode is WatchMode.NATIVE
        write(library / "a" / "cover.jpg")
        (library / "b").mkdir()
        write(library / "a" / "x.mp4")
        seen: list[PathChange] = []
        async with asyncio.timeout(TIMEOUT_S):
            async for batch in source:
                seen.extend(batch)
                if any(c.path.endswith("x.mp4") for c in seen):
                    break
        assert PathChange(PathChangeKind.ADDED, str(library / "a" / "x.mp4"), is_dir=False) in seen
        assert PathChange(PathChangeKind.ADDED, str(library / "b"), is_dir=True) in seen
        assert all(not c.path.endswith(".jpg") for c in seen)
    finally:
        await source.aclose()
    await source.aclose()  # idempotent


async def _until_seen(source: WatchfilesSource, *paths: Path) -> set[str]:
    """The paths the source reports until it has reported all of ``paths``."""
    wanted = {str(path) for path in paths}
    seen: set[str] = set()
    async with asyncio.timeout(TIMEOUT_S):
        async for batch in source:
            seen.update(change.path for change in batch)
            if wanted <= seen:
                break
    return seen


async def test_folders_made_or_moved_in_after_the_watch_opened_are_watched(library: Path, tmp_path: Path) -> None:
    # Native watches are one per folder (not recursive): a new folder must get its own.
    (library / "old").mkdir()
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    source = WatchfilesSource([str(library)], path_filter=PathFilter([str(library)]))
    await source.open()
    try:
        (library / "new" / "sub").mkdir(parents=True)
        await _until_seen(source, library / "new")
        write(library / "new" / "sub" / "deep.mp4")
        await _until_seen(source, library / "new" / "sub" / "deep.mp4")
        outside.rename(library / "moved")
        await _until_seen(source, library / "moved")
        write(library / "moved" / "inner" / "in.mkv")
        write(library / "old" / "still.mp4")  # the folders watched before are still watched
        await _until_seen(source, library / "moved" / "inner" / "in.mkv", library / "old" / "still.mp4")
        shutil.rmtree(library / "new")  # a folder gone does not stop the next new one's watch
        (library / "newer").mkdir()
        await _until_seen(source, library / "newer")
        write(library / "newer" / "n.mp4")
        await _until_seen(source, library / "newer" / "n.mp4")
    finally:
        await source.aclose()


def _watched_inodes() -> list[int]:
    """The inode of every inotify watch this process holds (one entry per watch)."""
    inodes: list[int] = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "inotify" not in os.readlink(f"/proc/self/fd/{fd}"):
                continue
            with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as info:
                lines = [line for line in info if line.startswith("inotify wd:")]
        except OSError:
            continue
        for line in lines:
            fields = dict(field.split(":", 1) for field in line.split()[1:] if ":" in field)
            inodes.append(int(fields["ino"], 16))
    return inodes


def _folder_inodes(top: Path) -> set[int]:
    return {os.stat(folder).st_ino for folder in folders_under([str(top)], lambda: False)}


# 0: every new folder builds the whole watch again; 1: the side watch is merged at its second folder.
@pytest.mark.parametrize("side_max_folders", [0, 1, 1000])
async def test_files_in_folders_made_after_the_watch_are_reported(
    library: Path, tmp_path: Path, side_max_folders: int
) -> None:
    (library / "old" / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    options = WatchOptions(side_max_folders=side_max_folders)
    source = WatchfilesSource([str(library)], path_filter=PathFilter([str(library)]), options=options)
    await source.open()
    try:
        (library / "new").mkdir()
        await _until_seen(source, library / "new")
        write(library / "new" / "a.mp4")
        (library / "new" / "inner").mkdir()  # a folder made inside the new one
        await _until_seen(source, library / "new" / "a.mp4", library / "new" / "inner")
        write(library / "new" / "inner" / "b.mp4")
        await _until_seen(source, library / "new" / "inner" / "b.mp4")
        # A folder moved away (with the one below it), then one made again under the same name.
        (library / "old").rename(outside / "old")
        await _until_seen(source, library / "old")
        (library / "old").mkdir()
        await _until_seen(source, library / "old")
        write(library / "old" / "c.mp4")
        (library / "new").rename(library / "renamed")  # moved inside the library
        await _until_seen(source, library / "old" / "c.mp4", library / "renamed")
        write(library / "renamed" / "inner" / "d.mp4")
        write(library / "e.mp4")  # the root's watch, built at the start, still watches
        await _until_seen(source, library / "renamed" / "inner" / "d.mp4", library / "e.mp4")
        # Every folder there is has one watch, and the folders moved away have none left.
        present, away = _folder_inodes(library), _folder_inodes(outside / "old")

        def watched_once() -> bool:
            inodes = _watched_inodes()
            return all(inodes.count(i) == 1 for i in present) and not away & set(inodes)

        await wait_until(watched_once, "one watch per folder, none on the folders moved away")
    finally:
        await source.aclose()


def test_a_folder_gone_before_its_watch_is_left_out(library: Path) -> None:
    (library / "here").mkdir()
    watch = FolderWatch(
        [str(library), str(library / "here"), str(library / "gone")],
        side_max_folders=10,
        poll_delay_ms=100,
        stopped=lambda: False,
    )
    try:
        assert watch.folders == {str(library), str(library / "here")}
        (library / "later").mkdir()
        watch.follow({(1, str(library / "later")), (1, str(library / "flash"))})
        assert watch.side_folders == {str(library / "later")}
    finally:
        watch.close()


def test_folders_under_follows_links_once_and_stops_when_told(library: Path) -> None:
    (library / "a" / "b").mkdir(parents=True)
    (library / "a" / "loop").symlink_to(library)
    (library / "c").mkdir()
    write(library / "a" / "x.mp4")
    assert sorted(folders_under([str(library)], lambda: False)) == sorted(
        str(p) for p in (library, library / "a", library / "a" / "b", library / "c")
    )
    assert folders_under([str(library)], lambda: True) == []
    with pytest.raises(FileNotFoundError):
        folders_under([str(library / "gone")], lambda: False, roots_must_exist=True)
    assert folders_under([str(library / "gone")], lambda: False) == []


async def test_a_root_on_a_network_file_system_is_polled(library: Path, tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        f"/dev/sda1 / ext4 rw 0 0\nserver:/share {str(library).replace(' ', chr(92) + '040')} nfs4 rw 0 0\n"
    )
    source = WatchfilesSource(
        [str(library)], path_filter=PathFilter([str(library)]), options=WatchOptions(mounts_path=str(mounts))
    )
    await source.open()
    try:
        assert source.mode is WatchMode.POLLING
    finally:
        await source.aclose()


def test_network_roots_reads_the_mount_table(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "nas:/videos /mnt/my\\040nas nfs rw 0 0\n"
        "host:/ /mnt/ssh fuse.sshfs rw 0 0\n"
        "//pc/share /mnt/smb cifs rw 0 0\n"
        "tmpfs /mnt/smb/local tmpfs rw 0 0\n"
    )
    roots = ["/mnt/my nas/films", "/mnt/ssh", "/mnt/smb/x", "/mnt/smb/local/y", "/home/v", "/mnt/sshfs"]
    assert network_roots(roots, mounts_path=str(mounts)) == ["/mnt/my nas/films", "/mnt/ssh", "/mnt/smb/x"]
    assert network_roots(roots, mounts_path=str(tmp_path / "none")) == []


def test_running_out_of_watches_is_told_apart() -> None:
    assert isinstance(watch_error(OSError('OS file watch limit reached. about ["/lib"]')), WatchLimitError)
    assert isinstance(watch_error(RuntimeError("error in underlying watcher: No space (os error 28)")), WatchLimitError)
    other = RuntimeError("error in underlying watcher: something else")
    assert watch_error(other) is other


def test_filter_judges_gone_paths_by_name(library: Path) -> None:
    own = OwnWrites()
    path_filter = PathFilter([str(library)], ignored_paths=[str(library / "data")], own_writes=own)
    deleted = 3
    root = str(library)
    assert path_filter.classify(deleted, f"{root}/a/x.MP4") == PathChange(
        PathChangeKind.DELETED, f"{root}/a/x.MP4", False
    )
    assert path_filter.classify(deleted, f"{root}/a/index.m3u8") is not None
    assert path_filter.classify(deleted, f"{root}/a/cover.jpg") is None
    # A folder name may have a dot: a gone path of unknown kind is synced as a possible folder.
    assert path_filter.classify(deleted, f"{root}/Show.S01") == PathChange(PathChangeKind.DELETED, f"{root}/Show.S01")
    assert path_filter.classify(deleted, f"{root}/data/x.mp4") is None
    assert path_filter.classify(deleted, f"{root}/a/.x.mp4") is None
    assert path_filter.classify(deleted, f"{root}/a.mp4.part") is None
    assert path_filter.classify(deleted, root) is None
    assert path_filter.classify(deleted, "/elsewhere/x.mp4") is None
    with own.writing(f"{root}/a/merge.tmp.mp4"):
        assert path_filter.classify(deleted, f"{root}/a/merge.tmp.mp4") is None
    # Added, but already gone again: judged as a deletion.
    assert path_filter.classify(1, f"{root}/flash.mp4") == PathChange(
        PathChangeKind.DELETED, f"{root}/flash.mp4", False
    )


def test_storm_threshold_follows_the_kernel_queue(tmp_path: Path) -> None:
    from gql_media.adapters.watcher import max_queued_events, storm_events

    limit = tmp_path / "max_queued_events"
    limit.write_text("16384\n")
    assert max_queued_events(str(limit)) == 16384
    assert storm_events(16384) == 8192
    assert storm_events(100) == 1000
    assert max_queued_events(str(tmp_path / "missing")) == 16384


async def test_a_storm_of_changes_rescans_the_roots(library: Path) -> None:
    # A small threshold, as for a small kernel queue, so the test needs only a small storm. The folders
    # are there before the watch: files made in a new folder before its watch are its sync's to find.
    for i in range(8):
        (library / f"s{i}").mkdir()
    source = WatchfilesSource([str(library)], path_filter=PathFilter([str(library)]), storm_threshold=500)
    await source.open()
    try:
        for i in range(800):
            write(library / f"s{i % 8}" / f"{i}.mp4")
        seen: list[PathChange] = []
        async with asyncio.timeout(TIMEOUT_S):
            async for batch in source:
                seen.extend(batch)
                if PathChange(PathChangeKind.ADDED, str(library), is_dir=True) in seen:
                    break
    finally:
        await source.aclose()
