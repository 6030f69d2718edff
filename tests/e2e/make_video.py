"""Write a small, real, seekable H.264 MP4 (moving colour bars) with PyAV: a test fixture for the browser test.

python tests/e2e/make_video.py out.mp4 [seconds] [hue-shift]
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av


def make_video(
    path: Path, seconds: float = 4.0, shift: int = 0, width: int = 320, height: int = 180, fps: int = 25
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"g": str(fps), "preset": "ultrafast"}  # a keyframe per second: seeking works
        n = int(seconds * fps)
        for i in range(n):
            row = bytearray()
            for x in range(width):
                band = ((x + i * 4) // 40 + shift) % 6
                r, g, b = [
                    (230, 60, 60),
                    (230, 180, 40),
                    (60, 190, 80),
                    (40, 160, 220),
                    (120, 80, 220),
                    (220, 80, 180),
                ][band]
                row += bytes((r, g, b))
            frame = av.VideoFrame(width, height, "rgb24")
            frame.planes[0].update(
                bytes(row) * height
                if frame.planes[0].line_size == width * 3
                else _pad(row, frame.planes[0].line_size, height)
            )
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _pad(row: bytearray, line_size: int, height: int) -> bytes:
    return (bytes(row) + b"\0" * (line_size - len(row))) * height


if __name__ == "__main__":
    make_video(
        Path(sys.argv[1]),
        float(sys.argv[2]) if len(sys.argv) > 2 else 4.0,
        int(sys.argv[3]) if len(sys.argv) > 3 else 0,
    )
