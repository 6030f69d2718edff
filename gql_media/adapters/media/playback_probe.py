"""What playback reads from a file with PyAV: its streams, and its text subtitles as WebVTT.

Plain functions run inside a media worker process (see ``transcode`` for the operation table).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict
from typing import Any

import av

from gql_media.adapters.media.pool import Unreadable
from gql_media.adapters.media.probe import codec_name, container_name, duration_s, open_input
from gql_media.core.playback import SourceStreams, SubtitleStream
from gql_media.core.ports import MediaError
from gql_media.core.subtitles import Cue, ass_text, cues_to_vtt

__all__ = ["make_subtitle_vtt", "open_source", "probe_streams", "start_time_s"]


def open_source(path: str | bytes) -> Any:
    """``probe.open_input``, for playback: whatever keeps the file from opening is a ``MediaError``."""
    try:
        return open_input(path)
    except Unreadable as error:
        raise MediaError(str(error)) from error
    except av.FFmpegError as error:
        raise MediaError(f"cannot be opened: {error.strerror or error}") from error


def start_time_s(container: Any) -> float:
    """The source clock's first time (MPEG-TS starts at ~1.4 s, not 0)."""
    return float(container.start_time) / av.time_base if container.start_time is not None else 0.0


def _keyframes_s(container: Any, video: Any) -> tuple[float, ...]:
    """The video's keyframe times (when shown) from the container's index (Matroska reads its cues on a first seek)."""
    if len(video.index_entries) < 2 and container.duration:
        with contextlib.suppress(av.FFmpegError):
            container.seek(int(container.duration), backward=True)
    if not video.time_base:
        return ()
    start_s = start_time_s(container) - _index_delay_s(container, video)
    return tuple(
        round(float(entry.timestamp * video.time_base) - start_s, 6)
        for entry in video.index_entries
        if entry.is_keyframe
    )


def _index_delay_s(container: Any, video: Any) -> float:
    """How long after its index time a keyframe is shown: an MP4's index holds decoding times, which
    B-frames put before the showing times the segments are cut at (by the first keyframe's delay,
    the encoder's reordering delay); Matroska's cues and AVI's index hold showing times already."""
    if "mp4" not in str(container.format.name).split(","):
        return 0.0
    with contextlib.suppress(av.FFmpegError):
        container.seek(0, stream=video, backward=True)
        for count, packet in enumerate(container.demux(video)):
            if packet.is_keyframe and packet.pts is not None and packet.dts is not None and packet.time_base:
                return max(0.0, float((packet.pts - packet.dts) * packet.time_base))
            if count >= _END_SCAN_PACKETS:
                break
    return 0.0


def _codec_tag(stream: Any) -> str | None:
    """The stream's codec tag in its container ("hvc1", "hev1", "avc1"...); None where it has none (Matroska)."""
    raw = stream.codec_context.codec_tag
    text = raw.strip("\x00 ") if isinstance(raw, str) else ""
    return text if len(text) == 4 and text.isprintable() else None


# Packets read past the last keyframe to find where the data ends (a GOP is far fewer).
_END_SCAN_PACKETS = 5000
# A header's duration longer than the data by more than this is a truncated file's.
_TRUNCATED_SLACK_S = 1.0


def _data_end_s(container: Any, header_s: float) -> float:
    """Where the data really ends: a file cut short (an interrupted copy) keeps its header's duration."""
    if not header_s:
        return header_s
    end_s = 0.0
    try:
        container.seek(int(header_s * av.time_base), backward=True)
        for count, packet in enumerate(container.demux()):
            if packet.pts is not None and packet.time_base:
                end_s = max(end_s, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            if count >= _END_SCAN_PACKETS:
                return header_s
    except av.FFmpegError:
        return header_s
    end_s -= start_time_s(container)
    return end_s if 0 < end_s < header_s - _TRUNCATED_SLACK_S else header_s


def probe_streams(path: str | bytes) -> dict[str, Any]:
    """What playback needs to know of a file (``SourceStreams`` fields); raises MediaError when unreadable."""
    with open_source(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        bit_depth, chroma_420, rotation = 8, True, 0
        width = height = 0
        if video is not None:
            pix_fmt = video.codec_context.pix_fmt or "yuv420p"
            with contextlib.suppress(ValueError, av.FFmpegError):
                bit_depth = int(av.VideoFormat(pix_fmt).components[0].bits)
            chroma_420 = pix_fmt.startswith(("yuv420", "yuvj420", "nv12", "p010"))
            width, height = int(video.codec_context.width), int(video.codec_context.height)
            with contextlib.suppress(av.FFmpegError, StopIteration):
                frame = next(iter(container.decode(video)))
                rotation = int(frame.rotation or 0)
        subtitles = tuple(
            SubtitleStream(
                index=int(stream.index),
                codec=codec_name(stream),
                language=stream.metadata.get("language") or None,
                title=stream.metadata.get("title") or None,
            )
            for stream in container.streams.subtitles
        )
        streams = SourceStreams(
            container=container_name(container, os.fsdecode(path)),
            duration_s=_data_end_s(container, duration_s(container, video or audio) or 0.0),
            video_codec=codec_name(video) if video is not None else None,
            audio_codec=codec_name(audio) if audio is not None else None,
            width=width,
            height=height,
            bit_depth=bit_depth,
            chroma_420=chroma_420,
            rotation_deg=rotation % 360,
            audio_channels=int(audio.codec_context.channels) if audio is not None else 0,
            subtitles=subtitles,
            keyframes_s=_keyframes_s(container, video) if video is not None else (),
            video_tag=_codec_tag(video) if video is not None else None,
        )
    return asdict(streams)


# --------------------------------------------------------------------------------------------
# Subtitles.


def make_subtitle_vtt(path: str | bytes, stream_index: int, output_path: str) -> int:
    """Extract text subtitle stream ``stream_index`` as WebVTT into ``output_path``; returns the cue count."""
    cues: list[Cue] = []
    with open_source(path) as container:
        matching = [s for s in container.streams.subtitles if s.index == stream_index]
        if not matching:
            raise MediaError(f"no subtitle stream {stream_index}")
        stream = matching[0]
        source_start_s = start_time_s(container)
        for packet in container.demux(stream):
            if packet.pts is None or not packet.time_base:
                continue
            start = float(packet.pts * packet.time_base) - source_start_s
            duration = float(packet.duration * packet.time_base) if packet.duration else 0.0
            try:
                decoded = stream.decode(packet)
            except av.FFmpegError:
                continue
            # PyAV gives the packet's rects; a text subtitle's timing is its packet's.
            text = "\n".join(t for t in (_rect_text(rect) for rect in decoded) if t)
            if text:
                cues.append(Cue(start, start + max(duration, 0.5), text))
    with open(output_path, "w", encoding="utf-8") as handle:
        handle.write(cues_to_vtt(cues))
    return len(cues)


def _rect_text(rect: Any) -> str:
    kind = rect.type.decode() if isinstance(rect.type, bytes) else str(rect.type)
    if kind == "ass":
        raw = rect.ass
        return ass_text(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
    if kind == "text":
        raw = rect.text
        return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
    return ""
