"""A first index's walk in a process of its own (``core/sync/walk_process.py``, ``core/walker.py``): real
processes walking real trees, against the same walk in a thread."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from gql_media.adapters.store.index import IndexStore
from gql_media.core.models import Scope
from gql_media.core.scanner import FolderStamps, ScanCancelled, Scanner, ScanResult
from gql_media.core.sync import walk_process
from gql_media.core.sync.feed import FolderFeed
from gql_media.core.sync.stream import WalkBatches
from gql_media.core.sync.walk_process import ProcessWalkBatches, WalkFailed, WalkProcess
from gql_media.services import open_services
from gql_media.settings import Settings
from tests.conftest import disk_tree, index_tree, run_sync, write

_BATCH = 12


def _tree(root: Path) -> None:
    """What a first index meets: plain folders, names the rules decide, not ASCII, not UTF-8, a download."""
    for folder in range(6):
        for n in range(7):
            write(root / f"g{folder // 3}" / f"d{folder}" / f"clip {n}.mp4", b"x" * n)
    mixed = root / "mixed"
    for name in ("a.mkv", "B.MP4", ".dot.mp4", "c.mp4.part", "notes.txt", "é.webm"):
        write(mixed / name)
    os.symlink(mixed / "a.mkv", mixed / "link.mp4")
    os.symlink("/", mixed / "outside")  # a symlink out of the root: never followed
    write(Path(os.fsdecode(bytes(root / "latin") + b"/caf\xe9.mp4")))  # a name that is not UTF-8
    write(Path(os.fsdecode(bytes(root / "d\xe9j\xe0") + b"/v.mp4")))  # and a folder so named
    download = root / "zz download"  # (walked last: once a download is known, the rules decide every name)
    write(download / "index.m3u8", b"#EXTM3U\n#EXTINF:1,\nseg0.ts\n#EXT-X-ENDLIST\n")
    write(download / "seg0.ts")
    write(root / "top.mp4")


def _many_folders(root: Path) -> Path:
    """200 folders of 5 videos: a walk of many batches, to stop in the middle."""
    for folder in range(200):
        for n in range(5):
            write(root / f"d{folder:03d}" / f"{n}.mp4")
    return root


def _feed(scanner: Scanner) -> FolderFeed:
    """The feed of a first index: the root's folder read (no video), nothing else indexed."""
    feed = FolderFeed([""], 100, scanner.stopped, lambda: None, root_id=1, folder_ids=[1])
    feed.put(1, [])
    return feed


def _walker(kind: type[WalkBatches], root: Path, first_batch: int = 3) -> WalkBatches:
    scanner = Scanner(str(root))
    scope = Scope(1, "", True)
    if kind is ProcessWalkBatches:
        return ProcessWalkBatches(scanner, scope, _feed(scanner), _BATCH, first_batch=first_batch)
    return WalkBatches(scanner, scope, _feed(scanner), _BATCH, first_batch=first_batch)


async def _batches(walker: WalkBatches) -> list[ScanResult]:
    walker.start()
    batches = [batch async for batch in walker.batches()]
    assert walker.task is not None
    await walker.task
    return batches


async def test_a_walk_in_its_own_process_hands_on_the_batches_a_thread_walk_does(tmp_path: Path) -> None:
    root = tmp_path / "library"
    _tree(root)
    in_thread = _walker(WalkBatches, root)
    in_process = _walker(ProcessWalkBatches, root)

    expected = await _batches(in_thread)
    got = await _batches(in_process)

    assert len(expected) > 3  # (batches of 3, 6, 12 entries, then 12 each)
    assert got == expected  # entries, runs (names and stamps), errors, listed folders, in order
    assert in_process.scanner.seen == in_thread.scanner.seen > 50
    assert any(batch.runs for batch in got) and any(batch.entries for batch in got)
    assert isinstance(in_process, ProcessWalkBatches) and in_process.process is not None
    assert in_process.process.process.returncode == 0  # reaped


async def test_the_process_walks_a_root_given_folders_to_ignore(tmp_path: Path) -> None:
    root = tmp_path / "library"
    _tree(root)
    data = root / "g0"  # (the server's data folder, say)
    scanner = Scanner(str(root), [str(data)])
    thread_scanner = Scanner(str(root), [str(data)])
    scope = Scope(1, "", True)
    got = await _batches(
        ProcessWalkBatches(scanner, scope, _feed(scanner), _BATCH, ignore_paths=[str(data)], first_batch=3)
    )
    expected = await _batches(WalkBatches(thread_scanner, scope, _feed(thread_scanner), _BATCH, first_batch=3))
    assert got == expected
    assert not any(run.folder.startswith("g0") for batch in got for run in batch.runs)


async def test_a_cancelled_walk_stops_its_process(tmp_path: Path) -> None:
    walker = _walker(ProcessWalkBatches, _many_folders(tmp_path / "library"), first_batch=0)
    walker.start()
    taken = 0
    async for _batch in walker.batches():
        taken += 1
        walker.scanner.cancel()  # as the engine does when the job is cancelled
    assert walker.task is not None
    with pytest.raises(ScanCancelled):
        await walker.task
    assert taken < 200 * 6 // _BATCH  # not the whole walk
    assert isinstance(walker, ProcessWalkBatches) and walker.process is not None
    assert walker.process.process.returncode is not None
    await walker.stop()


