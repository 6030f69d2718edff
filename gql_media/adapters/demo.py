"""Real, tiny media made with PyAV: the demo library of the CLI and the fixtures of the tests.

Frames are a moving colour gradient (so no frame is black unless asked) and audio is a sine tone;
everything is encoded by the FFmpeg inside PyAV's wheel. The playback tests' sources (every codec,
pixel format, rotation and MP4 tag issue 14 names) are clips of the same kind.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

logger = logging.getLogger(__name__)

__all__ = ["ClipSpec", "encode_clip", "make_demo_library", "write_audio_only", "write_hls_folder"]

AUDIO_RATE_HZ = 24_000

# A codec's options unless the clip names its own: the quickest encoding, which is all a fixture needs.
_CODEC_OPTIONS: Mapping[str, Mapping[str, str]] = {
    "libx264": {"preset": "ultrafast"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
}


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """What to encode. ``black_lead_s`` starts the clip with that many seconds of black frames.

    ``video_codec`` None makes a sound-only file. ``start_s`` is the first frame's time (a piece of a
    longer recording: its clock does not start at 0). A keyframe every ``keyframe_s`` (HLS segments
    start on keyframes); ``rotation_deg`` is the display rotation a phone writes; ``video_tag`` the
    codec tag of an MP4 sample entry ("hev1" or "hvc1" for HEVC; None: the muxer's); ``codec_options``
    go over the codec's own (``_CODEC_OPTIONS``).
    """

    width_px: int = 64
    height_px: int = 48
    fps: int = 10
    duration_s: float = 2.0
    video_codec: str | None = "libx264"
    audio_codec: str | None = "aac"
    black_lead_s: float = 0.0
    pix_fmt: str = "yuv420p"
    keyframe_s: float = 1.0
    rotation_deg: int = 0
    video_tag: str | None = None
    codec_options: Mapping[str, str] = field(default_factory=dict)
    audio_rate_hz: int = AUDIO_RATE_HZ
    audio_layout: str = "mono"
    start_s: float = 0.0


def _picture(spec: ClipSpec, index: int) -> av.VideoFrame:
    frame = av.VideoFrame(spec.width_px, spec.height_px, "rgb24")
    plane = frame.planes[0]
    if index < spec.black_lead_s * spec.fps:
        plane.update(bytes(plane.line_size * spec.height_px))
        return frame
    row = bytearray()
    for x in range(spec.width_px):
        row += bytes(((x * 5 + index * 9) % 256, (index * 4) % 256, (255 - x * 3) % 256))
    line = bytes(row) + bytes(plane.line_size - len(row))
    plane.update(line * spec.height_px)
    return frame


def _tone(start_sample: int, samples: int, rate_hz: int = AUDIO_RATE_HZ, layout: str = "mono") -> av.AudioFrame:
    """A 440 Hz sine, the same in every channel of ``layout`` ("mono" or "stereo")."""
    frame = av.AudioFrame(format="s16", layout=layout, samples=samples)
    channels = 2 if layout == "stereo" else 1
    pcm = bytearray()
    for n in range(start_sample, start_sample + samples):
        pcm += int(6000 * math.sin(2 * math.pi * 440 * n / rate_hz)).to_bytes(2, "little", signed=True) * channels
    frame.planes[0].update(bytes(pcm))
    frame.sample_rate = rate_hz
    frame.pts = start_sample
    frame.time_base = Fraction(1, rate_hz)
    return frame


def _add_video(container: av.container.OutputContainer, spec: ClipSpec, codec: str) -> Any:
    video: Any = container.add_stream(codec, rate=spec.fps)
    video.width, video.height, video.pix_fmt = spec.width_px, spec.height_px, spec.pix_fmt
    video.codec_context.gop_size = round(spec.keyframe_s * spec.fps)
    video.codec_context.options = {**_CODEC_OPTIONS.get(codec, {}), **spec.codec_options}
    if spec.rotation_deg:
        video.set_display_rotation(spec.rotation_deg)
    if spec.video_tag is not None:
        video.codec_context.codec_tag = spec.video_tag
    return video


def _encode_into(container: av.container.OutputContainer, spec: ClipSpec) -> None:
    video: Any = None if spec.video_codec is None else _add_video(container, spec, spec.video_codec)
    audio: Any = None
    if spec.audio_codec is not None:
        audio = container.add_stream(spec.audio_codec, rate=spec.audio_rate_hz)
        audio.layout = spec.audio_layout
    first = round(spec.start_s * spec.fps)
    samples_per_frame = spec.audio_rate_hz // spec.fps
    for index in range(first, first + round(spec.duration_s * spec.fps)):
        if video is not None:
            frame = _picture(spec, index).reformat(format=spec.pix_fmt)
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            container.mux(video.encode(frame))
        if audio is not None:
            start = index * samples_per_frame
            container.mux(audio.encode(_tone(start, samples_per_frame, spec.audio_rate_hz, spec.audio_layout)))
    for stream in (video, audio):
        if stream is not None:
            container.mux(stream.encode(None))


def encode_clip(
    path: Path, spec: ClipSpec = ClipSpec(), *, format: str | None = None, options: Mapping[str, str] | None = None
) -> Path:
    """Encode a clip to ``path``; the container follows the suffix (.mp4, .webm, .avi, .mkv, .ts) unless
    ``format`` names it, with the muxer's ``options`` (an HLS playlist's, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=format, options=dict(options or {})) as container:
        _encode_into(container, spec)
    return path


