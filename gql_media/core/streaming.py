"""Playback as a service: decide how a video plays, and make its HLS segments and subtitles on demand.

Standard library only; PyAV's side is the ``SegmentWorkers`` port (worker processes of their
own, so transcodes and the index's probes and thumbnails never wait for each other). Every
replica runs one for the viewers it serves: nothing here goes through the leader.

- A video has up to two HLS streams (``StreamVariant``): MPEG-TS (H.264 copied or transcoded)
  for every player, and fMP4 with its HEVC copied and tagged hvc1 for clients that play HEVC
  (Safari plays HEVC over HLS only so). Each has its own playlist, segments and cache folder.
- A segment is made once: viewers asking for the same one share the making, and the cache
  (``SegmentCache``, byte-bounded LRU) serves it after, the same bytes to every request.
- At most ``slots`` segments are made at once; a request that finds no free slot within
  ``wait_s`` gets ``PlaybackBusy`` (the HTTP layer answers 503 + Retry-After).
- A segment nobody waits for any more is cancelled (its worker is stopped) after a grace, unless
  a viewer asks for it again meanwhile (a player's retry after its own timeout). After a viewer's
  segment, the next ``read_ahead`` ones are made while a slot is free; a request for another
  segment of the same source (a seek) stops the read-ahead and the abandoned ones at once.
- A source that changed or was removed (``LibraryChange`` events) loses its cached files and its
  makings; the cache's variant names hold the source's size and mtime, so a missed event never
  serves stale data, and an event of a file still as it was (a probe's, a thumbnail's) stops nothing.

The module stays one past 400 lines: the sharing, slots, read-ahead, cancellation and invalidation
of segments and init segments all work on one table of makings (``_making``), and subtitles take
the same slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gql_media.core.models import ChangeKind, EntryKind, LibraryChange, VideoStatus
from gql_media.core.playback import (
    Decision,
    PlaybackMethod,
    SegmentSpec,
    SourceStreams,
    StreamVariant,
    decide,
    hevc_copy_blocker,
)
from gql_media.core.ports import MediaError, SegmentWorkers
from gql_media.core.segment_cache import SegmentCache
from gql_media.core.subtitles import SubtitleTrack, decode_subtitle_bytes, sidecar_subtitles, srt_to_vtt
from gql_media.core.vod_plan import DEFAULT_SEGMENT_S, Segment, plan_segments, segment_at

logger = logging.getLogger(__name__)

__all__ = [
    "PlaybackBusy",
    "PlaybackSettings",
    "SegmentWorkers",
    "SourceFile",
    "StreamingService",
    "SubtitleTrack",
]

# Probe results kept in memory (a few hundred bytes each).
_PROBE_CACHE_SIZE = 512
# The init segment of an fMP4 stream, beside its segments in the cache.
_INIT_NAME = "init.mp4"


class PlaybackBusy(Exception):
    """Every transcode slot stayed busy past the wait: try again in ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"every transcode slot is busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A video as playback needs it: the index's row, its file's absolute path."""

    video_id: int
    path: str | bytes
    size: int
    mtime_ns: int
    status: VideoStatus
    error: str | None = None


_CHANGED_WHILE_MADE = "the video changed while its segment was being made; ask again"


@dataclass(frozen=True, slots=True)
class PlaybackSettings:
    """The streaming limits (from ``Settings``)."""

    transcode_enabled: bool = True
    max_height_px: int = 1080
    preset: str = "veryfast"
    slots: int = 1
    wait_s: float = 5.0
    segment_s: float = DEFAULT_SEGMENT_S
    # A transcode's first segments: short, so that playback starts once 1 s of video is made.
    start_segments_s: tuple[float, ...] = (1.0, 1.0, 2.0)
    read_ahead: int = 2
    # A segment whose last viewer left is made on this long: a player that gave up waiting for its
    # first byte asks again at once (hls.js after 10 s), and joins it instead of starting over.
    abandoned_grace_s: float = 5.0


