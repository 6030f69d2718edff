"""Probing a video with PyAV: its streams, codecs, size and duration, or why it is BROKEN.

Runs inside a media worker (``pool``). ``Unreadable`` means the file cannot be read at all (gone,
no permission): an error of the moment, not a property of the file, so the video is not marked
BROKEN for it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import av

from gql_media.adapters.media.pool import Unreadable
from gql_media.core.models import MediaInfo, VideoStatus
from gql_media.core.ports import MediaError

__all__ = ["av_errors", "codec_name", "container_name", "duration_s", "open_input", "probe_file"]

# Decoder names that differ from the codec's name.
_CODEC_NAMES = {"mp3float": "mp3", "libdav1d": "av1", "libopus": "opus", "libvorbis": "vorbis", "libvpx-vp9": "vp9"}


@contextlib.contextmanager
def av_errors() -> Iterator[None]:
    """FFmpeg's errors as the pool reports them: an I/O one stays an ``OSError``, others a ``MediaError``."""
    try:
        yield
    except av.FFmpegError as error:
        if isinstance(error, OSError):
            raise
        raise MediaError(str(error.strerror or error)) from error


def codec_name(stream: Any) -> str:
    """A stream's codec by its codec's name, not its decoder's ("mp3", not "mp3float")."""
    name = str(stream.codec_context.name)
    name = _CODEC_NAMES.get(name, name)
    return name.removesuffix("_fixed")


def container_name(container: Any, path: str) -> str:
    """The container format by one name: the file's suffix where the format lists it, else mp4 or the first."""
    names = str(container.format.name).split(",")
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix in names:
        return suffix
    return "mp4" if "mp4" in names else names[0]


def _broken(reason: str) -> dict[str, Any]:
    return asdict(MediaInfo(status=VideoStatus.BROKEN, error=reason))


def open_input(path: str | bytes) -> Any:
    """Open a file for reading; maps "cannot read it" to ``Unreadable``."""
    try:
        return av.open(os.fsdecode(path), metadata_errors="ignore")
    except FileNotFoundError as error:
        raise Unreadable("file not found") from error
    except PermissionError as error:
        raise Unreadable("permission denied") from error
    except IsADirectoryError as error:
        raise Unreadable("is a folder, not a file") from error


def duration_s(container: Any, stream: Any | None) -> float | None:
    """The container's duration, else the stream's, in seconds; None when neither is known."""
    if container.duration:
        return float(container.duration) / av.time_base
    if stream is not None and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def probe_file(path: str | bytes) -> dict[str, Any]:
    """Probe one file; returns ``MediaInfo`` fields (BROKEN with a reason when undecodable)."""
    try:
        st = os.stat(path)
    except FileNotFoundError as error:
        raise Unreadable("file not found") from error
    except PermissionError as error:
        raise Unreadable("permission denied") from error
    size = st.st_size
    # Only a regular file's size means anything (a FIFO is read like a stream, and may hang).
    if size == 0 and stat.S_ISREG(st.st_mode):
        return _broken("empty file")
    try:
        container = open_input(path)
    except av.error.InvalidDataError:
        return _broken("not a video, or damaged/truncated: its format cannot be read")
    except av.FFmpegError as error:
        return _broken(f"cannot be opened: {error.strerror or error}")
    with container:
        if not container.streams.video:
            return _broken("no video stream (audio only)" if container.streams.audio else "no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        video.codec_context.thread_count = 1  # one frame: not worth FFmpeg's decoding threads
        try:
            decoded = next(iter(container.decode(video)), None)
        except av.FFmpegError as error:
            return _broken(f"video cannot be decoded: {error.strerror or error}")
        if decoded is None:
            return _broken("video stream holds no decodable frame (truncated?)")
        seconds = duration_s(container, video)
        bitrate = int(container.bit_rate or 0) or (int(size * 8 / seconds) if seconds else None)
        width, height = int(video.codec_context.width), int(video.codec_context.height)
        if abs(int(decoded.rotation or 0)) in (90, 270):
            # A phone's portrait clip is stored landscape with a rotation: report what is shown.
            width, height = height, width
        info = MediaInfo(
            status=VideoStatus.READY,
            duration_s=seconds,
            width=width,
            height=height,
            video_codec=codec_name(video),
            audio_codec=codec_name(audio) if audio is not None else None,
            container=container_name(container, os.fsdecode(path)),
            bitrate=bitrate,
        )
    return asdict(info)
