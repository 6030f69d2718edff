"""The streaming service on real PyAV workers: sharing, read-ahead, cancellation, the busy limit, the cache bound."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest

from gql_media.adapters.media.transcode import PyAvSegmentWorkers
from gql_media.core.models import ChangeKind, EntryKind, LibraryChange, VideoStatus
from gql_media.core.ports import MediaError
from gql_media.core.segment_cache import TEMP_MARKER, SegmentCache
from gql_media.core.streaming import PlaybackBusy, PlaybackSettings, SourceFile, StreamingService
from tests.playback_sources import SLOW, SOURCES, encode_source


@dataclass
class Rig:
    service: StreamingService
    workers: PyAvSegmentWorkers
    cache: SegmentCache


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("streaming-sources")
    return {
        "avi": encode_source(folder, SOURCES["avi_mpeg4_mp3"]),
        "mkv": encode_source(folder, SOURCES["mkv_h264"]),
        "slow": encode_source(folder, SLOW),
    }


def _source(video_id: int, path: Path) -> SourceFile:
    st = path.stat()
    return SourceFile(video_id, str(path), st.st_size, st.st_mtime_ns, VideoStatus.READY)


async def _rig(tmp_path: Path, max_bytes: int = 1 << 30, preset: str = "ultrafast", **limits: float) -> Rig:
    workers = PyAvSegmentWorkers(workers=2, timeout_s=60)
    cache = SegmentCache(tmp_path / "cache", max_bytes)
    settings = PlaybackSettings(
        slots=1,
        segment_s=limits.get("segment_s", 1.0),
        wait_s=limits.get("wait_s", 5.0),
        read_ahead=int(limits.get("read_ahead", 0)),
        start_segments_s=(),
        preset=preset,
        max_height_px=int(limits.get("max_height_px", 1080)),
        abandoned_grace_s=limits.get("abandoned_grace_s", 0.5),
    )
    service = StreamingService(workers, cache, settings)
    await service.start()
    return Rig(service, workers, cache)


@pytest.fixture
async def rigs() -> AsyncIterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        await rig.service.aclose()
        await rig.workers.aclose()


async def _until(condition: object, what: str) -> None:
    for _ in range(2000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def _files(cache: SegmentCache) -> list[Path]:
    return sorted(p for p in cache.root.rglob("*") if p.is_file())


async def _being_made(rig: Rig, what: str = "the worker writing the segment") -> None:
    await _until(lambda: any(TEMP_MARKER in p.name for p in _files(rig.cache)), what)


async def _viewer_left(rig: Rig, source: SourceFile, index: int) -> None:
    """A viewer asks for segment ``index`` and leaves once its worker is writing it."""
    viewer = asyncio.create_task(rig.service.segment(source, index))
    await _being_made(rig)
    viewer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await viewer


async def test_viewers_of_one_segment_share_its_making(tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]) -> None:
    rig = await _rig(tmp_path)
    rigs.append(rig)
    source = _source(1, clips["avi"])
    first, second = await asyncio.gather(rig.service.segment(source, 2), rig.service.segment(source, 2))
    assert first == second and first.is_file()
    assert rig.service.made_segments == 1
    assert await rig.service.segment(source, 2) == first  # from the cache
    assert rig.service.made_segments == 1
    with pytest.raises(IndexError):
        await rig.service.segment(source, 99)


async def test_the_workers_transcode_to_the_services_limits(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    # The settings that name the cache folder are the ones the worker is given, not a copy of its own.
    rig = await _rig(tmp_path, max_height_px=32)
    rigs.append(rig)
    made = await rig.service.segment(_source(1, clips["avi"]), 0)
    assert "-32-ultrafast" in made.parent.name
    with av.open(str(made)) as segment:
        assert (segment.streams.video[0].width, segment.streams.video[0].height) == (48, 32)


async def test_the_next_segments_are_made_ahead(tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]) -> None:
    rig = await _rig(tmp_path, read_ahead=2)
    rigs.append(rig)
    source = _source(1, clips["mkv"])
    first = await rig.service.segment(source, 0)

    def made_ahead() -> list[Path]:
        return [p for p in _files(rig.cache) if TEMP_MARKER not in p.name and p != first]

    await _until(lambda: len(made_ahead()) == 2, "segments 1 and 2 made ahead")
    second = min(made_ahead(), key=lambda p: p.name)
    inode = second.stat().st_ino
    assert await rig.service.segment(source, 1) == second
    assert second.stat().st_ino == inode  # served as it was made ahead, not made again


async def test_a_segment_nobody_waits_for_is_cancelled(tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]) -> None:
    rig = await _rig(tmp_path, preset="veryslow", segment_s=12.0)
    rigs.append(rig)
    viewer = asyncio.create_task(rig.service.segment(_source(1, clips["slow"]), 0))
    await _being_made(rig)
    viewer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await viewer
    await _until(lambda: rig.workers.replaced_workers == 1, "the busy worker stopped")
    await _until(lambda: not _files(rig.cache), "the partial file removed")
    assert rig.service.made_segments == 0


async def test_past_the_slots_a_request_waits_then_is_told_busy(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    rig = await _rig(tmp_path, preset="veryslow", segment_s=12.0, wait_s=0.2)
    rigs.append(rig)
    holder = asyncio.create_task(rig.service.segment(_source(1, clips["slow"]), 0))
    await _being_made(rig, "the only slot taken")
    with pytest.raises(PlaybackBusy) as busy:
        await rig.service.segment(_source(2, clips["avi"]), 0)
    assert busy.value.retry_after_s >= 1
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    # Once the slot is free again, the same request is served.
    assert (await rig.service.segment(_source(2, clips["avi"]), 0)).is_file()


async def test_the_cache_stays_within_its_bound(tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]) -> None:
    probe = await _rig(tmp_path / "probe")
    rigs.append(probe)
    one_segment = (await probe.service.segment(_source(1, clips["avi"]), 0)).stat().st_size
    rig = await _rig(tmp_path / "bounded", max_bytes=int(one_segment * 2.5))
    rigs.append(rig)
    source = _source(1, clips["avi"])
    for index in range(5):
        await rig.service.segment(source, index)
        assert rig.cache.total_bytes <= rig.cache.max_bytes
        assert sum(p.stat().st_size for p in _files(rig.cache)) <= rig.cache.max_bytes
    assert rig.service.made_segments == 5
    await rig.service.segment(source, 0)  # evicted long ago: made again
    assert rig.service.made_segments == 6


async def test_a_change_event_drops_the_sources_files(tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]) -> None:
    rig = await _rig(tmp_path)
    rigs.append(rig)
    kept, dropped = _source(1, clips["avi"]), _source(2, clips["mkv"])
    await rig.service.segment(kept, 0)
    await rig.service.segment(dropped, 0)

    async def changes() -> AsyncIterator[LibraryChange]:
        yield LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, 2, 1, "/lib", "h264 clip.mkv")

    await rig.service.follow_changes(changes())
    assert [p.parent.parent.name for p in _files(rig.cache)] == ["1"]


async def test_an_update_of_an_unchanged_file_stops_nothing(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    # A probe or a thumbnail reports the video UPDATED while it plays: its file is as it was, so
    # its segment being made and those made stay (stopping them stalled the player on a 409).
    rig = await _rig(tmp_path, preset="veryslow", segment_s=4.0)
    rigs.append(rig)
    clip = clips["slow"]
    made = await rig.service.segment(_source(1, clips["mkv"]), 0)
    viewer = asyncio.create_task(rig.service.segment(_source(2, clip), 0))
    await _being_made(rig)

    async def changes() -> AsyncIterator[LibraryChange]:
        yield LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, 1, 1, str(clips["mkv"].parent), clips["mkv"].name)
        yield LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, 2, 1, str(clip.parent), clip.name)

    await rig.service.follow_changes(changes())
    assert (await viewer).is_file()
    assert made.is_file()
    assert rig.workers.replaced_workers == 0
    # Once the file changes, the same event drops what was made from it as it was.
    clip.touch()
    await rig.service.follow_changes(changes())
    assert [p.parent.parent.name for p in _files(rig.cache)] == ["1"]


async def test_changes_during_a_drop_are_dropped_in_the_next_batch(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    rig = await _rig(tmp_path)
    rigs.append(rig)
    sources = [_source(1, clips["avi"]), _source(2, clips["mkv"]), _source(3, clips["avi"])]
    for source in sources:
        await rig.service.segment(source, 0)
    drops: list[list[int]] = []
    drop_changed = rig.service.drop_changed

    async def recorded(files: Mapping[int, str | None]) -> None:
        drops.append(list(files))
        await drop_changed(files)

    rig.service.drop_changed = recorded  # type: ignore[method-assign]

    async def changes() -> AsyncIterator[LibraryChange]:
        yield LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, 2, 1, "/lib", "h264 clip.mkv")
        await asyncio.sleep(0)  # the first drop starts with video 2 alone
        yield LibraryChange(ChangeKind.UPDATED, EntryKind.FOLDER, 1, 1, "/lib", "a folder")  # a folder: no drop
        yield LibraryChange(ChangeKind.REMOVED, EntryKind.VIDEO, 3, 1, "/lib", "gone.avi")
        yield LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, 3, 1, "/lib", "gone.avi")

    await rig.service.follow_changes(changes())
    assert drops == [[2], [3]]
    assert [p.parent.parent.name for p in _files(rig.cache)] == ["1"]


async def test_a_seek_elsewhere_cancels_the_read_ahead(tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]) -> None:
    rig = await _rig(tmp_path, preset="veryslow", segment_s=1.0, read_ahead=1)
    rigs.append(rig)
    source = _source(1, clips["slow"])
    first = await rig.service.segment(source, 0)
    # Segment 1 is being made ahead; the viewer jumps to segment 4 instead.
    await _being_made(rig, "segment 1 made ahead")
    rig.service.settings = replace(rig.service.settings, read_ahead=0)  # nothing more ahead after the seek
    fourth = await rig.service.segment(source, 4)
    assert rig.workers.replaced_workers == 1  # the read-ahead's worker was stopped
    assert sorted(p.name for p in _files(rig.cache)) == sorted([first.name, fourth.name])


async def test_a_viewer_asking_again_within_the_grace_joins_the_making(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    # hls.js gives up on a segment's first byte after 10 s and asks again at once: under load a
    # segment can take longer than that, and starting it over each time would never finish it.
    rig = await _rig(tmp_path, preset="veryslow", segment_s=4.0, abandoned_grace_s=30.0)
    rigs.append(rig)
    source = _source(1, clips["slow"])
    await _viewer_left(rig, source, 0)
    assert (await rig.service.segment(source, 0)).is_file()
    assert rig.workers.replaced_workers == 0  # the same making, never stopped
    assert rig.service.made_segments == 1


async def test_a_seek_elsewhere_stops_an_abandoned_segment_at_once(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    rig = await _rig(tmp_path, preset="veryslow", segment_s=1.0, abandoned_grace_s=30.0)
    rigs.append(rig)
    source = _source(1, clips["slow"])
    await _viewer_left(rig, source, 0)
    # The only slot is not held for the grace: the viewer moved on.
    assert (await rig.service.segment(source, 4)).is_file()
    assert rig.workers.replaced_workers == 1
    assert rig.service.made_segments == 1


async def test_a_viewer_asking_again_as_its_making_stops_gets_the_segment(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    # hls.js aborts a segment's request on a seek and may ask for the same one at once: the making
    # the first request leaves is being stopped (its worker killed, its temp file removed) when the
    # second comes (no grace here). The second must get the segment made again, not that making's
    # cancellation (which reached the HTTP layer as a 500).
    rig = await _rig(tmp_path, preset="veryslow", segment_s=4.0, abandoned_grace_s=0.0)
    rigs.append(rig)
    source = _source(1, clips["slow"])
    await _viewer_left(rig, source, 0)
    again = await rig.service.segment(source, 0)
    assert again.is_file()
    assert rig.workers.replaced_workers == 1  # the first making was stopped, not joined
    assert rig.service.made_segments == 1


async def test_a_viewer_whose_making_is_stopped_for_a_change_is_told_why(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    rig = await _rig(tmp_path, preset="veryslow", segment_s=12.0)
    rigs.append(rig)
    viewer = asyncio.create_task(rig.service.segment(_source(1, clips["slow"]), 0))
    await _being_made(rig)
    await rig.service.drop_source(1)  # the file changed on disk: its makings stop
    with pytest.raises(MediaError, match="changed"):
        await viewer


async def test_a_segment_whose_folder_goes_as_it_is_made_is_told_why(
    tmp_path: Path, clips: dict[str, Path], rigs: list[Rig]
) -> None:
    # A drop of a changed file removes its folders in a thread while a segment of it may be
    # finishing: that viewer is told the video changed (409), not a missing file (500).
    rig = await _rig(tmp_path, preset="veryslow", segment_s=1.0)
    rigs.append(rig)
    viewer = asyncio.create_task(rig.service.segment(_source(1, clips["slow"]), 0))
    await _being_made(rig)
    shutil.rmtree(rig.cache.root / "1")
    with pytest.raises(MediaError, match="changed"):
        await viewer
    assert not _files(rig.cache)
