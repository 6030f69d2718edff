"""Merging an HLS download into one mp4 by stream copy, verified before it gets its final name.

Runs inside a media worker (``pool``). The steps, each public so a variant of the merge (a test's
stalled one) is built from the same parts:
1. ``claimed_temp_file``: the temp name is created exclusively, and removed on any failure;
2. ``remux_to``: the segments, read as one byte stream, are stream-copied into the temp file with
   their clock started at zero and made monotonic across discontinuities;
3. ``publish_merge``: fsync, verify (streams, duration, a decodable frame), link to a free final
   name (never over an existing file), fsync the folder, write the "merged" marker.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import av

from gql_media.adapters.media.probe import duration_s
from gql_media.core.hls import MERGE_DURATION_TOLERANCE_S, HlsPlaylist, free_output_path, write_marker
from gql_media.core.ports import MediaError

__all__ = ["RemuxedStreams", "claimed_temp_file", "merge_hls", "publish_merge", "remux_to"]

_READ_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RemuxedStreams:
    """How many streams of each kind the segments held (and the merged file must hold)."""

    video: int
    audio: int


class _ConcatReader:
    """The segments of a playlist as one byte stream (MPEG-TS and fMP4 concatenate byte-wise)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self.boundaries: list[int] = []  # start offset of each segment in the stream
        self._index = -1
        self._handle: Any = None
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        size = _READ_CHUNK_BYTES if size is None or size < 0 else size
        while True:
            if self._handle is None:
                self._index += 1
                if self._index >= len(self.paths):
                    return b""
                self._handle = open(self.paths[self._index], "rb")  # noqa: SIM115 (closed at its end)
                self.boundaries.append(self._offset)
            data: bytes = self._handle.read(size)
            if data:
                self._offset += len(data)
                return data
            self._handle.close()
            self._handle = None

    def segment_of(self, position: int) -> int:
        """The index of the segment holding byte ``position`` of the stream."""
        return max(0, bisect.bisect_right(self.boundaries, position) - 1)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


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


def remux_to(playlist: HlsPlaylist, temp_path: str) -> RemuxedStreams:
    """Stream-copy the playlist's segments into an mp4 at ``temp_path``."""
    try:
        return _remux(playlist, temp_path)
    except av.FFmpegError as error:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise
        reason = error.strerror or str(error)
        raise MediaError(f"the segments cannot be remuxed, damaged segments? ({reason})") from error


def _remux(playlist: HlsPlaylist, temp_path: str) -> RemuxedStreams:
    paths = [*([playlist.init_path] if playlist.init_path else []), *playlist.segment_paths]
    reader = _ConcatReader(paths)
    first_segment = 1 if playlist.init_path else 0
    packets_per_segment = [0] * len(paths)
    try:
        source: Any
        with av.open(reader, format="mp4" if playlist.init_path else "mpegts") as source:
            inputs = [s for s in source.streams if s.type in ("video", "audio")]
            # Counted now: a stream must not be touched once its container is closed (segfault).
            video_streams = sum(1 for s in inputs if s.type == "video")
            audio_streams = len(inputs) - video_streams
            if not video_streams:
                raise MediaError("the segments hold no video stream")
            start_s = float(source.start_time) / av.time_base if source.start_time is not None else 0.0
            with av.open(temp_path, "w", format="mp4") as output:
                outputs = {s.index: output.add_stream_from_template(s) for s in inputs}
                shift = {s.index: int(start_s / s.time_base) for s in inputs}
                last_dts: dict[int, int] = {}
                for packet in source.demux(*inputs):
                    if packet.dts is None and packet.pts is None:
                        continue  # the demuxer's end-of-stream packets
                    if packet.pos is not None and packet.pos >= 0:
                        packets_per_segment[reader.segment_of(packet.pos)] += 1
                    _shift_packet(packet, shift, last_dts)
                    packet.stream = outputs[packet.stream.index]
                    output.mux(packet)
    finally:
        reader.close()
    empty = [i - first_segment for i, n in enumerate(packets_per_segment) if n == 0 and i >= first_segment]
    if empty:
        name = os.path.basename(playlist.segment_paths[empty[0]])
        raise MediaError(f"segment {name} is corrupt: no audio or video packet could be read from it")
    return RemuxedStreams(video=video_streams, audio=audio_streams)


def _shift_packet(packet: Any, shift: dict[int, int], last_dts: dict[int, int]) -> None:
    """Start the stream's clock at zero; a clock that jumps back (a discontinuity) is moved on."""
    index = packet.stream.index
    if packet.dts is None:
        packet.dts = packet.pts
    if packet.pts is None:
        packet.pts = packet.dts
    dts = packet.dts - shift[index]
    previous = last_dts.get(index)
    if previous is not None and dts <= previous:
        step = packet.duration or 1
        shift[index] += previous + step - dts
        dts = previous + step
    packet.pts = packet.pts - shift[index]
    packet.dts = dts
    last_dts[index] = dts


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
    """The merged file opens, has the source's streams, decodes, and lasts as long as the playlist."""
    with av.open(temp_path) as merged:
        if len(merged.streams.video) != streams.video or len(merged.streams.audio) != streams.audio:
            raise MediaError(
                f"merged file has {len(merged.streams.video)} video/{len(merged.streams.audio)} audio streams,"
                f" the segments {streams.video}/{streams.audio}"
            )
        seconds = duration_s(merged, merged.streams.video[0]) or 0.0
        if abs(seconds - expected_s) > MERGE_DURATION_TOLERANCE_S:
            raise MediaError(
                f"merged file lasts {seconds:.1f} s but the playlist {expected_s:.1f} s (damaged segments?)"
            )
        if next(iter(merged.decode(merged.streams.video[0])), None) is None:
            raise MediaError("merged file holds no decodable video frame")


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
    """Make the remuxed temp file durable, verify it, and give it its final name; returns that path."""
    _fsync_path(temp_path)
    _verify_merge(temp_path, streams, playlist.duration_s)
    final = _link_to_free_name(temp_path, playlist)
    _fsync_path(os.path.dirname(final), directory=True)
    write_marker(playlist, final)
    return final


def merge_hls(playlist: HlsPlaylist, temp_path: str) -> str:
    """Remux, fsync, verify, then link to the final name and mark the source merged; returns the final path."""
    with claimed_temp_file(temp_path):
        streams = remux_to(playlist, temp_path)
        return publish_merge(playlist, temp_path, streams)