def write_audio_only(path: Path, duration_s: float = 1.0) -> Path:
    """An audio-only file (no video stream), e.g. ``song.m4a`` or an ``.mp4`` that holds only sound."""
    return encode_clip(path, ClipSpec(duration_s=duration_s, video_codec=None), format="mp4")


def write_hls_folder(folder: Path, spec: ClipSpec = ClipSpec(duration_s=3.0), segment_s: int = 1) -> Path:
    """Write an HLS download: ``index.m3u8`` plus ``.ts`` segments (mpegts) in ``folder``; returns the playlist."""
    folder.mkdir(parents=True, exist_ok=True)
    options = {
        "hls_time": str(segment_s),
        "hls_list_size": "0",
        "hls_playlist_type": "vod",
        "hls_segment_filename": str(folder / "segment%03d.ts"),
    }
    return encode_clip(folder / "index.m3u8", spec, format="hls", options=options)


_DEMO_CLIPS: tuple[tuple[str, ClipSpec], ...] = (
    ("Holidays/beach.mp4", ClipSpec(width_px=320, height_px=180, fps=15, duration_s=4.0)),
    ("Holidays/mountains.webm", ClipSpec(width_px=320, height_px=180, fps=15, duration_s=3.0,
                                         video_codec="libvpx-vp9", audio_codec="libopus")),
    ("Holidays/Phone/portrait.mp4", ClipSpec(width_px=180, height_px=320, fps=15, duration_s=3.0)),
    ("Archive/old-camera.avi", ClipSpec(width_px=320, height_px=240, fps=10, duration_s=3.0,
                                        video_codec="mpeg4", audio_codec="mp3")),
    ("Archive/dark-intro.mp4", ClipSpec(width_px=320, height_px=180, fps=10, duration_s=5.0, black_lead_s=1.5)),
)  # fmt: skip


def _encode_to(path: Path, spec: ClipSpec) -> None:
    encode_clip(path, spec)


def make_demo_library(folder: Path) -> None:
    """Fill ``folder`` with a few short real videos, an HLS download folder and a broken file.

    Idempotent: files already there are left alone, so a second call does nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for relative, spec in _DEMO_CLIPS:
        target = folder / relative
        if not target.exists():
            _write_atomically(target, functools.partial(_encode_to, spec=spec))
    hls_folder = folder / "Downloads" / "Lecture 1"
    merged = folder / "Downloads" / "Lecture 1.mp4"
    if not hls_folder.exists() and not merged.exists():
        staging = hls_folder.with_name(".demo-staging-hls")
        write_hls_folder(staging, ClipSpec(width_px=320, height_px=180, fps=10, duration_s=6.0), segment_s=2)
        os.replace(staging, hls_folder)
    broken = folder / "Archive" / "broken.mp4"
    if not broken.exists():
        broken.parent.mkdir(parents=True, exist_ok=True)
        broken.write_bytes(b"this is not a video, only a file with a video's name\n")
    logger.info("demo library ready in %s", folder)


def _write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    # The suffix stays last so the muxer is chosen from it.
    temp = target.with_name(f".demo-{target.stem}.tmp{target.suffix}")
    write(temp)
    os.replace(temp, target)
