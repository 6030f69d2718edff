"""Real media for the media measures, made once with ``gql_media.adapters.demo`` and kept in the workdir.

- ``clips(n)``: n short H.264/AAC mp4s (320x180, 15 fps, 3 s), each a little different.
- ``hls_download(seconds)``: an HLS download (``index.m3u8`` + 6 s ``.ts`` segments) at 1280x720, 25 fps.
- ``tiny_clip()``: one 64x48 clip, the file P4 copies in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from gql_media.adapters.demo import ClipSpec, encode_clip, write_hls_folder

_MARKER = ".bench-assets.json"
CLIP_SPEC = ClipSpec(width_px=320, height_px=180, fps=15, duration_s=3.0)
HLS_SEGMENT_S = 6


def _cached(folder: Path, shape: dict[str, object]) -> bool:
    marker = folder / _MARKER
    return marker.is_file() and json.loads(marker.read_text()) == shape


def _fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def clips(workdir: Path, count: int) -> list[Path]:
    """``count`` real clips in ``workdir/clips-<count>`` (made on the first call)."""
    folder = workdir / f"clips-{count}"
    shape: dict[str, object] = {"count": count, "spec": repr(CLIP_SPEC), "layout": 1}
    paths = [folder / f"clip {index:03d}.mp4" for index in range(count)]
    if not _cached(folder, shape):
        _fresh(folder)
        for index, path in enumerate(paths):
            # Slightly different lengths, so no two files are byte-identical.
            encode_clip(path, dataclasses.replace(CLIP_SPEC, duration_s=3.0 + (index % 5) / 15))
        (folder / _MARKER).write_text(json.dumps(shape))
    return paths


def hls_download(workdir: Path, seconds: int) -> Path:
    """The playlist of a ``seconds`` long 720p HLS download in ``workdir/hls-<seconds>s/<name>``."""
    parent = workdir / f"hls-{seconds}s"
    shape: dict[str, object] = {"seconds": seconds, "segment_s": HLS_SEGMENT_S, "layout": 1}
    folder = parent / "Lecture"
    if not _cached(parent, shape):
        _fresh(parent)
        spec = ClipSpec(width_px=1280, height_px=720, fps=25, duration_s=float(seconds))
        write_hls_folder(folder, spec, segment_s=HLS_SEGMENT_S)
        (parent / _MARKER).write_text(json.dumps(shape))
    return folder / "index.m3u8"


def tiny_clip(workdir: Path) -> Path:
    path = workdir / "tiny-clip.mp4"
    if not path.is_file():
        temp = workdir / ".tiny-clip.tmp.mp4"
        encode_clip(temp)
        os.replace(temp, path)
    return path
