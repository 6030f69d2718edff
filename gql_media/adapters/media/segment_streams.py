"""The output streams of one HLS segment: video frames shaped for the encoder, audio cut on a sample grid.

Plain classes run inside a media worker (``segments`` makes the segment around them). Every
output timestamp is the source's own time moved to start at ``OUTPUT_OFFSET_S``, so segments made
apart share one clock; audio is cut on a 48 kHz grid fixed by that clock, so its samples line up
across segments too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av

__all__ = ["AUDIO_RATE_HZ", "OUTPUT_OFFSET_S", "AudioCutter", "VideoShaper", "output_size"]

# Keeps every decoding timestamp positive (B-frames decode before they show): see ``segments``.
OUTPUT_OFFSET_S = 10.0
AUDIO_RATE_HZ = 48_000
_AAC_FRAME_SAMPLES = 1024


def output_size(
    width: int, height: int, sar: Fraction | None, rotation_deg: int, max_height_px: int
) -> tuple[int, int]:
    """The encoded size: square pixels, rotated as shown, at most ``max_height_px`` high, both even."""
    shown_width = width * float(sar) if sar else float(width)
    shown_height = float(height)
    if rotation_deg in (90, 270):
        shown_width, shown_height = shown_height, shown_width
    scale = min(1.0, max_height_px / shown_height) if shown_height else 1.0
    # Nearest even sizes, but never above the source's (321x241 becomes 320x240).
    out_w = max(2, min(round(shown_width * scale / 2) * 2, int(shown_width * scale) // 2 * 2 + 2))
    out_h = max(2, min(round(shown_height * scale / 2) * 2, int(shown_height) // 2 * 2))
    return out_w, out_h


class VideoShaper:
    """Rotates (by the display matrix), scales and converts decoded frames for the encoder."""

    def __init__(self, stream: Any, rotation_deg: int, size: tuple[int, int]) -> None:
        self.size = size
        self.graph: Any = None
        if rotation_deg in (90, 180, 270):
            graph = av.filter.Graph()
            source = graph.add_buffer(template=stream)
            # The display matrix angle is counter-clockwise.
            chain = {90: ["transpose=cclock"], 270: ["transpose=clock"], 180: ["hflip", "vflip"]}[rotation_deg]
            nodes = [source]
            for spec in chain:
                name, _, args = spec.partition("=")
                nodes.append(graph.add(name, args or None))
            nodes.append(graph.add("buffersink"))
            graph.link_nodes(*nodes).configure()
            self.graph = graph

    def shape(self, frame: Any) -> Iterator[Any]:
        frames = [frame]
        if self.graph is not None:
            self.graph.push(frame)
            frames = []
            with contextlib.suppress(av.BlockingIOError, av.EOFError):
                while True:
                    frames.append(self.graph.pull())
        for item in frames:
            yield item.reformat(width=self.size[0], height=self.size[1], format="yuv420p")


class AudioCutter:
    """Decoded audio -> 48 kHz stereo AAC covering exactly samples [first, last) of the output grid."""

    def __init__(self, output: Any, first_sample: int, last_sample: int | None, source_start_s: float) -> None:
        self.stream = output.add_stream("aac", rate=AUDIO_RATE_HZ)
        self.stream.layout = "stereo"
        self.stream.codec_context.time_base = Fraction(1, AUDIO_RATE_HZ)
        self.stream.time_base = Fraction(1, AUDIO_RATE_HZ)
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE_HZ)
        self.fifo = av.AudioFifo()
        self.first = first_sample
        self.last = last_sample
        self.source_start_s = source_start_s
        self.next_sample: int | None = None  # the grid position of the fifo's next sample
        self.written = 0  # samples handed to the encoder
        self.output = output

    @property
    def done(self) -> bool:
        return self.last is not None and self.next_sample is not None and self.next_sample >= self.last

    def add(self, frame: Any) -> None:
        if self.done or frame.time is None:
            return
        for resampled in self.resampler.resample(frame):
            self._add_resampled(resampled, frame.time - self.source_start_s)

    def _add_resampled(self, frame: Any, time_s: float) -> None:
        if self.next_sample is None:
            position = round(time_s * AUDIO_RATE_HZ)
            if position > self.first:
                # The audio starts after the segment does: silence keeps A/V in step.
                self._push_silence(position - self.first)
                self.next_sample = self.first
            else:
                self.next_sample = position
        frame.pts = None
        self.fifo.write(frame)
        buffered = self.fifo.samples
        end = self.next_sample + buffered
        if self.next_sample < self.first:
            skip = min(buffered, self.first - self.next_sample)
            if skip:
                self.fifo.read(skip)
                self.next_sample += skip
        if self.last is not None and end > self.last:
            keep = max(0, self.last - self.next_sample)
            self._encode_from_fifo(keep)
            self.fifo = av.AudioFifo()
            self.next_sample = self.last
            return
        self._encode_from_fifo(None)

    def _push_silence(self, samples: int) -> None:
        silence = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        silence.sample_rate = AUDIO_RATE_HZ
        self.fifo.write(silence)

    def _encode_from_fifo(self, limit: int | None) -> None:
        """Encode whole AAC frames from the fifo (up to ``limit`` samples: the rest too, partial)."""
        assert self.next_sample is not None
        while True:
            available = self.fifo.samples if limit is None else min(self.fifo.samples, limit)
            if available <= 0 or (limit is None and available < _AAC_FRAME_SAMPLES):
                return
            take = min(_AAC_FRAME_SAMPLES, available)
            frame = self.fifo.read(take)
            if frame is None:
                return
            frame.pts = self.next_sample + round(OUTPUT_OFFSET_S * AUDIO_RATE_HZ)
            frame.time_base = Fraction(1, AUDIO_RATE_HZ)
            frame.sample_rate = AUDIO_RATE_HZ
            self.output.mux(self.stream.encode(frame))
            self.next_sample += take
            self.written += take
            if limit is not None:
                limit -= take

    def finish(self) -> None:
        """Flush: what is left in the fifo (the source's end) and the encoder."""
        if self.next_sample is not None and self.fifo.samples:
            self._encode_from_fifo(self.fifo.samples)
        self.output.mux(self.stream.encode(None))
