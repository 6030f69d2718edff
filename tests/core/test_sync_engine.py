"""The sync engine on real folders against an in-memory index (the store port faked at the I/O boundary).

The fake store keeps the real store's rules that the engine relies on: ids are never handed out
twice, (root, path) is unique, and every entry's parent folder exists. A plan that breaks one
of them fails here, without a database.

Past 400 lines, kept whole: every test here shares the one fake store, and each states one rule
of the engine (new, changed, removed, moved, escalated), which read best side by side.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gql_media.core.models import (
    ChangeKind,
    EntryKind,
    IndexRow,
    LibraryChange,
    NewVideo,
    Root,
    Scope,
    SyncPhase,
    SyncPlan,
    SyncProgress,
    SyncTarget,
    Update,
    VideoRun,
    WatcherStatus,
    parent_of,
)
from gql_media.core.ports import JobCancelled
from gql_media.core.scanner import (
    UNKNOWN_ID,
    FolderStamps,
    FolderVideos,
    KnownVideo,
    Scanner,
    ScanResult,
    stamps_hex,
)
from gql_media.core.sync import SyncEngine, SyncOutcome
from gql_media.core.sync.feed import FolderFeed, walk_order


@dataclass
class Entry:
    kind: EntryKind
    id: int
    root_id: int
    parent_id: int | None
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int

    def row(self) -> IndexRow:
        return (self.id, self.root_id, self.path, self.size, self.mtime_ns, self.inode, self.device)


class FakeIndexStore:
    """``ports.LibraryStore`` in memory."""

    def __init__(self) -> None:
        self.entries: dict[tuple[EntryKind, int], Entry] = {}
        self.next_ids = {EntryKind.FOLDER: 1, EntryKind.VIDEO: 1}
        self.video_batches: list[int] = []
        self.inserted: list[str] = []
        # "begin" and "end" of each bulk load, and "insert" of each bulk write between them.
        self.bulk_loads: list[str] = []

    async def ensure_roots(self, paths: Sequence[str]) -> list[Root]:
        roots = []
        for root_id, path in enumerate(paths, 1):
            folder = self._at(root_id, "", EntryKind.FOLDER)
            if folder is None:
                folder = Entry(EntryKind.FOLDER, self._take(EntryKind.FOLDER, 1), root_id, None, "", 0, 0, 0, 0)
                self._add(folder)
            roots.append(Root(root_id, path, folder.id))
        return roots

    async def read_scope_rows(self, scope: Scope) -> tuple[list[IndexRow], list[IndexRow]]:
        folder = self._at(scope.root_id, scope.path, EntryKind.FOLDER)

        def covered(entry: Entry) -> bool:
            if entry.root_id != scope.root_id:
                return False
            if entry.path == scope.path:
                return True
            if scope.recursive:
                return scope.path == "" or entry.path.startswith(scope.path + "/")
            return folder is not None and entry.parent_id == folder.id

        rows: tuple[list[IndexRow], list[IndexRow]] = ([], [])
        for entry in self.entries.values():
            if covered(entry):
                rows[entry.kind is EntryKind.VIDEO].append(entry.row())
        return rows

    async def read_scope_folders(self, scope: Scope) -> list[IndexRow]:
        return (await self.read_scope_rows(scope))[0]

    async def read_folder_videos(self, folder_ids: Sequence[int]) -> list[IndexRow]:
        wanted = set(folder_ids)
        return [e.row() for e in self.entries.values() if e.kind is EntryKind.VIDEO and e.parent_id in wanted]

    async def read_folder_stamps(self, folder_ids: Sequence[int]) -> list[FolderStamps]:
        wanted = set(folder_ids)
        videos = sorted((e.parent_id or 0, e.path.rpartition("/")[2], e) for e in self.entries.values()
                        if e.kind is EntryKind.VIDEO and e.parent_id in wanted)  # fmt: skip
        folders: dict[int, list[tuple[str, Entry]]] = {}
        for folder_id, name, entry in videos:
            folders.setdefault(folder_id, []).append((name, entry))
        return [
            (folder_id, "/".join(name for name, _ in named),
             "".join(f"{n % 2**64:016x}" for _, e in named for n in (e.size, e.mtime_ns, e.inode, e.device)))
            for folder_id, named in folders.items()
        ]  # fmt: skip

    async def read_video_ids(self, root_id: int, paths: Sequence[str]) -> dict[str, int]:
        wanted = set(paths)
        return {e.path: e.id for e in self.entries.values()
                if e.kind is EntryKind.VIDEO and e.root_id == root_id and e.path in wanted}  # fmt: skip

    async def reserve_ids(self, folders: int, videos: int) -> tuple[int, int]:
        return self._take(EntryKind.FOLDER, folders), self._take(EntryKind.VIDEO, videos)

    async def return_ids(self, folder: int, folder_end: int, video: int, video_end: int) -> None:
        for kind, first, end in ((EntryKind.FOLDER, folder, folder_end), (EntryKind.VIDEO, video, video_end)):
            if first < end and self.next_ids[kind] == end:
                self.next_ids[kind] = first

    async def apply_structure(self, plan: SyncPlan) -> None:
        for gone in plan.removed:
            del self.entries[(gone.kind, gone.id)]
        for move in plan.moves:
            entry = self.entries[(move.kind, move.id)]
            entry.root_id, entry.parent_id, entry.path = move.root_id, move.parent_id, move.entry.path
            entry.size, entry.mtime_ns = move.entry.size, move.entry.mtime_ns
            entry.inode, entry.device = move.entry.inode, move.entry.device
        for new in plan.new_folders:
            self._add(Entry(EntryKind.FOLDER, new.id, new.root_id, new.parent_id, new.entry.path, 0,
                            new.entry.mtime_ns, new.entry.inode, new.entry.device))  # fmt: skip
        self._check()

    async def begin_bulk_load(self) -> None:
        assert not self.bulk_loads or self.bulk_loads[-1] == "end", "a bulk load begun twice"
        self.bulk_loads.append("begin")

    async def end_bulk_load(self) -> None:
        assert self.bulk_loads and self.bulk_loads[-1] != "end", "a bulk load ended that was not begun"
        self.bulk_loads.append("end")

    async def insert_videos(
        self, rows: Sequence[NewVideo], *, bulk: bool = False, runs: Sequence[VideoRun] = ()
    ) -> None:
        rows = [*rows, *(video for run in runs for video in run.new_videos())]
        if self.bulk_loads and self.bulk_loads[-1] != "end":
            self.bulk_loads.append("insert")
        self.video_batches.append(len(rows))
        self.inserted.extend(new.entry.path for new in rows)
        for new in rows:
            self._add(Entry(EntryKind.VIDEO, new.id, new.root_id, new.folder_id, new.entry.path, new.entry.size,
                            new.entry.mtime_ns, new.entry.inode, new.entry.device))  # fmt: skip
        self._check()

    async def update_entries(self, rows: Sequence[Update]) -> None:
        for update in rows:
            entry = self.entries[(update.kind, update.id)]
            entry.size, entry.mtime_ns = update.entry.size, update.entry.mtime_ns
            entry.inode, entry.device = update.entry.inode, update.entry.device

    def tree(self) -> dict[tuple[str, str], int]:
        """(kind, path) -> id of everything indexed."""
        return {(e.kind.value, e.path): e.id for e in self.entries.values()}

    def _at(self, root_id: int, path: str, kind: EntryKind) -> Entry | None:
        return next((e for e in self.entries.values() if (e.kind, e.root_id, e.path) == (kind, root_id, path)), None)

    def _take(self, kind: EntryKind, count: int) -> int:
        first = self.next_ids[kind]
        self.next_ids[kind] = first + count
        return first

    def _add(self, entry: Entry) -> None:
        assert (entry.kind, entry.id) not in self.entries, f"id {entry.id} handed out twice"
        self.entries[(entry.kind, entry.id)] = entry

    def _check(self) -> None:
        places = [(e.root_id, e.path) for e in self.entries.values()]
        assert len(places) == len(set(places)), "two entries at one path"
        for entry in self.entries.values():
            if entry.path:
                parent = self.entries.get((EntryKind.FOLDER, entry.parent_id or 0))
                assert parent is not None, f"{entry.path}: parent folder not indexed"
                assert parent.path == parent_of(entry.path), f"{entry.path}: under {parent.path}"


class RecordingBus:
    """The event bus as the engine uses it: every change, in order."""

    def __init__(self) -> None:
        self.changes: list[LibraryChange] = []

    async def publish_change(self, change: LibraryChange) -> LibraryChange:
        self.changes.append(change)
        return change

    async def publish_progress(self, progress: SyncProgress) -> None:
        return None

    async def publish_watcher(self, status: WatcherStatus) -> None:
        return None


@dataclass
class FakeJob:
    """``ports.RunningJob``: records what the engine reports."""

    job_id: int = 3
    cancelled: bool = False
    tallies: dict[str, int] = field(default_factory=lambda: {"added": 0, "updated": 0, "removed": 0, "moved": 0})
    phases: list[SyncPhase] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    roots: Sequence[Root] = ()
    scopes: Sequence[Scope] = ()
    changed_video_ids: Sequence[int] = ()
    removed_video_ids: Sequence[int] = ()

    async def report(self, phase: SyncPhase, done: int, total: int | None, current_path: str | None = None) -> None:
        if not self.phases or self.phases[-1] is not phase:
            self.phases.append(phase)

    def tally(self, *, added: int = 0, updated: int = 0, removed: int = 0, moved: int = 0) -> None:
        for name, count in (("added", added), ("updated", updated), ("removed", removed), ("moved", moved)):
            self.tallies[name] += count

    def add_error(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def is_cancelled(self) -> bool:
        return self.cancelled

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled

    async def publish_change(self, change: LibraryChange) -> None:
        raise AssertionError("the engine publishes on the bus itself")

    async def sync_targets(self, targets: Sequence[SyncTarget]) -> None:
        raise AssertionError("the engine syncs the scopes it is given")

    def playlist_folders_under(self, top: str) -> list[str] | None:
        raise AssertionError("the merging step asks this, not the engine")


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass
class Library:
    path: Path
    store: FakeIndexStore
    bus: RecordingBus
    engine: SyncEngine
    root: Root

    async def sync(self, *scopes: Scope, job: FakeJob | None = None, confirm_empty_roots: bool = False) -> SyncOutcome:
        self.bus.changes.clear()
        return await self.engine.sync(
            scopes or [Scope(self.root.id, "")], job or FakeJob(), confirm_empty_roots=confirm_empty_roots
        )

    def changes(self) -> set[tuple[ChangeKind, str, str | None]]:
        return {(c.kind, c.path or "", c.old_path) for c in self.bus.changes}


async def open_library(tmp_path: Path, summary_threshold: int = 2000) -> Library:
    """An empty library folder under ``tmp_path`` and its engine (by default no test's tree is summarised)."""
    path = tmp_path / "library"
    path.mkdir()
    store, bus = FakeIndexStore(), RecordingBus()
    (root,) = await store.ensure_roots([str(path)])
    engine = SyncEngine(store, bus, [root], batch_size=2, summary_threshold=summary_threshold)
    return Library(path, store, bus, engine, root)


@pytest.fixture
async def library(tmp_path: Path) -> Library:
    return await open_library(tmp_path)


async def test_a_first_sync_indexes_every_folder_and_video_and_publishes_each(library: Library) -> None:
    write(library.path / "a" / "one.mp4")
    write(library.path / "a" / "b" / "two.mkv")
    write(library.path / "notes.txt")
    job = FakeJob()

    outcome = await library.sync(job=job)

    tree = library.store.tree()
    assert set(tree) == {("folder", ""), ("folder", "a"), ("folder", "a/b"), ("video", "a/one.mp4"),
                         ("video", "a/b/two.mkv")}  # fmt: skip
    assert sorted(outcome.changed_video_ids) == sorted([tree[("video", "a/one.mp4")], tree[("video", "a/b/two.mkv")]])
    # The root's own folder (made by ensure_roots, with no stamps yet) gets its stamps: an update.
    assert library.changes() == {(ChangeKind.ADDED, p, None) for p in ("a", "a/b", "a/one.mp4", "a/b/two.mkv")} | {
        (ChangeKind.UPDATED, "", None)
    }
    assert {c.job_id for c in library.bus.changes} == {job.job_id}
    assert job.tallies == {"added": 4, "updated": 1, "removed": 0, "moved": 0}
    assert job.phases == [SyncPhase.SCANNING, SyncPhase.DIFFING, SyncPhase.WRITING]
    assert job.errors == []


async def test_new_videos_are_written_in_batches_and_each_batch_is_published(library: Library) -> None:
    for name in "abcde":
        write(library.path / f"{name}.mp4")
    await library.sync()
    assert library.store.video_batches == [2, 2, 1]
    published = [c.path for c in library.bus.changes if c.kind is ChangeKind.ADDED]
    assert published == library.store.inserted  # in the order written
    assert sorted(published) == [f"{name}.mp4" for name in "abcde"]


async def test_an_unchanged_resync_writes_and_publishes_nothing(library: Library) -> None:
    write(library.path / "a" / "one.mp4")
    await library.sync()
    before = library.store.tree()
    job = FakeJob()
    outcome = await library.sync(job=job)
    assert library.store.tree() == before
    assert library.bus.changes == []
    assert outcome == SyncOutcome(walked_tops=[str(library.path)])  # (walked whole, no playlist found)
    assert job.tallies == {"added": 0, "updated": 0, "removed": 0, "moved": 0}


async def test_a_resync_compares_each_folder_whole_and_file_by_file_where_it_differs(library: Library) -> None:
    """A folder unchanged as a whole is settled at once; in one that differs each file is compared: a file
    replaced by another of the same size and mtime (another inode) is an update keeping its id, a file
    whose size changed is one too, and its unchanged neighbours, a file dated before 1970, and videos
    beside a file that is no video are left alone."""
    path = library.path
    for folder in ("same", "swapped", "grown", "old", "mixed"):
        for number in range(3):
            write(path / folder / f"{number}.mp4", b"abc")
    os.utime(path / "old" / "1.mp4", ns=(-5_000_000_000, -5_000_000_000))
    write(path / "mixed" / "cover.jpg")
    await library.sync()
    before = library.store.tree()

    swapped = path / "swapped" / "1.mp4"
    stamp = swapped.stat()
    write(path / "swapped" / "new.tmp", b"xyz")
    (path / "swapped" / "new.tmp").rename(swapped)  # another file (inode), same name, size and mtime
    os.utime(swapped, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert swapped.stat().st_ino != stamp.st_ino and swapped.stat().st_size == stamp.st_size
    write(path / "grown" / "2.mp4", b"abcd")
    job = FakeJob()
    outcome = await library.sync(job=job)

    assert library.store.tree() == before
    assert job.tallies == {"added": 0, "updated": 3, "removed": 0, "moved": 0}  # 2 videos, and "swapped" (renamed into)
    ids = {before[("video", "swapped/1.mp4")], before[("video", "grown/2.mp4")]}
    assert set(outcome.changed_video_ids) == ids
    entry = library.store.entries[(EntryKind.VIDEO, before[("video", "swapped/1.mp4")])]
    assert entry.inode == swapped.stat().st_ino
    assert {c.path for c in library.bus.changes} == {"swapped", "swapped/1.mp4", "grown/2.mp4"}


async def test_a_renamed_folder_keeps_the_ids_of_everything_in_it(library: Library) -> None:
    write(library.path / "shows" / "s1" / "e1.mp4", b"1")
    write(library.path / "film.mov", b"22")
    await library.sync()
    before = library.store.tree()

    (library.path / "shows").rename(library.path / "series")
    (library.path / "film.mov").rename(library.path / "series" / "film.mov")
    job = FakeJob()
    outcome = await library.sync(job=job)

    after = library.store.tree()
    assert after[("folder", "series")] == before[("folder", "shows")]
    assert after[("folder", "series/s1")] == before[("folder", "shows/s1")]
    assert after[("video", "series/s1/e1.mp4")] == before[("video", "shows/s1/e1.mp4")]
    assert after[("video", "series/film.mov")] == before[("video", "film.mov")]
    assert (ChangeKind.MOVED, "series", "shows") in library.changes()
    assert job.tallies["moved"] == 4 and job.tallies["added"] == job.tallies["removed"] == 0
    assert list(outcome.changed_video_ids) == [] and list(outcome.removed_video_ids) == []


async def test_a_shallow_scope_widens_to_a_tree_moved_in_and_a_folder_gone(library: Library) -> None:
    write(library.path / "old" / "deep" / "x.mp4")
    await library.sync()
    gone_id = library.store.tree()[("video", "old/deep/x.mp4")]

    write(library.path / "incoming" / "sub" / "y.mp4")
    for path in (library.path / "old" / "deep" / "x.mp4", library.path / "old" / "deep", library.path / "old"):
        path.unlink() if path.is_file() else path.rmdir()
    outcome = await library.sync(Scope(library.root.id, "", recursive=False))

    assert set(library.store.tree()) == {("folder", ""), ("folder", "incoming"), ("folder", "incoming/sub"),
                                         ("video", "incoming/sub/y.mp4")}  # fmt: skip
    assert list(outcome.removed_video_ids) == [gone_id]


async def test_a_changed_file_is_an_update_and_goes_to_the_media_steps(library: Library) -> None:
    video = write(library.path / "a.mp4", b"1")
    await library.sync()
    video_id = library.store.tree()[("video", "a.mp4")]
    video.write_bytes(b"longer")
    os.utime(video, ns=(1, 2_000_000_000))
    job = FakeJob()

    outcome = await library.sync(job=job)

    assert list(outcome.changed_video_ids) == [video_id]
    assert library.changes() == {(ChangeKind.UPDATED, "a.mp4", None)}
    assert library.store.entries[(EntryKind.VIDEO, video_id)].size == len(b"longer")
    assert job.tallies["updated"] == 1


async def test_an_emptied_root_is_left_alone_unless_a_full_sync_confirms_it(library: Library) -> None:
    write(library.path / "a.mp4")
    await library.sync()
    (library.path / "a.mp4").unlink()

    job = FakeJob()
    await library.sync(job=job)
    assert ("video", "a.mp4") in library.store.tree()
    assert [path for path, _message in job.errors] == [str(library.path)]

    await library.sync(confirm_empty_roots=True)
    assert set(library.store.tree()) == {("folder", "")}


async def test_a_cancelled_job_writes_nothing(library: Library) -> None:
    write(library.path / "a" / "one.mp4")
    with pytest.raises(JobCancelled):
        await library.sync(job=FakeJob(cancelled=True))
    assert set(library.store.tree()) == {("folder", "")}
    assert library.bus.changes == []


async def test_a_first_index_is_one_bulk_load_across_its_batches(library: Library) -> None:
    for number in range(30):  # 60 entries: three walk batches (20 entries each at batch size 2)
        write(library.path / f"d{number:02d}" / "v.mp4")

    await library.sync()

    loads = library.store.bulk_loads
    assert loads[0] == "begin" and loads[-1] == "end" and loads.count("begin") == 1
    assert loads.count("insert") == len(library.store.video_batches) == 15
    # Not a first index: no bulk load.
    loads.clear()
    write(library.path / "new" / "v.mp4")
    await library.sync()
    assert loads == []
    assert ("video", "new/v.mp4") in library.store.tree()


async def test_a_first_index_takes_ids_ahead_and_gives_back_those_left(tmp_path: Path) -> None:
    """A first index plans each batch while the one before is written, from ids reserved ahead: in
    the end its ids have no gap, follow the paths, and the counters are where they would be."""
    library = await open_library(tmp_path)
    library.engine.walk_batch = 5
    for folder in "abcd":
        for number in range(3):
            write(library.path / folder / f"{number}.mp4")

    await library.sync()

    store = library.store
    tree = store.tree()
    videos = sorted(path for kind, path in tree if kind == "video")
    assert [tree[("video", path)] for path in videos] == list(range(1, 13))
    assert sorted(tree[("folder", name)] for name in "abcd") == [2, 3, 4, 5]  # the root's own folder is 1
    assert store.next_ids == {EntryKind.FOLDER: 6, EntryKind.VIDEO: 13}
    assert len(store.video_batches) >= 3  # several batches, one reservation


class CancellingStore(FakeIndexStore):
    """Cancels the job once the first batch of videos is in."""

    def __init__(self, job: FakeJob) -> None:
        super().__init__()
        self.job = job

    async def insert_videos(
        self, rows: Sequence[NewVideo], *, bulk: bool = False, runs: Sequence[VideoRun] = ()
    ) -> None:
        await super().insert_videos(rows, bulk=bulk, runs=runs)
        self.job.cancelled = True


async def test_a_cancelled_first_index_ends_its_bulk_load(tmp_path: Path) -> None:
    job = FakeJob()
    store = CancellingStore(job)
    (root,) = await store.ensure_roots([str(tmp_path)])
    for number in range(30):
        write(tmp_path / f"d{number:02d}" / "v.mp4")
    engine = SyncEngine(store, RecordingBus(), [root], batch_size=2)

    with pytest.raises(JobCancelled):
        await engine.sync([Scope(root.id, "")], job)

    assert store.bulk_loads == ["begin", "insert", "end"]
    assert 0 < len(store.inserted) < 30


class FailingStore(FakeIndexStore):
    """Its second write of videos fails (the disk full, say)."""

    async def insert_videos(
        self, rows: Sequence[NewVideo], *, bulk: bool = False, runs: Sequence[VideoRun] = ()
    ) -> None:
        if self.video_batches:
            raise RuntimeError("the second write failed")
        await super().insert_videos(rows, bulk=bulk, runs=runs)


async def test_a_first_index_whose_write_fails_raises_that_error_and_ends_its_bulk_load(tmp_path: Path) -> None:
    """A batch is written while the next is planned: the write's error is the job's, and nothing hangs."""
    store = FailingStore()
    (root,) = await store.ensure_roots([str(tmp_path)])
    for number in range(30):
        write(tmp_path / f"d{number:02d}" / "v.mp4")
    engine = SyncEngine(store, RecordingBus(), [root], batch_size=2, summary_threshold=5)

    with pytest.raises(RuntimeError, match="the second write failed"):
        await engine.sync([Scope(root.id, "")], FakeJob())

    assert store.bulk_loads[0] == "begin" and store.bulk_loads[-1] == "end"
    assert len(store.video_batches) == 1


async def test_a_sync_streamed_in_many_batches_keeps_ids_across_them(tmp_path: Path) -> None:
    """Walk batches of 5 entries, the index read 2 folders at a time: moves between folders of different
    batches and chunks still keep their ids."""
    library = await open_library(tmp_path, summary_threshold=1000)
    library.engine.walk_batch = 5
    library.engine.folders_per_read = 2
    path, store = library.path, library.store
    for folder in "abcde":
        for number in range(4):
            write(path / folder / f"{number}.mp4", f"{folder}{number}".encode())
    job = FakeJob()
    await library.sync(job=job)
    before = store.tree()
    assert len(before) == 1 + 5 + 20 and job.tallies["added"] == 25
    assert len(store.video_batches) >= 3  # written as the walk went, a batch at a time

    (path / "a" / "1.mp4").rename(path / "e" / "moved.mp4")  # from the first batch to the last
    (path / "b").rename(path / "z")  # a folder whose rows are passed by early, found again last
    (path / "c" / "1.mp4").unlink()
    write(path / "c" / "1.mp4", b"another file")  # a new file under a known name
    (path / "d" / "2.mp4").unlink()
    write(path / "new" / "9.mp4")
    job = FakeJob()
    await library.sync(job=job)

    after = store.tree()
    assert after[("video", "e/moved.mp4")] == before[("video", "a/1.mp4")]
    assert after[("folder", "z")] == before[("folder", "b")]
    assert all(after[("video", f"z/{n}.mp4")] == before[("video", f"b/{n}.mp4")] for n in range(4))
    assert after[("video", "c/1.mp4")] == before[("video", "c/1.mp4")]
    assert ("video", "d/2.mp4") not in after and ("video", "new/9.mp4") in after
    # Updated: c/1.mp4, and the folders whose listing changed ("", a, c, d, e); moved: a/1.mp4, b and its 4 videos.
    assert job.tallies == {"added": 2, "updated": 6, "removed": 1, "moved": 6}
    assert set(after) == {(kind, p) for kind, p in disk_entries(path)}


def disk_entries(path: Path) -> set[tuple[str, str]]:
    found = {("folder", "")}
    for entry in path.rglob("*"):
        found.add(("folder" if entry.is_dir() else "video", entry.relative_to(path).as_posix()))
    return found


def test_the_read_ahead_follows_the_walk_order(tmp_path: Path) -> None:
    """The index's folders are read in the order a streamed walk lists them (names sorting below "/" too)."""
    for folder in ("a/x/y", "a b", "(2019) film", "-", "b"):
        (tmp_path / folder).mkdir(parents=True)

    class NothingKnown:
        def take(self, rel_dir: str, left: list[KnownVideo]) -> FolderVideos | None:
            return None

    result = ScanResult()
    Scanner(str(tmp_path)).walk("", True, result, by_folder=NothingKnown())
    assert sorted(result.listed) == ["", "(2019) film", "-", "a", "a b", "a/x", "a/x/y", "b"]
    assert result.listed == walk_order(result.listed)


def test_the_read_ahead_reads_on_while_the_walk_is_in_a_chunk_bigger_than_its_window() -> None:
    """The chunk being walked leaves the window; what the walk did not take of a chunk it passes is let go."""

    def stamps(folder_id: int, first: int, count: int) -> FolderStamps:
        return folder_id, "/".join(f"{n}.mp4" for n in range(first, first + count)), hex_stamps(1, 2, 3, 4) * count

    def rows(folder: str, first: int, count: int) -> list[IndexRow]:
        return [(UNKNOWN_ID, 1, f"{folder}/{n}.mp4", 1, 2, 3, 4) for n in range(first, first + count)]

    rooms: list[int] = []
    feed = FolderFeed(["", "a", "b", "c"], 3, lambda: False, lambda: rooms.append(1), root_id=1,
                      folder_ids=[10, 11, 12, 13])  # fmt: skip
    feed.put(2, [stamps(11, 0, 5)])  # "" and "a": 5 rows, more than the window
    assert not feed.has_room()
    left: list[KnownVideo] = []
    assert feed.take("", left) is None and feed.has_room() and rooms == [1]  # (no video in "")
    videos = feed.take("a", left)
    assert videos is not None and videos.count == 5 and videos.rows() == rows("a", 0, 5)
    assert feed.take("a", left) is None  # taken
    feed.put(3, [stamps(12, 5, 1)])
    feed.put(4, [stamps(13, 6, 3)])
    assert not feed.has_room()
    videos = feed.take("c", left)
    assert videos is not None and videos.rows() == rows("c", 6, 3)  # "b" was passed by
    assert left == rows("b", 5, 1) and feed.has_room()
    assert feed.take("a", left) is None  # its chunk is gone
    feed.put(4, [])
    assert feed.rest() == []


def hex_stamps(*numbers: int) -> str:
    """Stamps as ``FolderStamps`` holds them (16 hex digits each, a negative number's 64 bits)."""
    return "".join(f"{n % 2**64:016x}" for n in numbers)


def test_a_folder_read_for_a_resync_gives_back_its_rows() -> None:
    """What a streamed walk compares a folder with (names and stamps: two texts) makes its rows again when
    it differs (their ids read later): paths under the folder (or the root), a negative mtime, inodes past
    2**63; the stamps of a listing are written as the store writes them."""
    videos = FolderVideos(2, "a b/c", (9, "x.mp4/é.mkv", hex_stamps(5, -1, 2**63 + 1, 7, 0, 10, 0, 0)))
    assert videos.count == 2
    assert videos.rows() == [(UNKNOWN_ID, 2, "a b/c/x.mp4", 5, -1, 2**63 + 1, 7),
                             (UNKNOWN_ID, 2, "a b/c/é.mkv", 0, 10, 0, 0)]  # fmt: skip
    assert FolderVideos(2, "", (9, "top.mp4", hex_stamps(1, 2, 3, 4))).rows() == [
        (UNKNOWN_ID, 2, "top.mp4", 1, 2, 3, 4)
    ]
    st = os.stat(__file__)
    assert stamps_hex([st, st]) == hex_stamps(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev) * 2
