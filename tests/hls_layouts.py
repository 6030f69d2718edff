"""HLS downloads as real tools leave them, made with PyAV (and, where PyAV cannot, by hand).

PyAV's HLS muxer writes MPEG-TS and fMP4 (``init.mp4`` + ``.m4s``) downloads and single-file
byte-range playlists. What it cannot write is done here as a downloader would leave it: the
playlist rewritten to name its CDN, AES-128 segments encrypted with ``cryptography`` and a key
file saved beside them, master playlists over variant folders, discontinuities and renamed
segments. Every function returns the download's folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gql_media.adapters.demo import ClipSpec, encode_clip

AUDIO_RATE_HZ = 48_000
FPS = 10

Layout = Callable[[Path], Path]
"""Makes one download in the folder it is given (one of the functions below), and returns the folder."""


def make_templates(base: Path, layouts: Mapping[str, Layout]) -> Path:
    """Each layout made once, in ``base / name``: a test module's templates, which its tests copy."""
    for name, make in layouts.items():
        make(base / name)
    return base


def copy_download(templates: Path, tmp_path: Path, name: str, parent: str = "Downloads") -> Path:
    """A fresh copy of template ``name`` in ``tmp_path / parent``, for a test to merge or break."""
    (tmp_path / parent).mkdir(exist_ok=True)
    return Path(shutil.copytree(templates / name, tmp_path / parent / name))


def encode_hls(
    playlist: Path,
    *,
    duration_s: float = 3.0,
    size: tuple[int, int] | None = (64, 48),
    audio: bool = True,
    options: dict[str, str] | None = None,
    start_s: float = 0.0,
    video_codec: str = "libx264",
    video_tag: str | None = None,
) -> Path:
    """Encode a clip as an HLS playlist with 1 s segments; ``size=None`` for audio only.

    ``video_tag`` names the fMP4 sample entry (``hvc1`` as Apple's HLS has it; FFmpeg writes ``hev1``).
    """
    width_px, height_px = size or (64, 48)
    spec = ClipSpec(
        width_px=width_px,
        height_px=height_px,
        fps=FPS,
        duration_s=duration_s,
        video_codec=None if size is None else video_codec,
        audio_codec="aac" if audio else None,
        video_tag=video_tag,
        codec_options={"preset": "ultrafast", "x265-params": "log-level=error"} if video_codec == "libx265" else {},
        audio_rate_hz=AUDIO_RATE_HZ,
        start_s=start_s,
    )
    merged = {"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod", **(options or {})}
    return encode_clip(playlist, spec, format="hls", options=merged)


def _segment_names(playlist: Path) -> list[str]:
    return [line for line in playlist.read_text().splitlines() if line and not line.startswith("#")]


def mpegts(folder: Path, duration_s: float = 3.0) -> Path:
    """The plain layout: ``index.m3u8`` and ``index0.ts``..."""
    encode_hls(folder / "index.m3u8", duration_s=duration_s)
    return folder


def fmp4(folder: Path) -> Path:
    """Fragmented MP4: ``#EXT-X-MAP:URI="init.mp4"`` and ``.m4s`` segments."""
    encode_hls(folder / "index.m3u8", options={"hls_segment_type": "fmp4", "hls_fmp4_init_filename": "init.mp4"})
    assert (folder / "init.mp4").exists()
    return folder


def hevc(folder: Path, segment_type: str = "mpegts", tag: str | None = None) -> Path:
    """HEVC video: in MPEG-TS segments, or fMP4 ones whose init names the sample entry ``tag``."""
    options = {"hls_segment_type": segment_type}
    if segment_type == "fmp4":
        options["hls_fmp4_init_filename"] = "init.mp4"
    encode_hls(folder / "index.m3u8", options=options, video_codec="libx265", video_tag=tag)
    return folder


def byte_ranges(folder: Path) -> Path:
    """One media file, the playlist naming ``EXT-X-BYTERANGE`` pieces of it (``hls_flags=single_file``)."""
    encode_hls(folder / "index.m3u8", options={"hls_flags": "single_file"})
    assert "#EXT-X-BYTERANGE" in (folder / "index.m3u8").read_text()
    return folder


def cdn_names(folder: Path, query: bool = True) -> Path:
    """The playlist still names the CDN (``https://cdn.example.com/v/index0.ts?token=...``); files saved beside it."""
    playlist = mpegts(folder) / "index.m3u8"
    text = playlist.read_text()
    for name in _segment_names(playlist):
        url = f"https://cdn.example.com/v/{name}" + ("?token=abc&exp=1" if query else "")
        text = text.replace(f"\n{name}\n", f"\n{url}\n")
    playlist.write_text(text)
    return folder


def _encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()


