"""Merging an HLS download into one mp4 by stream copy, verified before it gets its final name.

Runs inside a media worker (``pool``). The steps, each public so a variant of the merge (a test's
stalled one) is built from the same parts:
1. ``claimed_temp_file``: the temp name is created exclusively, and removed on any failure;
2. ``remux_to``: each track (the video variant, maybe its alternate audio) read as one byte
   stream (``segments``) is stream-copied into the temp file, the tracks interleaved, their clock
   started at zero and made monotonic across discontinuities; the disk starts on the temp file's
   pages while it grows (``writeback``), so the fsync after it has little left to wait for. A
   large one-track MPEG-TS download has most of its segments demuxed by the worker's helper
   process (``tail_demux``), their packets muxed through the same loop as the helper reports
   them: the same file;
3. ``publish_merge``: fsync (in a thread, beside the verify), verify (from the mp4's index:
   streams, packets per stream, duration; a frame decoded at each end), link to a free final
   name (never over an existing file), fsync the folder (in the thread, beside the writing of
   the "merged" marker) and return once it is done.

One module past 400 lines: the per-packet loop, the helper's part of it and the checks of what
the loop counted (segments read, packets per stream in the verify) share the loop's state.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import dataclasses
import errno
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import av

from gql_media.adapters.media.hls_reader import TrackReader
from gql_media.adapters.media.probe import duration_s
from gql_media.adapters.media.tail_demux import (
    TailHelper,
    TailUnavailable,
    cpu_busy,
    fork_available,
    segment_finder,
    tail_start,
)
from gql_media.adapters.media.writeback import early_writeback
from gql_media.core.hls import (
    MERGE_DURATION_TOLERANCE_S,
    HlsPlaylist,
    HlsSegment,
    HlsTrack,
    free_output_path,
    write_marker,
)
from gql_media.core.ports import MediaError

__all__ = ["RemuxedStreams", "claimed_temp_file", "merge_hls", "publish_merge", "remux_to"]


@dataclass(frozen=True, slots=True)
class RemuxedStreams:
    """How many streams of each kind the segments held (and the merged file must hold), and the
    packets muxed into each output stream (in its order; the merged file's index must list as many)."""

    video: int
    audio: int
    packets: tuple[int, ...] = ()


@contextlib.contextmanager
def claimed_temp_file(temp_path: str) -> Iterator[None]:
    """Create ``temp_path`` exclusively (the name is ours alone); remove it if the block fails."""
    os.close(os.open(temp_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise


# A download smaller than this is merged by one process: the helper's request and its start-up
# cost about what a second process gains.
SPLIT_MIN_BYTES = 4_000_000
# The share of the segments' bytes the helper demuxes, and its most (its packets wait in memory
# until the merge ends). This process demuxes and muxes the rest first, then muxes the helper's
# packets as they come: the two should end together. 60 s 720p in ten segments, medians of 40-50
# remuxes alternating: the helper from the second segment (0.85 and 0.9) 26.2-27.1 ms, this
# process waiting 4.5-6.4 ms of it for the helper's reports; from the third (0.8, 0.75) 23.4-24.0
# ms, waiting 0.1-0.2 ms; from the fourth (0.7) 25.4 ms.
_TAIL_SHARE = 0.8
_TAIL_MAX_BYTES = 128_000_000


def remux_to(
    playlist: HlsPlaylist, temp_path: str, split_min_bytes: int | None = SPLIT_MIN_BYTES, when_busy: bool = False
) -> RemuxedStreams:
    """Stream-copy the playlist's segments into an mp4 at ``temp_path``.

    A one-track MPEG-TS download of ``split_min_bytes`` or more (None: never) has most of its
    segments demuxed by a helper process while this one remuxes the first ones, then muxes the
    helper's packets as they come (``tail_demux``), where this process may fork and, unless
    ``when_busy``, while the CPU is not saturated; the same file.
    """
    try:
        usable = fork_available() and (when_busy or not cpu_busy())
        plan = _tail_plan(playlist, split_min_bytes) if usable else None
        if plan is not None:
            try:
                return _remux(playlist, temp_path, plan)
            except TailUnavailable:
                pass  # the helper could not: the whole merge again, in this process alone
        return _remux(playlist, temp_path, None)
    except av.FFmpegError as error:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise
        reason = error.strerror or str(error)
        raise MediaError(f"the segments cannot be remuxed, damaged segments? ({reason})") from error


# Opening a source, ``avformat_find_stream_info`` would decode ~20 frames of each stream to guess a
# frame rate a stream copy never uses (a 720p TS track: 8.7 -> 2.8 ms of CPU); the codec
# parameters the mp4 needs (size, extradata) come from the parser all the same.
_OPEN_OPTIONS = {"fpsprobesize": "0"}
# A track FFmpeg reads itself (``TrackReader.direct_url``) is seekable: without this the MPEG-TS
# demuxer would read the end of the track at its opening to estimate a duration no one reads.
_DIRECT_OPTIONS = {**_OPEN_OPTIONS, "skip_estimate_duration_from_pts": "1"}
# The merged mp4, opened to be verified: its index gives all the verify reads (streams, packets,
# durations) and it decodes its frames itself, so the probe reads one packet, not frames of each
# stream for pixel and sample formats (60 s 720p, medians of 30: the verify's CPU 2.75 -> 2.17 ms).
_VERIFY_OPTIONS = {"fpsprobesize": "0", "probesize": "32", "analyzeduration": "0"}
# What the demuxer asks of the track's reader at a time: PyAV's default 32 KB means a Python call
# (and a bytes object) per 32 KB of segments.
_READ_BUFFER_BYTES = 1 << 20


@dataclass(slots=True)
class _Stream:
    """One stream being copied: its output stream, clock shift, last dts and packets muxed."""

    output: Any
    shift: int
    last_dts: int | None = None
    muxed: int = 0
    crossed: int = 0  # the last discontinuity (segment index) this stream was rebased at


@dataclass
class _Input:
    """One track being read: its reader, demuxer and streams, and what each of its pieces gave."""

    number: int
    track: HlsTrack
    reader: TrackReader
    source: Any
    streams: list[Any]
    packets_per_piece: list[int]
    # Per segment: the latest segment at or before it that starts after a discontinuity (0: none).
    discontinuity_at: list[int] = field(default_factory=list)
    copies: dict[int, _Stream] = field(default_factory=dict)  # source stream index -> its copy


def _open_track(number: int, track: HlsTrack, stack: contextlib.ExitStack) -> _Input:
    reader = TrackReader(track)
    stack.callback(reader.close)
    container_format = "mp4" if track.is_fragmented_mp4 else "mpegts"
    url = None if track.is_fragmented_mp4 else reader.direct_url()
    source: Any
    if url is not None:
        source = stack.enter_context(av.open(url, format=container_format, options=_DIRECT_OPTIONS))
    else:
        source = stack.enter_context(
            av.open(reader, format=container_format, options=_OPEN_OPTIONS, buffer_size=_READ_BUFFER_BYTES)
        )
    streams = [s for s in source.streams if s.type in ("video", "audio")]
    latest, discontinuity_at = 0, []
    for index, segment in enumerate(track.segments):
        latest = index if segment.discontinuity and index > 0 else latest
        discontinuity_at.append(latest)
    return _Input(number, track, reader, source, streams, [0] * len(reader.pieces), discontinuity_at)


# A packet to copy: its input, the packet, and the piece (of the input's reader) it starts in (-1: unknown).
_Entry = tuple["_Input", Any, int]


def _packets(item: _Input, stop_piece: int | None = None) -> Iterator[_Entry]:
    """The input's packets with their pieces; with ``stop_piece``, those before it (a child has the rest)."""
    boundaries = item.reader.boundaries
    left = {stream.index for stream in item.streams}
    for packet in item.source.demux(*item.streams):
        position = packet.pos
        piece = bisect.bisect_right(boundaries, position) - 1 if position is not None and position >= 0 else -1
        if stop_piece is not None and piece >= stop_piece:
            # A stream's packets come in byte order: this stream is done (its packet is the child's).
            left.discard(packet.stream_index)
            if not left:
                return
            continue
        yield item, packet, piece


def _interleaved(inputs: Sequence[_Input]) -> Iterator[_Entry]:
    """The inputs' packets, the earliest on the download's shared clock first (one input: as they come)."""
    if len(inputs) == 1:
        return _packets(inputs[0])
    return _merged(inputs)


def _merged(inputs: Sequence[_Input]) -> Iterator[_Entry]:
    # Time bases as floats, once: a Fraction per packet cost more than the remux itself.
    seconds_per_tick = {(item.number, s.index): float(s.time_base) for item in inputs for s in item.streams}

    def time_s(entry: _Entry) -> float:
        item, packet, _ = entry
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is None:
            return float("inf")  # the demuxer's end-of-stream packets: last
        return float(stamp) * seconds_per_tick[(item.number, packet.stream_index)]

    iterators = [_packets(item) for item in inputs]
    heads = [next(iterator, None) for iterator in iterators]
    while True:
        live = [(time_s(head), index) for index, head in enumerate(heads) if head is not None]
        if not live:
            return
        _, index = min(live)
        head = heads[index]
        assert head is not None
        yield head
        heads[index] = next(iterators[index], None)


def _remux(playlist: HlsPlaylist, temp_path: str, plan: tuple[int, int] | None) -> RemuxedStreams:
    """The remux; with ``plan`` (the segment a helper starts at, the bytes it reads) in two processes."""
    helper = _tail_helper() if plan is not None else None  # forked before this merge opens a file
    try:
        return _remux_with(playlist, temp_path, plan, helper)
    finally:
        if helper is not None:
            _done_with(helper)


def _remux_with(
    playlist: HlsPlaylist, temp_path: str, plan: tuple[int, int] | None, helper: TailHelper | None
) -> RemuxedStreams:
    tracks = [playlist.video, *([playlist.audio] if playlist.audio else [])]
    if plan is not None and helper is not None:
        # Asked first: the helper opens its segments while this process opens its own (the open
        # reads and parses the first packets); ``packets`` checks the streams it found against ours.
        helper.start(playlist.video, *plan)
    with contextlib.ExitStack() as stack:
        inputs = [_open_track(number, track, stack) for number, track in enumerate(tracks)]
        # Counted now: a stream must not be touched once its container is closed (segfault).
        video_streams = sum(1 for s in inputs[0].streams if s.type == "video")
        audio_streams = sum(1 for item in inputs for s in item.streams if s.type == "audio")
        if not video_streams:
            raise MediaError("the segments hold no video stream")
        # One start for all tracks: a variant and its audio rendition share the clock (A/V stays in sync).
        starts = [float(i.source.start_time) / av.time_base for i in inputs if i.source.start_time is not None]
        start_s = min(starts) if starts else 0.0
        kick = stack.enter_context(early_writeback(temp_path))
        with av.open(temp_path, "w", format="mp4") as output:
            muxed: list[_Stream] = []
            for item in inputs:
                for stream in item.streams:
                    output_stream = _output_stream(output, stream, item)
                    copy = _Stream(output_stream, int(start_s / stream.time_base))
                    item.copies[stream.index] = copy
                    muxed.append(copy)
            entries = _interleaved(inputs)
            if plan is not None and helper is not None:
                item = inputs[0]
                head = _packets(item, item.reader.first_segment + plan[0])
                entries = itertools.chain(head, _tail_entries(item, helper))
            _copy_packets(entries, output.mux_one, kick)
        for item in inputs:
            _check_every_segment_read(item)
    return RemuxedStreams(video=video_streams, audio=audio_streams, packets=tuple(c.muxed for c in muxed))


def _tail_plan(playlist: HlsPlaylist, split_min_bytes: int | None) -> tuple[int, int] | None:
    """Where a helper starts demuxing (segment index) and the bytes it reads; None: one process."""
    track = playlist.video
    # MPEG-TS segments start afresh; fMP4 fragments may lean on earlier ones (no tfdt), and a
    # discontinuity may bring new stream ids that the one-process demux would not copy.
    if split_min_bytes is None or playlist.audio is not None or track.is_fragmented_mp4:
        return None
    if any(segment.discontinuity for segment in track.segments[1:]):
        return None
    sizes = [_segment_bytes(segment) for segment in track.segments]
    start = tail_start(sizes, split_min_bytes, _TAIL_MAX_BYTES, _TAIL_SHARE)
    return None if start is None else (start, sum(sizes[start:]))


def _segment_bytes(segment: HlsSegment) -> int:
    return segment.byte_range.length if segment.byte_range else os.path.getsize(segment.path)


# The worker's helper, forked at its first two-process merge and kept (see ``tail_demux``).
_helper: TailHelper | None = None


def _tail_helper() -> TailHelper:
    global _helper
    if _helper is not None and (_helper.busy or not _helper.alive):
        _helper.stop()
        _helper = None
    if _helper is None:
        _helper = TailHelper(_open_tail)
    return _helper


def _done_with(helper: TailHelper) -> None:
    global _helper
    if helper.busy:  # the merge failed while the helper worked: its late reply must not answer the next
        helper.stop()
        if _helper is helper:
            _helper = None
    else:
        helper.release()


def _open_tail(track: HlsTrack, start: int, stack: contextlib.ExitStack) -> tuple[list[Any], Iterator[Any], Any]:
    """In the helper: the track from segment ``start`` on, opened afresh."""
    item = _open_track(0, dataclasses.replace(track, segments=track.segments[start:]), stack)
    finder = segment_finder(item.reader.boundaries, item.reader.first_segment, start)
    return item.streams, item.source.demux(*item.streams), finder


def _tail_entries(item: _Input, helper: TailHelper) -> Iterator[_Entry]:
    return helper.packets(item.streams, item, item.reader.first_segment)


def _output_stream(output: Any, source: Any, item: _Input) -> Any:
    """The mp4's copy of ``source``; HEVC tagged ``hvc1`` wherever that is true of its samples.

    Safari plays HEVC in MP4 only as ``hvc1`` (parameter sets in the sample entry alone), and the
    web UI asks for ``hvc1`` before playing HEVC directly; FFmpeg's default is ``hev1``. From
    MPEG-TS (Annex B) FFmpeg's muxer moves the in-band parameter sets into the sample entry when
    the tag is ``hvc1`` (so not across a discontinuity, where they may change: that stays ``hev1``);
    fMP4 samples are copied as they are, so such a source keeps its own tag (a template's tag is
    dropped: without this an ``hvc1`` download came out ``hev1``).
    """
    stream = output.add_stream_from_template(source)
    if source.codec_context.name == "hevc":
        if item.track.is_fragmented_mp4:
            tag = source.codec_context.codec_tag
        else:
            tag = "hev1" if item.discontinuity_at[-1] else "hvc1"
        if tag in ("hvc1", "hev1"):
            stream.codec_context.codec_tag = tag
    return stream


# Packets muxed between two starts of the temp file's writeback: about 1 MB of 720p.
_WRITEBACK_PACKETS = 256


def _copy_packets(entries: Iterator[_Entry], mux: Callable[[Any], None], kick_writeback: Callable[[], None]) -> None:
    """Mux every packet of ``entries``, its clock started at zero and kept monotonic.

    The one loop run per packet (thousands a minute of video): it reads each PyAV property once
    and calls no Python function of its own, except at a discontinuity and every
    ``_WRITEBACK_PACKETS`` (the disk starts on what is written, see ``writeback``).
    """
    count = 0
    for item, packet, piece in entries:
        dts, pts = packet.dts, packet.pts
        if dts is None:
            if pts is None:
                continue  # the demuxer's end-of-stream packets
            dts = pts
        elif pts is None:
            pts = dts
        copy = item.copies[packet.stream_index]
        if piece >= 0:
            item.packets_per_piece[piece] += 1
            if item.discontinuity_at[-1]:
                _rebase_at_discontinuity(item, piece, copy, dts, packet.duration)
        shifted = dts - copy.shift
        last = copy.last_dts
        if last is not None and shifted <= last:
            # The clock still jumps back (a glitch, not a marked discontinuity): move it on.
            step = packet.duration or 1
            copy.shift += last + step - shifted
            shifted = last + step
        packet.dts = shifted
        packet.pts = pts - copy.shift
        copy.last_dts = shifted
        copy.muxed += 1
        packet.stream = copy.output
        mux(packet)
        count += 1
        if count % _WRITEBACK_PACKETS == 0:
            kick_writeback()


def _check_every_segment_read(item: _Input) -> None:
    for index, count in enumerate(item.packets_per_piece[item.reader.first_segment :]):
        if count == 0:
            name = os.path.basename(item.track.segments[index].path)
            raise MediaError(f"segment {name} is corrupt: no audio or video packet could be read from it")


def _rebase_at_discontinuity(item: _Input, piece: int, copy: _Stream, dts: int, duration: int | None) -> None:
    """After an ``EXT-X-DISCONTINUITY`` the clock may jump anywhere: the stream goes on right after its last packet."""
    segment = piece - item.reader.first_segment
    if segment <= 0 or copy.last_dts is None:
        return
    latest = item.discontinuity_at[segment]
    if latest == 0 or copy.crossed >= latest:
        return
    copy.crossed = latest
    copy.shift = dts - (copy.last_dts + (duration or 1))


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # some platforms cannot open a directory: its entry is durable soon enough
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _verify_merge(temp_path: str, streams: RemuxedStreams, expected_s: float) -> None:
    """The merged file holds what was muxed and decodes at both ends; else ``MediaError``.

    Checked from the mp4's own index, without reading it through: its streams, each stream's
    packet count (what the remux muxed), the video's duration (the playlist's), and the first
    frame of the first and of the last group of pictures decoded.
    """
    with av.open(temp_path, options=_VERIFY_OPTIONS) as merged:
        if len(merged.streams.video) != streams.video or len(merged.streams.audio) != streams.audio:
            raise MediaError(
                f"merged file has {len(merged.streams.video)} video/{len(merged.streams.audio)} audio streams,"
                f" the segments {streams.video}/{streams.audio}"
            )
        counts = tuple(int(s.frames) for s in merged.streams if s.type in ("video", "audio"))
        if streams.packets and counts != streams.packets:
            raise MediaError(f"merged file indexes {counts} packets per stream, the remux wrote {streams.packets}")
        video = merged.streams.video[0]
        # One frame at each end: a pool of slice threads would only cost its start-up (61 reps at
        # load 11: the verify's CPU 3.4 -> 2.9 ms, its wall 10.9 -> 6.7 ms, medians).
        video.codec_context.thread_count = 1
        # The video's own length: a full audio track must not hide a short video.
        if video.duration and video.time_base:
            seconds = float(video.duration * video.time_base)
        else:
            seconds = duration_s(merged, video) or 0.0
        if abs(seconds - expected_s) > MERGE_DURATION_TOLERANCE_S:
            raise MediaError(
                f"merged file lasts {seconds:.1f} s but the playlist {expected_s:.1f} s (damaged segments?)"
            )
        if next(iter(merged.decode(video)), None) is None:
            raise MediaError("merged file holds no decodable video frame")
        if video.duration:
            # Back to the last keyframe: its frame decodes too (a damaged tail is not renamed into place).
            merged.seek((video.start_time or 0) + video.duration, stream=video, backward=True)
            if next(iter(merged.decode(video)), None) is None:
                raise MediaError("the end of the merged file holds no decodable video frame")


def _link_to_free_name(temp_path: str, playlist: HlsPlaylist) -> str:
    """Give the verified temp file a free final name; an existing file is never replaced."""
    for _ in range(100):
        final = free_output_path(playlist.folder, playlist.output_stem)
        try:
            os.link(temp_path, final)  # fails if ``final`` appeared meanwhile: no overwrite, ever
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # No hard links here (FAT, some network shares): check-then-rename, a tiny race.
            if os.path.lexists(final):
                continue
            os.rename(temp_path, final)
            return final
        os.unlink(temp_path)
        return final
    raise MediaError("no free name for the merged file")


def publish_merge(playlist: HlsPlaylist, temp_path: str, streams: RemuxedStreams) -> str:
    """Make the remuxed temp file durable, verify it, and give it its final name; returns that path.

    Returns only once the final name is durable too (the caller may then remove the source).
    """
    # The disk writes while the verify reads the page cache (the same bytes); the name is given
    # only once both are done.
    # The thread ends with the publish: a thread kept in the worker would stop every later merge
    # from forking its helper (``tail_demux.fork_available``).
    with concurrent.futures.ThreadPoolExecutor(1) as syncer:
        durable = syncer.submit(_fsync_path, temp_path)
        try:
            _verify_merge(temp_path, streams, playlist.duration_s)
        finally:
            durable.result()
        final = _link_to_free_name(temp_path, playlist)
        named = syncer.submit(_fsync_path, os.path.dirname(final), True)
        try:
            # The marker is a hint, checked against the output whenever it is read (``downloads``):
            # written while the folder's fsync waits on the disk, not after it.
            write_marker(playlist, final)
        finally:
            named.result()
    return final


def merge_hls(
    playlist: HlsPlaylist, temp_path: str, split_min_bytes: int | None = SPLIT_MIN_BYTES, when_busy: bool = False
) -> str:
    """Remux, fsync, verify, then link to the final name and mark the source merged; returns the final path."""
    with claimed_temp_file(temp_path):
        streams = remux_to(playlist, temp_path, split_min_bytes, when_busy)
        return publish_merge(playlist, temp_path, streams)
