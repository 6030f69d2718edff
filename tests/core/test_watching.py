"""WatchService against a fake change source and a recording submitter.

One module past 400 lines: it is the specification of one state machine (``core/watching.py``:
opening, reconciling, following, failing, retrying, polling, missing roots), and its tests share
the fake sources, the recording submitter and ``running``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from gql_media.core.debounce import PathChange, PathChangeKind
from gql_media.core.models import SyncMode, SyncRequest, SyncTarget, SyncTrigger, WatcherStatus, WatchMode
from gql_media.core.own_writes import OwnWrites
from gql_media.core.ports import RootMissingError, WatchLimitError
from gql_media.core.watching import WatchService
from tests.watching import RecordingSubmitter, wait_until


class FakeSource:
    def __init__(self, hub: FakeSources, roots: Sequence[str], force_polling: bool) -> None:
        self.hub = hub
        self.roots = tuple(roots)
        self.force_polling = force_polling
        self.queue: asyncio.Queue[Sequence[PathChange] | BaseException] = asyncio.Queue()
        self.opened = False
        self.closed = False

    @property
    def mode(self) -> WatchMode:
        return WatchMode.POLLING if self.force_polling else WatchMode.NATIVE

    async def open(self) -> None:
        if self.hub.open_errors:
            raise self.hub.open_errors.pop(0)
        self.opened = True
        self.hub.open_sources.append(self)

    async def __aiter__(self) -> AsyncIterator[Sequence[PathChange]]:
        while True:
            item = await self.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self.closed = True


class FakeSources:
    """The change-source factory: keeps every source it made, and errors to raise on open."""

    def __init__(self) -> None:
        self.made: list[FakeSource] = []
        self.open_sources: list[FakeSource] = []
        self.open_errors: list[BaseException] = []

    def __call__(self, roots: Sequence[str], *, force_polling: bool) -> FakeSource:
        source = FakeSource(self, roots, force_polling)
        self.made.append(source)
        return source

    @property
    def current(self) -> FakeSource:
        return self.open_sources[-1]


@pytest.fixture
def roots(tmp_path: Path) -> list[str]:
    made = [tmp_path / "lib", tmp_path / "other"]
    for root in made:
        root.mkdir()
    return [str(r) for r in made]


@pytest.fixture
def sources() -> FakeSources:
    return FakeSources()


@pytest.fixture
def submitter() -> RecordingSubmitter:
    return RecordingSubmitter()


def whole(*roots: str) -> tuple[SyncTarget, ...]:
    return tuple(SyncTarget(r, recursive=True) for r in roots)


def added_file(path: str) -> PathChange:
    return PathChange(PathChangeKind.ADDED, path, is_dir=False)


@contextlib.asynccontextmanager
async def running(service: WatchService) -> AsyncIterator[WatcherStatus]:
    """The service started (its status at start), and stopped however the block ends."""
    status = await service.start()
    try:
        yield status
    finally:
        await service.stop()


def make_service(
    sources: FakeSources, submitter: RecordingSubmitter, roots: Sequence[str], **kwargs: object
) -> WatchService:
    options: dict[str, object] = {"settle_ms": 20, "max_wait_ms": 200, "retry_delay_s": 0.01}
    options.update(kwargs)
    return WatchService(sources, submitter, roots, **options)  # type: ignore[arg-type]


async def test_start_opens_the_watch_then_reconciles_every_root(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    async with running(service) as status:
        assert status.enabled
        assert status.mode is WatchMode.NATIVE
        assert status.roots == tuple(roots)
        assert status.error is None
        assert sources.current.roots == tuple(roots)
        assert submitter.requests == [
            SyncRequest(mode=SyncMode.INCREMENTAL, trigger=SyncTrigger.WATCHER, targets=whole(*roots))
        ]
        # Idempotent: no second source, no second reconcile.
        assert (await service.start()).enabled
        assert len(sources.made) == 1
        assert len(submitter.requests) == 1


async def test_start_up_reconcile_carries_the_startup_trigger(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    await service.start(SyncTrigger.STARTUP)
    await service.stop()
    assert [r.trigger for r in submitter.requests] == [SyncTrigger.STARTUP]


async def test_each_fire_becomes_one_incremental_watcher_request(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    async with running(service):
        lib = roots[0]
        sources.current.queue.put_nowait([added_file(f"{lib}/a/1.mp4"), added_file(f"{lib}/a/2.mp4")])
        sources.current.queue.put_nowait(
            [PathChange(PathChangeKind.ADDED, f"{lib}/b", is_dir=True), added_file(f"{lib}/b/c/3.mp4")]
        )
        await wait_until(lambda: len(submitter.requests) == 2, "one request for the fire")
        request = submitter.requests[1]
        assert request.mode is SyncMode.INCREMENTAL
        assert request.trigger is SyncTrigger.WATCHER
        assert request.targets == (SyncTarget(f"{lib}/a", recursive=False), SyncTarget(f"{lib}/b", recursive=True))
        status = service.status()
        assert status.last_event_at is not None
        assert status.last_sync_at is not None
        assert status.pending_paths == 0


async def test_stop_closes_the_source_and_is_idempotent(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    await service.start()
    status = await service.stop()
    assert not status.enabled
    assert sources.current.closed
    assert not (await service.stop()).enabled
    assert service.status().pending_paths == 0


async def test_fifty_start_stop_cycles_leave_no_task_behind(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots, reconcile_interval_s=3600)
    before = asyncio.all_tasks()
    for _ in range(50):
        await service.start()
        sources.current.queue.put_nowait([added_file(f"{roots[0]}/x.mp4")])
        await service.stop()
    assert asyncio.all_tasks() == before
    assert len(sources.made) == 50
    assert all(s.closed for s in sources.made)
    assert len(submitter.requests) >= 50  # each start reconciled


async def test_pending_changes_are_dropped_at_stop_and_caught_by_the_next_start(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots, settle_ms=60_000, max_wait_ms=60_000)
    await service.start()
    sources.current.queue.put_nowait([added_file(f"{roots[0]}/a/x.mp4")])
    await wait_until(lambda: service.status().pending_paths == 1, "the change is pending")
    await service.stop()
    submitter.requests.clear()
    await service.start()
    await service.stop()
    assert submitter.targets == [whole(*roots)]


async def test_watch_limit_falls_back_to_polling_and_says_what_to_raise(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    sources.open_errors.append(WatchLimitError("OS file watch limit reached"))
    service = make_service(sources, submitter, roots)
    async with running(service) as status:
        assert status.mode is WatchMode.POLLING
        assert status.error is not None
        assert "fs.inotify.max_user_watches" in status.error
        assert sources.current.force_polling
        assert submitter.targets == [whole(*roots)]
        sources.current.queue.put_nowait([added_file(f"{roots[1]}/y.mp4")])
        await wait_until(lambda: len(submitter.requests) == 2, "changes still flow while polling")
    # A new start tries native again.
    assert (await service.start()).mode is WatchMode.NATIVE
    await service.stop()


async def test_open_failures_are_reported_retried_and_then_cleared(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    seen: list[WatcherStatus] = []

    async def on_status(status: WatcherStatus) -> None:
        seen.append(status)

    sources.open_errors.append(OSError("transient"))
    service = make_service(sources, submitter, roots, on_status=on_status, retry_delay_s=0.3)
    async with running(service) as status:
        # The first attempt failed, but a start still catches up with the disk first.
        assert submitter.targets == [whole(*roots)]
        assert status.error is not None
        assert "transient" in status.error
        await wait_until(lambda: len(sources.open_sources) == 1, "the retry opened the watch")
        await wait_until(lambda: len(submitter.requests) == 2, "the retry reconciled again")
        assert service.status().error is None
        assert any(s.error and "transient" in s.error for s in seen)
    assert not seen[-1].enabled


async def test_repeated_native_failures_fall_back_to_polling(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    sources.open_errors.extend(OSError(f"broken {i}") for i in range(3))
    service = make_service(sources, submitter, roots, retry_delay_s=0.001)
    async with running(service):
        await wait_until(lambda: len(sources.open_sources) == 1, "a watch is open")
        assert sources.current.force_polling
        status = service.status()
        assert status.mode is WatchMode.POLLING
        assert status.error is not None
        assert "polling" in status.error


async def test_a_source_failing_midway_is_reopened_and_reconciled(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    async with running(service):
        first = sources.current
        first.queue.put_nowait(RuntimeError("error in underlying watcher"))
        await wait_until(lambda: len(sources.open_sources) == 2, "reopened")
        assert first.closed
        await wait_until(lambda: len(submitter.requests) == 2, "reconciled after the gap")
        assert submitter.targets == [whole(*roots), whole(*roots)]


async def test_a_missing_root_is_reported_left_out_and_picked_up_when_back(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str], tmp_path: Path
) -> None:
    gone = str(tmp_path / "usb")
    service = make_service(sources, submitter, [*roots, gone])
    async with running(service) as status:
        assert status.error is not None
        assert gone in status.error
        assert sources.current.roots == tuple(roots)
        assert submitter.targets == [whole(*roots)]
        # Changes reported under the missing root are not synced.
        sources.current.queue.put_nowait([PathChange(PathChangeKind.DELETED, f"{gone}/a", is_dir=None)])
        await wait_until(lambda: service.status().last_event_at is not None, "the change arrived")
        await wait_until(lambda: service.status().pending_paths == 0, "the fire went by")
        assert len(submitter.requests) == 1
        os.mkdir(gone)
        await wait_until(lambda: len(sources.open_sources) == 2, "reopened with the root back")
        assert sources.current.roots == (*roots, gone)
        await wait_until(lambda: len(submitter.requests) == 2, "reconciled")
        assert submitter.targets[1] == whole(*roots, gone)
        assert service.status().error is None


async def test_a_root_vanishing_while_watched_is_dropped_from_the_watch(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    async with running(service):
        os.rmdir(roots[1])
        sources.current.queue.put_nowait(RootMissingError(2, "root disappeared", roots[1]))
        await wait_until(lambda: len(sources.open_sources) == 2, "reopened without it")
        assert sources.current.roots == (roots[0],)
        error = service.status().error
        assert error is not None
        assert roots[1] in error


async def test_a_failed_submit_is_reported_and_retried(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    async with running(service):
        submitter.errors.append(RuntimeError("runner closed"))
        sources.current.queue.put_nowait([added_file(f"{roots[0]}/a/x.mp4")])
        await wait_until(lambda: service.status().error is not None, "the failure shows")
        await wait_until(lambda: len(submitter.requests) == 2, "the targets went in on retry")
        assert submitter.targets[1] == (SyncTarget(f"{roots[0]}/a", recursive=False),)
        assert service.status().error is None


async def test_periodic_reconcile(sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]) -> None:
    service = make_service(sources, submitter, roots, reconcile_interval_s=0.02)
    async with running(service):
        await wait_until(lambda: len(submitter.requests) >= 3, "reconciled again and again")
        assert all(t == whole(*roots) for t in submitter.targets)


async def test_overflow_becomes_a_root_rescan(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots, max_pending=5)
    async with running(service):
        sources.current.queue.put_nowait([added_file(f"{roots[0]}/d{i}/{i}.mp4") for i in range(50)])
        await wait_until(lambda: len(submitter.requests) == 2, "fired")
        assert submitter.targets[1] == whole(roots[0])
        assert service.overflows == 1


async def test_a_file_still_growing_is_synced_again_after_a_quiet_period(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots)
    video = Path(roots[0]) / "slow.mp4"
    video.write_bytes(b"x" * 10)
    async with running(service):
        sources.current.queue.put_nowait([added_file(str(video))])
        await wait_until(lambda: len(submitter.requests) == 2, "first sync")
        # It grows with no event at all (as if the event was lost): the second look catches it.
        with video.open("ab") as f:
            f.write(b"y" * 10)
        stat = video.stat()
        os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        await wait_until(lambda: len(submitter.requests) == 3, "synced again")
        assert submitter.targets[2] == (SyncTarget(roots[0], recursive=False),)


async def test_a_file_that_kept_still_is_synced_once(
    sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]
) -> None:
    service = make_service(sources, submitter, roots, settle_ms=10, file_settle_ms=50)
    video = Path(roots[0]) / "done.mp4"
    video.write_bytes(b"x" * 10)
    async with running(service):
        sources.current.queue.put_nowait([added_file(str(video))])
        await wait_until(lambda: len(submitter.requests) == 2, "first sync")
        # The recheck runs one quiet period later; once it is done nothing else is due.
        await wait_until(lambda: service._debouncer.due_at() is None, "recheck done")
        assert len(submitter.requests) == 2


async def test_status_is_published(sources: FakeSources, submitter: RecordingSubmitter, roots: list[str]) -> None:
    seen: list[WatcherStatus] = []

    async def on_status(status: WatcherStatus) -> None:
        seen.append(status)

    service = make_service(sources, submitter, roots, on_status=on_status, settle_ms=60_000, max_wait_ms=60_000)
    await service.start()
    assert seen[-1].enabled
    sources.current.queue.put_nowait([added_file(f"{roots[0]}/a.mp4")])
    await wait_until(lambda: seen[-1].pending_paths == 1, "pending shows")
    assert seen[-1].settle_ms == 60_000
    await service.stop()
    assert not seen[-1].enabled


# --- own writes ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 50.0

    def __call__(self) -> float:
        return self.now_s


def test_own_writes_are_ignored_while_written_and_for_a_grace_period() -> None:
    clock = FakeClock()
    own = OwnWrites(grace_s=2.0, clock=clock)
    assert not own.is_own("/lib/a/out.mp4")
    with own.writing("/lib/a/out.mp4.tmp", "/lib/.scratch"):
        assert own.is_own("/lib/a/out.mp4.tmp")
        assert own.is_own("/lib/.scratch/seg/1.ts")
        assert not own.is_own("/lib/a/out.mp4")
        assert not own.is_own("/lib/.scratch2")
        clock.now_s += 100  # a long write stays ignored
        assert own.is_own("/lib/a/out.mp4.tmp")
    clock.now_s += 1.9
    assert own.is_own("/lib/a/out.mp4.tmp")
    clock.now_s += 0.2
    assert not own.is_own("/lib/a/out.mp4.tmp")
    assert not own.is_own("/lib/.scratch/seg/1.ts")


def test_own_writes_nest() -> None:
    clock = FakeClock()
    own = OwnWrites(grace_s=0.0, clock=clock)
    with own.writing("/lib/x.mp4"):
        with own.writing("/lib/x.mp4"):
            pass
        clock.now_s += 1
        assert own.is_own("/lib/x.mp4")
    clock.now_s += 1
    assert not own.is_own("/lib/x.mp4")