def aes128(folder: Path, key_uri: str = "key.bin", explicit_iv: bool = False, media_sequence: int = 0) -> Path:
    """AES-128 segments and the key saved as ``key.bin`` beside them (what a downloader leaves).

    ``key_uri`` is written in the playlist as given (``{key}`` is replaced by the key's absolute
    path); the IV is explicit (``IV=0x...``) or the segment's media sequence number.
    """
    playlist = mpegts(folder) / "index.m3u8"
    key = os.urandom(16)
    key_name = os.path.basename(key_uri.partition("?")[0]) if "{key}" not in key_uri else "key.bin"
    (folder / key_name).write_bytes(key)
    explicit = bytes(range(16))
    lines = playlist.read_text().splitlines()
    uri = key_uri.replace("{key}", str(folder / key_name))
    key_line = f'#EXT-X-KEY:METHOD=AES-128,URI="{uri}"' + (f",IV=0x{explicit.hex()}" if explicit_iv else "")
    out: list[str] = []
    sequence = media_sequence
    for line in lines:
        if line.startswith("#EXT-X-MEDIA-SEQUENCE"):
            out.append(f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}")
            continue
        if line.startswith("#EXTINF") and key_line not in out:
            out.append(key_line)
        if line and not line.startswith("#"):
            segment = folder / line
            iv = explicit if explicit_iv else sequence.to_bytes(16, "big")
            segment.write_bytes(_encrypt(segment.read_bytes(), key, iv))
            sequence += 1
        out.append(line)
    playlist.write_text("\n".join(out) + "\n")
    return folder


def master(folder: Path, *, broken_best: bool = True, audio_rendition: bool = True) -> Path:
    """A master playlist over variant folders (``720p/``, ``360p/``) and an alternate audio rendition.

    With ``broken_best`` the master also lists a higher variant (``1080p/``) whose last segment
    never arrived: the best *complete* variant is 720p.
    """
    folder.mkdir(parents=True, exist_ok=True)
    audio_attr = ',AUDIO="aud"' if audio_rendition else ""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    if audio_rendition:
        encode_hls(folder / "audio" / "en" / "index.m3u8", size=None, audio=True)
        lines.append('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,URI="audio/en/index.m3u8"')
    variants = [("1080p", (128, 72), 3_000_000), ("720p", (96, 54), 2_000_000), ("360p", (64, 36), 800_000)]
    for name, size, bandwidth in variants:
        if name == "1080p" and not broken_best:
            continue
        encode_hls(folder / name / "index.m3u8", size=size, audio=not audio_rendition)
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={size[0]}x{size[1]}{audio_attr}")
        lines.append(f"{name}/index.m3u8")
    if broken_best:
        segments = sorted((folder / "1080p").glob("*.ts"))
        segments[-1].unlink()
    (folder / "master.m3u8").write_text("\n".join(lines) + "\n")
    return folder


def discontinuity(folder: Path, video_codec: str = "libx264", second_size: tuple[int, int] = (64, 48)) -> Path:
    """Two recordings in one playlist with ``EXT-X-DISCONTINUITY``: the second's clock starts over (and jumps).

    ``second_size`` other than the first's gives the second its own parameter sets (SPS...).
    """
    return _joined(
        folder,
        {"duration_s": 2.0, "video_codec": video_codec},
        {"duration_s": 2.0, "start_s": 500.0, "size": second_size, "video_codec": video_codec},
        discontinuity=True,
    )


def audio_gone(folder: Path) -> Path:
    """A stream that dropped its audio after the first segment, its clock going on (no discontinuity
    tag): the first segment holds video and audio, the next ones video alone."""
    return _joined(
        folder, {"duration_s": 1.0}, {"duration_s": 2.0, "start_s": 1.0, "audio": False}, discontinuity=False
    )


def _joined(folder: Path, first: dict[str, Any], second: dict[str, Any], *, discontinuity: bool) -> Path:
    """Two recordings (``encode_hls`` arguments) one after the other in one MPEG-TS playlist."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for part, arguments in (("a", first), ("b", second)):
        playlist = encode_hls(folder / part / "index.m3u8", **arguments)
        text = playlist.read_text().splitlines()
        if part == "b" and discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        for index, line in enumerate(text):
            if line.startswith("#EXTINF"):
                name = text[index + 1]
                shutil.move(str(folder / part / name), str(folder / f"{part}-{name}"))
                lines += [line, f"{part}-{name}"]
        shutil.rmtree(folder / part)
    lines.append("#EXT-X-ENDLIST")
    (folder / "index.m3u8").write_text("\n".join(lines) + "\n")
    return folder


def out_of_name_order(folder: Path) -> Path:
    """Segments whose names sort differently from their play order (``c.ts``, ``a.ts``, ``b.ts``)."""
    playlist = mpegts(folder) / "index.m3u8"
    text = playlist.read_text()
    for name, new in zip(_segment_names(playlist), ("c.ts", "a.ts", "b.ts"), strict=True):
        (folder / name).rename(folder / new)
        text = text.replace(f"\n{name}\n", f"\n{new}\n")
    playlist.write_text(text)
    return folder


def sample_aes(folder: Path) -> Path:
    """``METHOD=SAMPLE-AES``: refused with its reason."""
    playlist = mpegts(folder) / "index.m3u8"
    (folder / "key.bin").write_bytes(os.urandom(16))
    text = playlist.read_text().replace("#EXTINF", '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin"\n#EXTINF', 1)
    playlist.write_text(text)
    return folder
