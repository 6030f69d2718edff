"""P11-P14 (issue 14): how soon a viewer gets a segment, and how fast one worker transcodes.

Each measure runs the streaming service on its real PyAV worker pool, warmed (its processes
started and ``av`` imported by a probe of another file) but with a cold cache and a source it
never saw: the clock runs from the playlist (plan + playlist text) to the segment's file.

Sources are made once with PyAV and kept in the workdir. A long source is a short encoded clip
copied end to end by stream copy (its timestamps moved on), so a 10-minute 1080p file costs
seconds to make; its keyframes come every 10 s, as in real files, so a seek decodes from one.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

from bench.measures import QUICK, Bench, Row
from gql_media.adapters.media.transcode import PyAvSegmentWorkers
from gql_media.core.models import VideoStatus
from gql_media.core.playback import PlaybackMethod, SegmentSpec
from gql_media.core.segment_cache import SegmentCache
from gql_media.core.streaming import PlaybackSettings, SourceFile, StreamingService
from gql_media.core.vod_plan import plan_segments, render_playlist

FPS = 25
KEYFRAME_S = 10
AUDIO_RATE_HZ = 44_100
REPS = 3


def _frames(width: int, height: int, count: int) -> list[av.VideoFrame]:
    """``count`` distinct pictures: a gradient and a moving box (the encoder has motion to code)."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    frames = []
    for index in range(count):
        image = base.copy()
        draw = ImageDraw.Draw(image)
        x = (index * width // count) % max(1, width - width // 8)
        draw.rectangle([x, height // 3, x + width // 8, height // 3 + height // 6], fill=(230, 90, 40))
        frames.append(av.VideoFrame.from_image(image))  # type: ignore[no-untyped-call]
    return frames


def _encode_base(path: Path, codec: str, audio_codec: str, width: int, height: int, seconds: int) -> None:
    pictures = _frames(width, height, 50)
    with av.open(str(path), "w") as container:
        video: Any = container.add_stream(codec, rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = FPS * KEYFRAME_S
        if codec == "libx264":
            video.codec_context.options = {"preset": "ultrafast"}
        else:
            video.codec_context.bit_rate = 8_000_000
        audio: Any = container.add_stream(audio_codec, rate=AUDIO_RATE_HZ)
        audio.layout = "stereo"
        samples = AUDIO_RATE_HZ // FPS
        silence = bytes(samples * 4)
        for index in range(seconds * FPS):
            frame = pictures[index % len(pictures)]
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
            sound = av.AudioFrame(format="s16", layout="stereo", samples=samples)
            sound.planes[0].update(silence)
            sound.sample_rate = AUDIO_RATE_HZ
            sound.pts = index * samples
            sound.time_base = Fraction(1, AUDIO_RATE_HZ)
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))


def _repeat(base: Path, output: Path, times: int) -> None:
    """``base`` copied ``times`` times end to end (stream copy, timestamps moved on)."""
    with av.open(str(base)) as probe:
        length_s = float(probe.duration or 0) / av.time_base
    with av.open(str(output), "w") as out:
        with av.open(str(base)) as first:
            streams = {s.index: out.add_stream_from_template(s) for s in first.streams if s.type in ("video", "audio")}
        for copy in range(times):
            with av.open(str(base)) as source:
                for packet in source.demux():
                    if packet.dts is None or packet.stream.index not in streams:
                        continue
                    shift = round(copy * length_s / packet.time_base)
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts += shift
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)


def _source(bench: Bench, name: str, codec: str, audio_codec: str, height: int, seconds: int) -> Path:
    if bench.sizes is QUICK:  # a smoke run: small sources, the same steps
        height, seconds, name = 360, min(seconds, 60), f"quick {name}"
    folder = bench.workdir / "playback"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if path.exists():
        return path
    width = height * 16 // 9
    base = folder / f"base-{name}"
    bench.log(f"making {name} ({width}x{height}, {seconds} s)")
    _encode_base(base, codec, audio_codec, width, height, min(seconds, 2 * KEYFRAME_S))
    partial = path.with_name(f".partial-{name}")
    _repeat(base, partial, max(1, seconds // (2 * KEYFRAME_S)))
    partial.replace(path)
    base.unlink()
    return path


def _file(video_id: int, path: Path) -> SourceFile:
    st = path.stat()
    return SourceFile(video_id, str(path), st.st_size, st.st_mtime_ns, VideoStatus.READY)


async def _ready_times(
    bench: Bench, source: Path, segment: str, warm_with: Path, max_height_px: int = 1080
) -> tuple[list[float], PlaybackMethod, int]:
    """Seconds from the playlist to segment ``segment`` ("first" or "middle"), each rep on a cold cache."""
    workers = PyAvSegmentWorkers(2, timeout_s=120)
    try:
        await workers.probe_streams(str(warm_with))  # processes started, av imported
        times: list[float] = []
        method = PlaybackMethod.TRANSCODE
        index = 0
        for rep in range(REPS):
            cache = SegmentCache(bench.fresh_data_dir(f"p1x-{rep}"), 1 << 30)
            service = StreamingService(
                workers, cache, PlaybackSettings(max_height_px=max_height_px, preset="veryfast", slots=1, read_ahead=0)
            )
            await service.start()
            file = _file(1000 + rep, source)
            started = time.perf_counter()
            method, segments = await service.plan(file)
            render_playlist(segments, lambda i: f"{i}.ts")
            index = 0 if segment == "first" else len(segments) // 2
            await service.segment(file, index)
            times.append(time.perf_counter() - started)
            await service.aclose()
        return times, method, index
    finally:
        await workers.aclose()


def _mpeg4_avi(bench: Bench) -> Path:
    """The 20-s 1080p MPEG-4/MP3 AVI: a TRANSCODE source."""
    return _source(bench, "p11 1080p mpeg4.avi", "mpeg4", "mp3", 1080, 20)


def _h264_mkv(bench: Bench) -> Path:
    """The 20-s 1080p H.264/AAC MKV: a REMUX source."""
    return _source(bench, "p14 1080p h264.mkv", "libx264", "aac", 1080, 20)


def _measure_ready(
    bench: Bench, row: Row, goal_s: float, source: Path, segment: str, method: PlaybackMethod, warm: Path, note: str
) -> Row:
    """``row`` with the median time to ``source``'s ``segment`` (played by ``method``) and ``note``, whose
    ``{index}`` is the segment's index; ``warm`` starts the workers (a file of the other method)."""
    times, played, index = asyncio.run(_ready_times(bench, source, segment, warm))
    assert played is method
    row.value = round(statistics.median(times), 3)
    row.unit = "s"
    row.ok = row.value <= goal_s
    row.reps = len(times)
    row.note = note.format(index=index)
    row.extra = {"times_s": [round(t, 3) for t in times]}
    return row


def measure_p11(bench: Bench) -> Row:
    row = Row("P11", "TRANSCODE 1080p MPEG-4 AVI: playlist -> first segment", "<= 1.5 s")
    note = "1080p MPEG-4/MP3 AVI, 1 s first segment, libx264 veryfast at 1080p"
    return _measure_ready(bench, row, 1.5, _mpeg4_avi(bench), "first", PlaybackMethod.TRANSCODE, _h264_mkv(bench), note)


def measure_p12(bench: Bench) -> Row:
    source = _mpeg4_avi(bench)

    async def run() -> tuple[float, float]:
        workers = PyAvSegmentWorkers(1, timeout_s=300)
        try:
            streams = await workers.probe_streams(str(source))
            segments = plan_segments(streams.duration_s)
            out = bench.fresh_data_dir("p12")
            out.mkdir(parents=True)
            started = time.perf_counter()
            for segment in segments:
                last = segment.index == len(segments) - 1
                spec = SegmentSpec(
                    path=str(source),
                    method=PlaybackMethod.TRANSCODE,
                    start_s=segment.start_s,
                    end_s=None if last else segment.end_s,
                    output_path=str(out / f"{segment.index}.ts"),
                    max_height_px=720,
                    preset="veryfast",
                )
                await workers.make_segment(spec)
            return streams.duration_s, time.perf_counter() - started
        finally:
            await workers.aclose()

    media_s, wall_s = asyncio.run(run())
    row = Row("P12", "transcode speed of one worker, 1080p -> 720p", ">= 2x")
    row.value = round(media_s / wall_s, 2)
    row.unit = "x realtime"
    row.ok = row.value >= 2.0
    row.note = f"{media_s:.0f} s of 1080p MPEG-4 in {wall_s:.1f} s, libx264 veryfast, one worker process"
    return row


def measure_p13(bench: Bench) -> Row:
    row = Row("P13", "seek to the middle of a 10-min TRANSCODE source", "<= 1.5 s")
    source = _source(bench, "p13 10 min 1080p mpeg4.avi", "mpeg4", "mp3", 1080, 600)
    note = "segment {index} of a 10-min 1080p MPEG-4 AVI, keyframes every 10 s"
    return _measure_ready(bench, row, 1.5, source, "middle", PlaybackMethod.TRANSCODE, _h264_mkv(bench), note)


def measure_p14(bench: Bench) -> Row:
    row = Row("P14", "REMUX 1080p H.264 MKV: playlist -> first segment", "<= 0.3 s")
    note = "1080p H.264/AAC MKV, video copied, keyframes every 10 s"
    return _measure_ready(bench, row, 0.3, _h264_mkv(bench), "first", PlaybackMethod.REMUX, _mpeg4_avi(bench), note)