async def test_stopping_a_walk_kills_its_process(tmp_path: Path) -> None:
    walker = _walker(ProcessWalkBatches, _many_folders(tmp_path / "library"), first_batch=0)
    walker.start()
    async for _batch in walker.batches():
        break  # (an error in the engine, say: it stops the walk)
    await walker.stop()
    assert walker.task is not None and walker.task.done()
    assert isinstance(walker.task.exception(), ScanCancelled)
    assert isinstance(walker, ProcessWalkBatches) and walker.process is not None
    assert walker.process.process.returncode is not None


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("import sys; sys.exit(3)", "the walk's process ended (exit code 3) before its walk did"),
        (
            "import sys\n"
            "from gql_media.core import scanner, walker\n"
            "def broken(*args, **kwargs): raise RuntimeError('a bug')\n"
            "scanner.Scanner.walk = broken\n"
            "walker.serve_walk(int(sys.argv[1]), int(sys.argv[2]))",
            "the walk failed: RuntimeError: a bug",
        ),
    ],
)
async def test_a_process_that_fails_fails_the_walk_with_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, words: str
) -> None:
    root = tmp_path / "library"
    _tree(root)
    monkeypatch.setattr(walk_process, "_WALK_CODE", code)
    walker = _walker(ProcessWalkBatches, root)
    walker.start()
    got = [batch async for batch in walker.batches()]
    assert got == []
    assert walker.task is not None
    with pytest.raises(WalkFailed) as raised:
        await walker.task
    assert str(raised.value) == words


async def test_a_process_that_cannot_start_leaves_the_walk_to_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "library"
    _tree(root)
    expected = await _batches(_walker(WalkBatches, root))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with caplog.at_level(logging.WARNING, logger=walk_process.__name__):
        got = await _batches(_walker(ProcessWalkBatches, root))
    assert got == expected
    assert "the walk's process could not start" in caplog.text


async def test_a_process_started_ahead_walks_when_asked_and_one_never_asked_is_stopped(tmp_path: Path) -> None:
    root = tmp_path / "library"
    _tree(root)
    spare = WalkProcess()
    scanner = Scanner(str(root))
    walker = ProcessWalkBatches(scanner, Scope(1, "", True), _feed(scanner), _BATCH, first_batch=3, spare=spare)
    got = await _batches(walker)
    assert walker.process is spare and spare.process.returncode == 0
    assert got == await _batches(_walker(WalkBatches, root))

    unused = WalkProcess()  # (a server stopped before its first index)
    unused.kill()
    unused.close()
    assert unused.process.returncode is not None


async def test_a_server_whose_root_is_empty_starts_the_walk_s_process_ahead(tmp_path: Path, library: Path) -> None:
    """With the server, on SQLite (a PostgreSQL replica may never lead: its leader's first index starts one)."""
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    for n in range(3):
        write(library / "a" / f"{n}.mp4")
    async with open_services(settings, media=False) as services:
        spare = services.engine._spare_walk
        assert spare is not None and spare.process.returncode is None
        job = await run_sync(services, library)  # a first index (a folder, 3 videos): it takes the process
        assert services.engine._spare_walk is None
        assert job.progress.added == 4 and await index_tree(services) == disk_tree(library)
        assert spare.process.returncode == 0
    async with open_services(settings, media=False) as services:  # every root indexed: none started
        assert services.engine._spare_walk is None
    async with open_services(settings.model_copy(update={"sync_walk_process": False}, deep=True)) as services:
        assert services.engine._spare_walk is None


async def test_stopping_a_server_stops_the_walk_s_process_started_ahead(tmp_path: Path, library: Path) -> None:
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False)
    async with open_services(settings, media=False) as services:
        spare = services.engine._spare_walk
        assert spare is not None
    assert spare.process.returncode is not None


@pytest.mark.parametrize("walk_process", [True, False])
async def test_a_first_index_loses_nothing_when_its_reads_lag_behind_its_writes(
    tmp_path: Path, library: Path, monkeypatch: pytest.MonkeyPatch, walk_process: bool
) -> None:
    """The read of the indexed folders' videos lags (a loaded machine): the first index's writes come first.

    The walk in its own process reads none; the walk in a thread takes the scope folder's (nothing, read
    before its first write). Before, the process's read came back with the job's own new videos, and the
    walk, never taking them, left them to the diff as gone: removed in the same job.
    """
    for n in range(4):
        write(library / f"top {n}.mp4")
    write(library / "a" / "b.mp4")
    read = IndexStore.read_folder_stamps

    async def read_late(self: IndexStore, folder_ids: Sequence[int]) -> list[FolderStamps]:
        await asyncio.sleep(0.3)  # (the walk hands its batches on and their writes commit meanwhile)
        return await read(self, folder_ids)

    monkeypatch.setattr(IndexStore, "read_folder_stamps", read_late)
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False, sync_walk_process=walk_process)
    async with open_services(settings, media=False) as services:
        job = await run_sync(services, library)
        assert job.progress.removed == 0
        assert await index_tree(services) == disk_tree(library)
