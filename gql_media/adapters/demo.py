"""Real, tiny media made with PyAV: the demo library of the CLI and the fixtures of the tests.

Frames are drawn with Pillow (a moving colour gradient, so no frame is black unless asked) and
audio is a sine tone; everything is encoded by the FFmpeg inside PyAV's wheel.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

__all__ = ["ClipSpec", "encode_clip", "make_demo_library", "write_audio_only", "write_hls_folder"]

AUDIO_RATE_HZ = 24_000


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """What to encode. ``black_lead_s`` starts the clip with that many seconds of black frames."""

    width_px: int = 64
    height_px: int = 48
    fps: int = 10
    duration_s: float = 2.0
    video_codec: str = "libx264"
    audio_codec: str | None = "aac"
    black_lead_s: float = 0.0


def _frame_image(spec: ClipSpec, index: int) -> Image.Image:
    if index < spec.black_lead_s * spec.fps:
        return Image.new("RGB", (spec.width_px, spec.height_px), (0, 0, 0))
    image = Image.new("RGB", (spec.width_px, spec.height_px))
    draw = ImageDraw.Draw(image)
    shift = index * 7
    for x in range(spec.width_px):
        draw.line(
            [(x, 0), (x, spec.height_px)],
            fill=((x * 4 + shift) % 256, (128 + shift) % 256, (255 - x * 3) % 256),
        )
    box = (index * 3) % max(1, spec.width_px - 8)
    draw.rectangle([box, spec.height_px // 3, box + 8, spec.height_px // 3 + 8], fill=(255, 255, 255))
    return image


def _audio_frame(start_sample: int, samples: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    pcm = bytearray()
    for n in range(start_sample, start_sample + samples):
        value = int(8000 * math.sin(2 * math.pi * 440 * n / AUDIO_RATE_HZ))
        pcm += value.to_bytes(2, "little", signed=True)
    frame.planes[0].update(bytes(pcm))
    frame.sample_rate = AUDIO_RATE_HZ
    frame.pts = start_sample
    frame.time_base = Fraction(1, AUDIO_RATE_HZ)
    return frame


def _encode_into(container: av.container.OutputContainer, spec: ClipSpec) -> None:
    video: Any = container.add_stream(spec.video_codec, rate=spec.fps)
    video.width = spec.width_px
    video.height = spec.height_px
    video.pix_fmt = "yuv420p"
    # One keyframe a second: HLS segments can then start on keyframes.
    video.codec_context.gop_size = spec.fps
    if spec.video_codec == "libx264":
        video.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    elif spec.video_codec == "libvpx-vp9":
        video.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
    audio: Any = None
    if spec.audio_codec is not None:
        audio = container.add_stream(spec.audio_codec, rate=AUDIO_RATE_HZ)
        audio.layout = "mono"
    frames = round(spec.duration_s * spec.fps)
    samples_per_frame = AUDIO_RATE_HZ // spec.fps
    for index in range(frames):
        frame = av.VideoFrame.from_image(_frame_image(spec, index))  # type: ignore[no-untyped-call]
        frame.pts = index
        frame.time_base = Fraction(1, spec.fps)
        container.mux(video.encode(frame))
        if audio is not None:
            container.mux(audio.encode(_audio_frame(index * samples_per_frame, samples_per_frame)))
    container.mux(video.encode(None))
    if audio is not None:
        container.mux(audio.encode(None))


def encode_clip(path: Path, spec: ClipSpec = ClipSpec()) -> Path:
    """Encode a clip to ``path``; the container follows the suffix (.mp4, .webm, .avi, .mkv, .ts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        _encode_into(container, spec)
    return path


def write_audio_only(path: Path, duration_s: float = 1.0) -> Path:
    """An audio-only file (no video stream), e.g. ``song.m4a`` or an ``.mp4`` that holds only sound."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        audio: Any = container.add_stream("aac", rate=AUDIO_RATE_HZ)
        audio.layout = "mono"
        samples = 1024
        for start in range(0, int(duration_s * AUDIO_RATE_HZ), samples):
            container.mux(audio.encode(_audio_frame(start, samples)))
        container.mux(audio.encode(None))
    return path


def write_hls_folder(folder: Path, spec: ClipSpec = ClipSpec(duration_s=3.0), segment_s: int = 1) -> Path:
    """Write an HLS download: ``index.m3u8`` plus ``.ts`` segments (mpegts) in ``folder``; returns the playlist."""
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / "index.m3u8"
    options = {
        "hls_time": str(segment_s),
        "hls_list_size": "0",
        "hls_playlist_type": "vod",
        "hls_segment_filename": str(folder / "segment%03d.ts"),
    }
    with av.open(str(playlist), "w", format="hls", options=options) as container:
        _encode_into(container, spec)
    return playlist


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
