"""A thumbnail with PyAV and Pillow: a frame near 10% of the video that is not near black.

Runs inside a media worker (``pool``). Images are written to a temp name beside their final
name and renamed over it, so a reader never sees half an image.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from typing import Any

import av
from PIL import Image, ImageStat

from gql_media.adapters.media.probe import duration_s, open_input
from gql_media.core.hls import temp_path_beside
from gql_media.core.ports import MediaError

logger = logging.getLogger(__name__)

__all__ = ["make_thumbnail", "save_image_atomically"]

# A frame darker than this mean luma (0-255) is "near black": fade-ins, title cards.
_BLACK_MEAN_LUMA = 20.0
# Where to look for a thumbnail, as fractions of the duration: ~10% first, later if it is black.
_THUMBNAIL_FRACTIONS = (0.10, 0.25, 0.40, 0.60, 0.80, 0.02)
# Decoding from the keyframe before a position to the position itself costs at most this much.
_MAX_FRAMES_TO_TARGET = 300


def _luma(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L").resize((16, 16))).mean[0])


def _frame_near(container: Any, stream: Any, target_s: float | None) -> Any:
    """The first frame at or after ``target_s`` (seconds on the file's clock), or the first frame."""
    if target_s is not None and stream.time_base:
        container.seek(int(target_s / stream.time_base), stream=stream, backward=True)
    last = None
    for count, frame in enumerate(container.decode(stream)):
        last = frame
        if target_s is None or frame.time is None or frame.time >= target_s or count >= _MAX_FRAMES_TO_TARGET:
            return frame
    return last


def _pick_frame_image(container: Any, stream: Any) -> Image.Image:
    """A frame around 10% of the duration that is not near black (else the brightest seen)."""
    seconds = duration_s(container, stream)
    # TS/HLS clocks start at ~1.4 s, not 0: positions are offsets from the start.
    start_s = float(container.start_time) / av.time_base if container.start_time is not None else 0.0
    targets: Sequence[float | None] = (
        [start_s + fraction * seconds for fraction in _THUMBNAIL_FRACTIONS] if seconds else [None]
    )
    best: tuple[float, Image.Image] | None = None
    for target_s in targets:
        try:
            frame = _frame_near(container, stream, target_s)
        except av.FFmpegError as error:
            logger.debug("no frame at %s s: %s", target_s, error)
            continue
        if frame is None:
            continue
        # One thread here too: FFmpeg's scaler otherwise starts a thread per CPU for every frame it
        # converts (two on two cores), so one worker borrowed a second core and two workers' four
        # threads fought over two (bench P6: 2.3 -> 1.9 ms of CPU per thumbnail in one process).
        image: Image.Image = frame.to_image(threads=1)
        if frame.rotation:
            # The display matrix's counter-clockwise angle; a phone's portrait clip shows upright.
            image = image.rotate(frame.rotation, expand=True)
        luma = _luma(image)
        if luma >= _BLACK_MEAN_LUMA:
            return image
        if best is None or luma > best[0]:
            best = (luma, image)
    if best is None:
        raise MediaError("no video frame could be decoded")
    return best[1]


def save_image_atomically(image: Image.Image, output_path: str) -> None:
    """Write ``image`` (JPEG or WebP by the suffix) to a temp file beside ``output_path``, then rename it over."""
    folder = os.path.dirname(output_path) or "."
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(output_path)[1].lower()
    temp = temp_path_beside(folder, suffix)
    try:
        if suffix == ".webp":
            image.save(temp, format="WEBP", quality=80, method=4)
        else:
            image.convert("RGB").save(temp, format="JPEG", quality=85, optimize=True)
        os.replace(temp, output_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def make_thumbnail(path: str | bytes, output_path: str, width_px: int) -> None:
    """Write the thumbnail of the video at ``path`` to ``output_path``, ``width_px`` wide (aspect kept)."""
    try:
        container = open_input(path)
    except av.FFmpegError as error:
        raise MediaError(f"cannot be opened: {error.strerror or error}") from error
    with container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        # One thread: a worker is one core's worth of work (the pool runs workers side by side), and
        # a few frames do not pay for starting FFmpeg's decoding threads.
        stream.codec_context.thread_count = 1
        image = _pick_frame_image(container, stream)
    sar = stream.sample_aspect_ratio
    shown_width = image.width * (float(sar) if sar else 1.0)
    height_px = max(1, round(width_px * image.height / shown_width))
    save_image_atomically(image.resize((width_px, height_px), Image.Resampling.BILINEAR), output_path)
