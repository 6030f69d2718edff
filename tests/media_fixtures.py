"""Real media for the media tests, encoded by PyAV (no system ffmpeg): small and quick to make."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from gql_media.adapters.demo import ClipSpec, encode_clip, write_audio_only, write_hls_folder

H264 = ClipSpec(width_px=64, height_px=48, fps=10, duration_s=2.0)
VP9 = ClipSpec(width_px=64, height_px=48, fps=10, duration_s=2.0, video_codec="libvpx-vp9", audio_codec="libopus")
MPEG4 = ClipSpec(width_px=64, height_px=48, fps=10, duration_s=2.0, video_codec="mpeg4", audio_codec="mp3")
PORTRAIT = ClipSpec(width_px=48, height_px=64, fps=10, duration_s=2.0)
DARK_INTRO = ClipSpec(width_px=64, height_px=48, fps=10, duration_s=4.0, black_lead_s=0.8)
HLS = ClipSpec(width_px=64, height_px=48, fps=10, duration_s=3.0)


@dataclass(frozen=True)
class Clips:
    """One of each kind of file the media code meets."""

    h264_mp4: Path
    vp9_webm: Path
    mpeg4_avi: Path
    portrait_mp4: Path
    dark_intro_mp4: Path
    ts_segment: Path
    audio_only: Path
    empty: Path
    truncated: Path
    fake: Path
    hls_template: Path

    @property
    def broken(self) -> dict[str, Path]:
        return {"empty": self.empty, "truncated": self.truncated, "fake": self.fake, "audio_only": self.audio_only}


def make_clips(folder: Path) -> Clips:
    h264 = encode_clip(folder / "h264.mp4", H264)
    truncated = folder / "truncated.mp4"
    data = h264.read_bytes()
    # The mp4 muxer writes its index (moov) at the end: half a file cannot be read.
    truncated.write_bytes(data[: len(data) // 2])
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    fake = folder / "fake.mkv"
    fake.write_bytes(b"Just some notes, renamed to look like a video.\n" * 20)
    hls = write_hls_folder(folder / "hls-template" / "My Lecture", HLS).parent
    return Clips(
        h264_mp4=h264,
        vp9_webm=encode_clip(folder / "vp9.webm", VP9),
        mpeg4_avi=encode_clip(folder / "mpeg4.avi", MPEG4),
        portrait_mp4=encode_clip(folder / "portrait.mp4", PORTRAIT),
        dark_intro_mp4=encode_clip(folder / "dark.mp4", DARK_INTRO),
        # The second segment: its clock starts at ~1 s, not 0 (seeking must add the start time).
        ts_segment=sorted(hls.glob("*.ts"))[1],
        audio_only=write_audio_only(folder / "audio-only.mp4", 1.0),
        empty=empty,
        truncated=truncated,
        fake=fake,
        hls_template=hls,
    )


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (names included) with a hash of its bytes: "byte-identical" checks."""
    digest: dict[str, str] = {}
    for current, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(current) / name
            digest[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest
