"""Real sources for the playback tests, encoded by PyAV: every kind issue 14 names, a few seconds each.

They are the demo's clips (``gql_media.adapters.demo``) at 96x64, 25 fps, with stereo sound: what
the tests check is timing (segments, timestamps, A/V) and what a decoder accepts, so the clips stay
tiny and quick to make.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import av

from gql_media.adapters.demo import ClipSpec, encode_clip


@dataclass(frozen=True, slots=True, kw_only=True)
class Source(ClipSpec):
    """A clip and its file's name (the container follows its suffix); ``subtitles`` adds a French SubRip stream."""

    name: str
    subtitles: bool = False


_SOURCE = Source(
    name="", width_px=96, height_px=64, fps=25, duration_s=5.0, audio_rate_hz=44_100, audio_layout="stereo"
)
_HEVC = replace(_SOURCE, video_codec="libx265", codec_options={"x265-params": "log-level=none"})

SOURCES = {
    "avi_mpeg4_mp3": replace(_SOURCE, name="old camera.avi", video_codec="mpeg4", audio_codec="mp3"),
    "mkv_hevc": replace(_HEVC, name="hevc clip.mkv"),
    "mkv_h264": replace(_SOURCE, name="h264 clip.mkv", subtitles=True),
    "mkv_h264_mp3": replace(_SOURCE, name="h264 mp3.mkv", audio_codec="mp3"),
    "webm_vp9": replace(_SOURCE, name="vp9 clip.webm", video_codec="libvpx-vp9", audio_codec="libopus",
                        audio_rate_hz=48_000),
    "ts_mpeg2": replace(_SOURCE, name="broadcast.ts", video_codec="mpeg2video", audio_codec="mp2",
                        audio_rate_hz=48_000),
    "mp4_h264_10bit": replace(_SOURCE, name="ten bit.mp4", pix_fmt="yuv420p10le"),
    "mkv_odd_size": replace(_SOURCE, name="odd size.mkv", video_codec="mpeg4", width_px=321, height_px=241),
    "mp4_rotated": replace(_SOURCE, name="phone.mp4", rotation_deg=90),
    "mkv_rotated": replace(_SOURCE, name="phone.mkv", rotation_deg=90),
    "audio_only": replace(_SOURCE, name="song.mp4", video_codec=None),
    "mp4_h264": replace(_SOURCE, name="plain.mp4"),
    "mp4_hevc_hev1": replace(_HEVC, name="hevc hev1.mp4", video_tag="hev1"),
    "mp4_hevc_hvc1": replace(_HEVC, name="hevc hvc1.mp4", video_tag="hvc1"),
}  # fmt: skip


def encode_source(folder: Path, spec: Source) -> Path:
    """Encode ``spec`` into ``folder``; returns the file."""
    path = encode_clip(folder / spec.name, spec)
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
SLOW = replace(
    _SOURCE,
    name="slow.avi",
    video_codec="mpeg4",
    audio_codec="mp3",
    width_px=640,
    height_px=360,
    duration_s=12.0,
    keyframe_s=2.0,
)