@dataclass(frozen=True, slots=True)
class _Stream:
    """One source's HLS stream ``variant`` as planned: how it is made, its segments, its cache folder."""

    source: SourceFile
    method: PlaybackMethod
    variant: StreamVariant
    segments: list[Segment]
    folder: str

    def path(self, cache: SegmentCache, name: str) -> Path:
        return cache.path_for(str(self.source.video_id), self.folder, name)

    def segment_path(self, cache: SegmentCache, index: int) -> Path:
        return self.path(cache, f"{index}{self.variant.segment_suffix}")


@dataclass(eq=False)
class _Making:
    """One segment being made, shared by whoever waits for it."""

    task: asyncio.Task[Path]
    file: SourceFile  # what it is made from
    index: int
    waiters: int = 0
    read_ahead: bool = False


class StreamingService:
    """Decides playback and makes segments and subtitles; see the module docstring.

    Args:
        workers: the PyAV side (worker processes).
        cache: where made files live.
        settings: limits and transcode options.
    """

    def __init__(self, workers: SegmentWorkers, cache: SegmentCache, settings: PlaybackSettings) -> None:
        self.workers = workers
        self.cache = cache
        self.settings = settings
        self._slots = asyncio.Semaphore(max(1, settings.slots))
        self._making: dict[Path, _Making] = {}
        self._probes: dict[tuple[int, int, int], SourceStreams] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Segments made (not served from the cache), for tests and the bench.
        self.made_segments = 0

    async def start(self) -> None:
        """Index the cache a previous run left (blocking file work, in a thread)."""
        await asyncio.to_thread(self.cache.load)

    async def aclose(self) -> None:
        """Cancel every segment being made."""
        tasks = [making.task for making in self._making.values()] + list(self._background)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # ---------------------------------------------------------------------------------- decide

    async def streams(self, source: SourceFile) -> SourceStreams:
        """The playback probe of ``source`` (kept while its size and mtime stay); raises MediaError."""
        key = (source.video_id, source.size, source.mtime_ns)
        found = self._probes.get(key)
        if found is None:
            found = await self.workers.probe_streams(source.path)
            if len(self._probes) >= _PROBE_CACHE_SIZE:
                self._probes.pop(next(iter(self._probes)))
            self._probes[key] = found
        return found

    async def decide(self, source: SourceFile, direct_codecs: Iterable[str] | None = None) -> Decision:
        """How ``source`` plays for a client that says it plays ``direct_codecs`` too."""
        if source.status is VideoStatus.BROKEN:
            return decide(None, broken_reason=source.error or "the file cannot be decoded")
        try:
            streams = await self.streams(source)
        except MediaError as error:
            return decide(None, broken_reason=str(error))
        return decide(streams, direct_codecs=direct_codecs, transcode_enabled=self.settings.transcode_enabled)

    async def plan(
        self, source: SourceFile, variant: StreamVariant = StreamVariant.MPEGTS
    ) -> tuple[PlaybackMethod, list[Segment]]:
        """The HLS method and segments of ``source``'s stream ``variant``: for MPEG-TS, REMUX or
        TRANSCODE, what a plain browser needs; for HEVC, always a REMUX (the HEVC video copied).

        Raises:
            MediaError: the source plays directly only, or not at all, or has no such stream (with the reason).
        """
        if variant is StreamVariant.HEVC:
            method = PlaybackMethod.REMUX
            if source.status is VideoStatus.BROKEN:
                raise MediaError(source.error or "the file cannot be decoded")
            streams = await self.streams(source)
            blocker = hevc_copy_blocker(streams)
            if blocker is not None:
                raise MediaError(f"no HEVC stream: {blocker}")
        else:
            decision = await self.decide(source, direct_codecs=None)
            if decision.method is PlaybackMethod.UNPLAYABLE:
                raise MediaError(decision.reason or "this video cannot be played")
            if decision.method is PlaybackMethod.DIRECT:
                raise MediaError("this video plays as it is: its stream URL needs no HLS")
            method = decision.method
            streams = await self.streams(source)
        try:
            remux = method is PlaybackMethod.REMUX
            segments = plan_segments(
                streams.duration_s,
                self.settings.segment_s,
                keyframes_s=streams.keyframes_s if remux else (),
                start_segments_s=() if remux else self.settings.start_segments_s,
            )
            return method, segments
        except ValueError as error:
            raise MediaError(f"cannot stream: {error}") from None

    # -------------------------------------------------------------------------------- segments

    async def _stream(self, source: SourceFile, variant: StreamVariant) -> _Stream:
        method, segments = await self.plan(source, variant)
        return _Stream(source, method, variant, segments, self._folder(source, method, variant))

    def _folder(self, source: SourceFile, method: PlaybackMethod, variant: StreamVariant) -> str:
        s = self.settings
        if variant is StreamVariant.HEVC:
            return f"remux-hevc-fmp4-{source.size}-{source.mtime_ns}-{s.segment_s:g}"
        if method is PlaybackMethod.REMUX:
            return f"remux-{source.size}-{source.mtime_ns}-{s.segment_s:g}"
        ramp = "+".join(f"{length:g}" for length in s.start_segments_s)
        return f"transcode-{source.size}-{source.mtime_ns}-{ramp}+{s.segment_s:g}-{s.max_height_px}-{s.preset}"

    async def segment(self, source: SourceFile, index: int, variant: StreamVariant = StreamVariant.MPEGTS) -> Path:
        """The file of segment ``index`` of ``source``'s HLS stream ``variant``, made when not cached.

        Raises:
            IndexError: no such segment.
            MediaError: the source cannot be streamed, or the segment could not be made.
            PlaybackBusy: no transcode slot came free in time.
        """
        stream = await self._stream(source, variant)
        segment = segment_at(stream.segments, index)
        path = stream.segment_path(self.cache, index)
        self._cancel_read_ahead(source.video_id, keep=range(index, index + self.settings.read_ahead + 1))
        if await asyncio.to_thread(self.cache.lookup, path):
            self._read_ahead(stream, index)
            return path
        making = self._joinable(path)
        if making is None:
            self._make_room()
            making = self._track(path, source, index, self._make(stream, segment, path, wait=True))
        return await self._wait_for(making, lambda: self._read_ahead(stream, index))

    async def init_segment(self, source: SourceFile, variant: StreamVariant) -> Path:
        """The init segment of ``source``'s fMP4 stream ``variant`` (``EXT-X-MAP``), made when not cached.

        Raises:
            MediaError: the source has no such stream, or the init could not be made.
            PlaybackBusy: no slot came free in time.
        """
        if not variant.fragmented_mp4:
            raise MediaError(f"the {variant} stream has no init segment")
        stream = await self._stream(source, variant)
        path = stream.path(self.cache, _INIT_NAME)
        if await asyncio.to_thread(self.cache.lookup, path):
            return path
        making = self._joinable(path)
        if making is None:
            self._make_room()
            making = self._track(path, source, -1, self._make_init(stream, path))
        return await self._wait_for(making, lambda: None)

    def _joinable(self, path: Path) -> _Making | None:
        """The making of ``path`` a new viewer may wait for: not one being stopped.

        A making whose last viewer left is cancelled, and stays in the table until its worker is
        stopped and its temp file removed: a viewer asking again meanwhile (hls.js aborts a request
        on a seek and may ask for the same segment at once) starts a new one instead of sharing
        that cancellation. The stopped one never commits its file, so the two never race for it.
        """
        making = self._making.get(path)
        if making is None or making.task.cancelling() or making.task.cancelled():
            return None
        return making

    async def _wait_for(self, making: _Making, then: Callable[[], None]) -> Path:
        """Wait for a shared making; the last waiter to leave stops it.

        Raises:
            MediaError: the making was stopped while this viewer still waited (its source changed).
        """
        making.waiters += 1
        making.read_ahead = False
        try:
            result = await asyncio.shield(making.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this viewer left
            # Stopped by ``drop_sources`` (or the service closing): not this request's cancellation,
            # which would reach the HTTP layer as an error of its own.
            raise MediaError(_CHANGED_WHILE_MADE) from None
        finally:
            making.waiters -= 1
            if making.waiters == 0 and not making.task.done():
                self._abandon(making)
        then()
        return result

    def _abandon(self, making: _Making) -> None:
        """Nobody waits for ``making`` any more: stop its worker, after the grace if one is set."""
        grace_s = self.settings.abandoned_grace_s
        if grace_s <= 0:
            making.task.cancel()
            return

        def stop_if_still_abandoned() -> None:
            if making.waiters == 0 and not making.task.done():
                making.task.cancel()

        asyncio.get_running_loop().call_later(grace_s, stop_if_still_abandoned)

    def _track(self, path: Path, source: SourceFile, index: int, make: Coroutine[object, object, Path]) -> _Making:
        task = asyncio.create_task(make)
        making = _Making(task=task, file=source, index=index)
        self._making[path] = making
        task.add_done_callback(lambda _t: self._forget(path, making))
        return making

    def _forget(self, path: Path, making: _Making) -> None:
        if self._making.get(path) is making:
            del self._making[path]
        if making.task.done() and not making.task.cancelled():
            making.task.exception()  # read-ahead failures are seen by their viewer later, not logged as lost

    async def _make(self, stream: _Stream, segment: Segment, path: Path, wait: bool) -> Path:
        last = segment.index == len(stream.segments) - 1
        async with self._slot(wait):
            streams = await self.streams(stream.source)
            async with self._writing(path) as temp:
                spec = SegmentSpec(
                    path=stream.source.path,
                    method=stream.method,
                    start_s=segment.start_s,
                    end_s=None if last else segment.end_s,
                    output_path=str(temp),
                    rotation_deg=streams.rotation_deg,
                    variant=stream.variant,
                    # The worker checks the fragment's headers against the init already served.
                    init_path=str(path.with_name(_INIT_NAME)) if stream.variant.fragmented_mp4 else None,
                    # What _folder() names the stream by: the cache key and the worker's limits are one.
                    max_height_px=self.settings.max_height_px,
                    preset=self.settings.preset,
                )
                await self.workers.make_segment(spec)
        self.made_segments += 1
        return path

    async def _make_init(self, stream: _Stream, path: Path) -> Path:
        async with self._slot(wait=True), self._writing(path) as temp:
            spec = SegmentSpec(
                path=stream.source.path,
                method=stream.method,
                start_s=0.0,
                end_s=None,
                output_path=str(temp),
                variant=stream.variant,
            )
            await self.workers.make_init_segment(spec)
        return path

    @contextlib.asynccontextmanager
    async def _writing(self, path: Path) -> AsyncIterator[Path]:
        """A temp file to make ``path`` in, committed to the cache as ``path`` when the block ends well.

        A failed or cancelled make leaves no partial file (the worker may have been killed midway).
        """
        temp = await asyncio.to_thread(self.cache.temp_path, path)
        try:
            yield temp
            try:
                await asyncio.to_thread(self.cache.commit, temp, path)
            except FileNotFoundError:  # its folder went with a drop (``drop_changed``) as it was made
                raise MediaError(_CHANGED_WHILE_MADE) from None
        finally:
            await asyncio.to_thread(self.cache.discard, temp)

    @contextlib.asynccontextmanager
    async def _slot(self, wait: bool) -> AsyncIterator[None]:
        if not wait and self._slots.locked():
            raise PlaybackBusy(1)
        try:
            async with asyncio.timeout(self.settings.wait_s if wait else 0.001):
                await self._slots.acquire()
        except TimeoutError:
            raise PlaybackBusy(max(1, math.ceil(self.settings.segment_s))) from None
        try:
            yield
        finally:
            self._slots.release()

    def _read_ahead(self, stream: _Stream, index: int) -> None:
        """Make the next few segments while slots are free (one at a time per source)."""
        if any(m.read_ahead and m.file.video_id == stream.source.video_id for m in self._making.values()):
            return
        task = asyncio.create_task(self._read_ahead_run(stream, index))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _read_ahead_run(self, stream: _Stream, index: int) -> None:
        for ahead in range(index + 1, min(len(stream.segments), index + 1 + self.settings.read_ahead)):
            path = stream.segment_path(self.cache, ahead)
            if path in self._making or await asyncio.to_thread(self.cache.lookup, path):
                continue
            if self._slots.locked():
                return  # viewers first: read-ahead only uses a free slot
            making = self._track(
                path, stream.source, ahead, self._make(stream, stream.segments[ahead], path, wait=False)
            )
            making.read_ahead = True
            try:
                await asyncio.shield(making.task)
            except (MediaError, PlaybackBusy, OSError, asyncio.CancelledError):  # (its viewer will see it)
                return

    def _cancel_read_ahead(self, video_id: int, keep: range) -> None:
        """Stop what nobody waits for of this source outside ``keep``: its read-ahead and the segments abandoned."""
        for making in list(self._making.values()):
            if making.file.video_id == video_id and making.waiters == 0 and making.index not in keep:
                making.task.cancel()

    def _make_room(self) -> None:
        """A viewer needs a slot and none is free: stop every making nobody waits for (viewers first)."""
        if self._slots.locked():
            for making in list(self._making.values()):
                if making.waiters == 0:
                    making.task.cancel()

    # ------------------------------------------------------------------------------- subtitles

    async def subtitles(self, source: SourceFile) -> list[SubtitleTrack]:
        """Sidecar files by the video's stem, then the embedded text streams."""
        tracks = await asyncio.to_thread(_sidecars, source.path)
        if source.status is not VideoStatus.BROKEN:
            with contextlib.suppress(MediaError):
                for stream in (await self.streams(source)).subtitles:
                    if stream.is_text:
                        label = stream.title or stream.language or f"Track {stream.index}"
                        tracks.append(SubtitleTrack(key=f"s:{stream.index}", language=stream.language, label=label))
        return tracks

    async def subtitle_vtt(self, source: SourceFile, key: str) -> bytes:
        """The WebVTT of track ``key``; raises LookupError for an unknown track, MediaError when it cannot be made."""
        if key not in {track.key for track in await self.subtitles(source)}:
            raise LookupError(f"no subtitle track {key!r}")
        kind, _, name = key.partition(":")
        if kind == "f":
            return await asyncio.to_thread(_sidecar_vtt, source.path, name)
        variant = f"subtitles-{source.size}-{source.mtime_ns}"
        path = self.cache.path_for(str(source.video_id), variant, f"{int(name)}.vtt")
        if not await asyncio.to_thread(self.cache.lookup, path):
            async with self._writing(path) as temp, self._slot(wait=True):
                await self.workers.make_subtitle(source.path, int(name), str(temp))
        return await asyncio.to_thread(path.read_bytes)

    # ---------------------------------------------------------------------------- invalidation

    async def drop_source(self, video_id: int) -> None:
        """Forget everything made from video ``video_id`` (it changed or was removed)."""
        await self.drop_sources([video_id])

    async def drop_sources(self, video_ids: Sequence[int]) -> None:
        """Forget everything made from these videos: one pass over what is in memory, one thread for the disk."""
        await self.drop_changed(dict.fromkeys(video_ids))

    async def drop_changed(self, files: Mapping[int, str | None]) -> None:
        """Forget what was made from these videos' files as they were: ``files`` maps a video id to
        its file's path (None: gone, or unknown). What was made from a file still as it is stays:
        a probe or a new thumbnail reports a video UPDATED, and that must not stop its viewers'
        segments. Its size and mtime, in the names of what is made (``_folder``), tell the two apart.
        """
        # A file is looked at only when something was made from it: 10,000 videos probed cost no stat.
        held = {making.file.video_id for making in self._making.values()} | {key[0] for key in self._probes}
        looked_up = {video_id: path for video_id, path in files.items() if path is not None and video_id in held}
        stamps = await asyncio.to_thread(_stamps, looked_up) if looked_up else {}

        def stale(video_id: int, size: int, mtime_ns: int) -> bool:
            return video_id in files and stamps.get(video_id) != (size, mtime_ns)

        for key in [key for key in self._probes if stale(*key)]:
            del self._probes[key]
        # The makings stop before their files go (one committing meanwhile finds its temp file gone: ``_writing``).
        for making in list(self._making.values()):
            source = making.file
            if stale(source.video_id, source.size, source.mtime_ns):
                making.task.cancel()
        freed = await asyncio.to_thread(_drop_stale, self.cache, files, stamps)
        for video_id, count in freed:
            logger.info("playback cache of video %d dropped (%d bytes)", video_id, count)

    async def follow_changes(self, changes: AsyncIterator[LibraryChange]) -> None:
        """Drop the cache of every video a sync reports UPDATED or REMOVED (run as a task).

        The drops go in batches: the videos reported while one batch is dropped go together in the
        next. A sync publishes a change per probed video (10,000 in bench P9's), and a thread call
        per change kept the event loop and the GIL busy beside the queries for the whole step.
        """
        pending: dict[int, str | None] = {}
        dropping: asyncio.Task[None] | None = None
        try:
            async for change in changes:
                changed = change.kind in (ChangeKind.UPDATED, ChangeKind.REMOVED)
                if changed and change.entry_kind is EntryKind.VIDEO and change.id is not None:
                    path = None
                    if change.kind is ChangeKind.UPDATED and change.root_path is not None and change.path is not None:
                        path = os.path.join(change.root_path, change.path)
                    # A removal seen first stays one (None): its file is gone whatever came after.
                    if change.id not in pending or pending[change.id] is not None:
                        pending[change.id] = path
                    if dropping is None or dropping.done():
                        dropping = asyncio.create_task(self._drop_pending(pending))
            if dropping is not None:
                await dropping
        finally:
            if dropping is not None and not dropping.done():
                dropping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dropping

    async def _drop_pending(self, pending: dict[int, str | None]) -> None:
        while pending:
            files = dict(pending)
            pending.clear()
            try:
                await self.drop_changed(files)
            except Exception:  # the variant names still keep a stale file from being served
                logger.exception("could not drop the playback cache of %d videos", len(files))


def _stamp(path: str | None) -> tuple[int, int] | None:
    """The size and mtime of the file at ``path`` now; None when it is gone (or unknown)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _made_from(variant: str, stamp: tuple[int, int] | None) -> bool:
    """Whether a variant folder's name (``_folder``, ``subtitle_vtt``) names a file of this size and mtime."""
    if stamp is None:
        return False
    token = f"-{stamp[0]}-{stamp[1]}"
    at = variant.find(token)
    return at >= 0 and variant[at + len(token) : at + len(token) + 1] in ("", "-")


def _stamps(files: Mapping[int, str | None]) -> dict[int, tuple[int, int] | None]:
    return {video_id: _stamp(path) for video_id, path in files.items()}


def _drop_stale(
    cache: SegmentCache, files: Mapping[int, str | None], known: Mapping[int, tuple[int, int] | None]
) -> list[tuple[int, int]]:
    """What ``cache`` dropped of ``files``' videos: every file not made from its video's file as it is
    now (``known``: some stamps already taken). The videos that had some, with the bytes freed.
    """
    stamps = dict(known)

    def keep(source: str, variant: str) -> bool:
        video_id = int(source)
        if video_id not in stamps:
            stamps[video_id] = _stamp(files.get(video_id))
        return _made_from(variant, stamps[video_id])

    freed = cache.drop_sources((str(video_id) for video_id in files), keep)
    return [(video_id, freed[str(video_id)]) for video_id in files if str(video_id) in freed]


def _folder_and_name(path: str | bytes) -> tuple[str, str]:
    text = os.fsdecode(path)
    return os.path.dirname(text), os.path.basename(text)


def _sidecars(path: str | bytes) -> list[SubtitleTrack]:
    folder, name = _folder_and_name(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sidecar_subtitles(name, names)


def _sidecar_vtt(path: str | bytes, sidecar_name: str) -> bytes:
    folder, _name = _folder_and_name(path)
    if os.sep in sidecar_name or sidecar_name in (".", ".."):
        raise LookupError("not a sidecar name")
    with open(os.path.join(folder, sidecar_name), "rb") as handle:
        data = handle.read()
    return srt_to_vtt(decode_subtitle_bytes(data)).encode("utf-8")
