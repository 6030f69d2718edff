"""The HLS VOD plan of a source: its segments and the playlist naming them.

Standard library only. The playlist is made at once from the probed duration: segment ``i``
covers ``[i * target_s, (i + 1) * target_s)`` of the source's presentation clock (started at 0),
the last one runs to the end. Because every boundary is a pure function of the duration, any
segment can be made on its own, in any order: a seek far ahead starts at its segment without
the ones between. A tail shorter than ``min_tail_s`` joins the segment before it (a player
stalls on a fraction-of-a-second segment).

A REMUX copies the video, so it can only cut at keyframes. When the container has an index
(MP4, Matroska cues, AVI), the plan's boundaries are keyframes from it, so the playlist's
durations are exact. Without one (MPEG-TS) the worker snaps each nominal boundary to the first
keyframe at or after it; both segments beside a boundary snap it the same way, so they still
tile the source with no gap and no overlap, and the durations are nominal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_SEGMENT_S", "Segment", "plan_segments", "render_playlist", "segment_at"]

# 4 s: the short end of the usual 4-6 s, because a viewer waits for a whole segment after a start or a seek.
DEFAULT_SEGMENT_S = 4.0
MIN_TAIL_S = 1.5


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: ``[start_s, end_s)`` of the source's clock (0 = its first frame)."""

    index: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def plan_segments(
    duration_s: float,
    target_s: float = DEFAULT_SEGMENT_S,
    min_tail_s: float = MIN_TAIL_S,
    keyframes_s: Sequence[float] = (),
    start_segments_s: Sequence[float] = (),
) -> list[Segment]:
    """The segments of a source lasting ``duration_s``; raises ValueError for a source with no length.

    With ``keyframes_s`` (a copy's only possible cuts, from the container's index) every boundary
    is a keyframe: the first one at least ``target_s`` after the segment's start. Otherwise the
    first segments last ``start_segments_s`` (short ones: playback starts once the first is
    made), then ``target_s`` each.
    """
    if not duration_s or duration_s <= 0 or math.isnan(duration_s) or math.isinf(duration_s):
        raise ValueError("the source has no known duration")
    if target_s <= 0:
        raise ValueError("target_s must be positive")
    if len(keyframes_s) >= 2:
        return _plan_at_keyframes(duration_s, target_s, min_tail_s, keyframes_s)
    starts = [0.0]
    lengths = iter(start_segments_s)
    while True:
        following = starts[-1] + next(lengths, target_s)
        if following >= duration_s - 1e-9:
            break
        starts.append(following)
    if len(starts) > 1 and duration_s - starts[-1] < min_tail_s:
        starts.pop()
    ends = [*starts[1:], duration_s]
    return [Segment(i, start, end) for i, (start, end) in enumerate(zip(starts, ends, strict=True))]


def _plan_at_keyframes(
    duration_s: float, target_s: float, min_tail_s: float, keyframes_s: Sequence[float]
) -> list[Segment]:
    starts = [0.0]
    for keyframe_s in sorted(keyframes_s):
        if keyframe_s >= starts[-1] + target_s - 1e-6 and duration_s - keyframe_s >= min_tail_s:
            starts.append(keyframe_s)
    ends = [*starts[1:], duration_s]
    return [Segment(i, start, end) for i, (start, end) in enumerate(zip(starts, ends, strict=True))]


def segment_at(segments: list[Segment], index: int) -> Segment:
    """Segment ``index``; raises IndexError past the end."""
    if index < 0 or index >= len(segments):
        raise IndexError(f"no segment {index} (the source has {len(segments)})")
    return segments[index]


def render_playlist(segments: list[Segment], segment_url: Callable[[int], str], init_url: str | None = None) -> str:
    """The m3u8 media playlist (VOD, complete): MPEG-TS segments, or fMP4 ones after the init segment ``init_url``.

    fMP4 segments (``EXT-X-MAP``) need version 6 (7 as Apple's authoring rules ask for fMP4);
    MPEG-TS keeps version 3, which every player reads.
    """
    target = max(math.ceil(s.duration_s) for s in segments)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3" if init_url is None else "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if init_url is not None:
        lines.append(f'#EXT-X-MAP:URI="{init_url}"')
    for segment in segments:
        lines.append(f"#EXTINF:{segment.duration_s:.3f},")
        lines.append(segment_url(segment.index))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
