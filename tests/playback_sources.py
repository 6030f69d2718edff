"""Real sources for the playback tests, encoded by PyAV: every kind issue 14 names, a few seconds each.

Frames carry a moving pattern and audio a tone; what the tests check is timing (segments,
timestamps, A/V) and what a decoder accepts, so the clips stay tiny and quick to make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av


@dataclass(frozen=True)
class Source:
    """How to encode one source. The container follows the file's suffix."""

    name: str
    video_codec: str | None = "libx264"
    audio_codec: str | None = "aac"
    width_px: int = 96
    height_px: int = 64
    fps: int = 25
    duration_s: float = 5.0
    pix_fmt: str = "yuv420p"
    audio_rate_hz: int = 44_100
    rotation_deg: int = 0
    gop_frames: int = 25
    options: dict[str, str] = field(default_factory=dict)
    subtitles: bool = False
    # The video's codec tag in an MP4 (its sample entry: "hev1" or "hvc1" for HEVC); None: the muxer's.
    video_tag: str | None = None


SOURCES = {
    "avi_mpeg4_mp3": Source("old camera.avi", "mpeg4", "mp3"),
    "mkv_hevc": Source("hevc clip.mkv", "libx265", "aac", options={"x265-params": "log-level=none"}),
    "mkv_h264": Source("h264 clip.mkv", "libx264", "aac", subtitles=True),
    "mkv_h264_mp3": Source("h264 mp3.mkv", "libx264", "mp3"),
    "webm_vp9": Source("vp9 clip.webm", "libvpx-vp9", "libopus", audio_rate_hz=48_000,
                       options={"deadline": "realtime", "cpu-used": "8"}),
    "ts_mpeg2": Source("broadcast.ts", "mpeg2video", "mp2", audio_rate_hz=48_000),
    "mp4_h264_10bit": Source("ten bit.mp4", "libx264", "aac", pix_fmt="yuv420p10le"),
    "mkv_odd_size": Source("odd size.mkv", "mpeg4", "aac", width_px=321, height_px=241),
    "mp4_rotated": Source("phone.mp4", "libx264", "aac", width_px=96, height_px=64, rotation_deg=90),
    "mkv_rotated": Source("phone.mkv", "libx264", "aac", width_px=96, height_px=64, rotation_deg=90),
    "audio_only": Source("song.mp4", None, "aac"),
    "mp4_h264": Source("plain.mp4", "libx264", "aac"),
    "mp4_hevc_hev1": Source("hevc hev1.mp4", "libx265", "aac", options={"x265-params": "log-level=none"},
                            video_tag="hev1"),
    "mp4_hevc_hvc1": Source("hevc hvc1.mp4", "libx265", "aac", options={"x265-params": "log-level=none"},
                            video_tag="hvc1"),
}  # fmt: skip


def _picture(spec: Source, index: int) -> av.VideoFrame:
    frame = av.VideoFrame(spec.width_px, spec.height_px, "rgb24")
    row = bytearray()
    for x in range(spec.width_px):
        row += bytes(((x * 5 + index * 9) % 256, (index * 4) % 256, (255 - x * 3) % 256))
    plane = frame.planes[0]
    line = bytes(row) + bytes(plane.line_size - len(row))
    plane.update(line * spec.height_px)
    return frame


def _tone(start: int, samples: int, rate_hz: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    pcm = bytearray()
    for n in range(start, start + samples):
        value = int(6000 * math.sin(2 * math.pi * 440 * n / rate_hz)).to_bytes(2, "little", signed=True)
        pcm += value + value
    frame.planes[0].update(bytes(pcm))
    frame.sample_rate = rate_hz
    frame.pts = start
    frame.time_base = Fraction(1, rate_hz)
    return frame


def encode_source(folder: Path, spec: Source) -> Path:
    """Encode ``spec`` into ``folder``; returns the file."""
    path = folder / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video: Any = None
        if spec.video_codec:
            video = container.add_stream(spec.video_codec, rate=spec.fps)
            video.width, video.height, video.pix_fmt = spec.width_px, spec.height_px, spec.pix_fmt
            video.codec_context.gop_size = spec.gop_frames
            options = dict(spec.options)
            if spec.video_codec == "libx264":
                options.setdefault("preset", "ultrafast")
            video.codec_context.options = options
            if spec.rotation_deg:
                video.set_display_rotation(spec.rotation_deg)
            if spec.video_tag is not None:
                video.codec_context.codec_tag = spec.video_tag
        audio: Any = None
        if spec.audio_codec:
            audio = container.add_stream(spec.audio_codec, rate=spec.audio_rate_hz)
            audio.layout = "stereo"
        frames = round(spec.duration_s * spec.fps)
        samples_per_frame = spec.audio_rate_hz // spec.fps
        for index in range(frames):
            if video is not None:
                frame = _picture(spec, index).reformat(format=spec.pix_fmt)
                frame.pts = index
                frame.time_base = Fraction(1, spec.fps)
                container.mux(video.encode(frame))
            if audio is not None:
                container.mux(audio.encode(_tone(index * samples_per_frame, samples_per_frame, spec.audio_rate_hz)))
        if video is not None:
            container.mux(video.encode(None))
        if audio is not None:
            container.mux(audio.encode(None))
    if spec.subtitles:
        _embed_subtitles(path)
    return path


SUBRIP = "1\n00:00:01,000 --> 00:00:02,500\nBonjour\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>Au revoir</i>\n"


def _embed_subtitles(path: Path) -> None:
    """Add a French SubRip stream: PyAV encodes no subtitles, so the packets of a .srt are copied in."""
    srt = path.with_name(".embed.srt")
    srt.write_text(SUBRIP, encoding="utf-8")
    temp = path.with_name(".embed" + path.suffix)
    with av.open(str(path)) as media, av.open(str(srt)) as text, av.open(str(temp), "w") as output:
        outputs = {s.index: output.add_stream_from_template(s) for s in media.streams if s.type in ("video", "audio")}
        sub_in = text.streams.subtitles[0]
        sub_out = output.add_stream_from_template(sub_in)
        sub_out.metadata["language"] = "fra"
        sub_out.metadata["title"] = "Français"
        cues = [p for p in text.demux(sub_in) if p.pts is not None]
        for packet in media.demux():
            if packet.dts is None and packet.pts is None:
                continue
            # The cues go in at their time: the muxer interleaves what it is given in order.
            while cues and packet.time_base and cues[0].pts * cues[0].time_base <= packet.dts * packet.time_base:
                cue = cues.pop(0)
                cue.stream = sub_out
                output.mux(cue)
            packet.stream = outputs[packet.stream.index]
            output.mux(packet)
        for cue in cues:
            cue.stream = sub_out
            output.mux(cue)
    srt.unlink()
    temp.replace(path)


def truncate_half(path: Path, name: str) -> Path:
    """A copy of ``path`` cut halfway, as an interrupted copy or download leaves it."""
    data = path.read_bytes()
    target = path.with_name(name)
    target.write_bytes(data[: len(data) // 2])
    return target


# Long and big enough that one segment keeps a worker busy for seconds at the "veryslow" preset:
# what the cancellation and busy tests need to catch a segment mid-making.
SLOW = Source("slow.avi", "mpeg4", "mp3", width_px=640, height_px=360, duration_s=12.0, gop_frames=50)
