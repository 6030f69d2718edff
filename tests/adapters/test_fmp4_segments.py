"""The HEVC stream in fMP4 (CMAF), made by the worker functions and read back with PyAV.

HEVC sources encoded here with libx265 (PyAV's wheel) are cut into the stream's init segment and
``.m4s`` fragments, each fragment made alone as the server makes them on demand, then read
back as a player does: the init, then a fragment (or all of them in a row). An ``hev1`` MP4
(what FFmpeg writes by default, and what Safari refuses) must come out tagged ``hvc1``, every
source frame in exactly one fragment, the decoding clock running on across fragments, and the
fragments' durations adding up to the source's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest

from gql_media.adapters.media.fmp4 import split_init
from gql_media.adapters.media.playback_probe import probe_streams
from gql_media.adapters.media.segments import OUTPUT_OFFSET_S, make_init_segment, make_segment
from gql_media.core.playback import PlaybackMethod, SegmentSpec, SourceStreams, StreamVariant, SubtitleStream, decide
from gql_media.core.ports import MediaError
from gql_media.core.vod_plan import Segment, plan_segments
from tests.playback_sources import SOURCES, encode_source

SEGMENT_S = 2.0
FPS = 25
SAFARI = ["hvc1.1.6.L93.B0"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    assert "libx265" in av.codecs_available
    folder = tmp_path_factory.mktemp("hevc-sources")
    return {
        # 7 s, a keyframe a second at least (x265 adds some at scene cuts): three 2-3 s fragments.
        "hev1": encode_source(folder, replace(SOURCES["mp4_hevc_hev1"], duration_s=7.0)),
        "hvc1": encode_source(folder, SOURCES["mp4_hevc_hvc1"]),
        # Matroska has no sample entry; its MP3 audio becomes AAC in the copy.
        "mkv_mp3": encode_source(folder, replace(SOURCES["mkv_hevc"], name="hevc mp3.mkv", audio_codec="mp3")),
        "mkv_h264": encode_source(folder, SOURCES["mkv_h264"]),
    }


def _streams(source: Path) -> SourceStreams:
    info = probe_streams(str(source))
    return SourceStreams(**{**info, "subtitles": tuple(SubtitleStream(**s) for s in info["subtitles"])})


def _spec(source: Path, segment: Segment | None, last: bool, output: Path, init: Path | None) -> SegmentSpec:
    return SegmentSpec(
        path=str(source),
        method=PlaybackMethod.REMUX,
        start_s=segment.start_s if segment else 0.0,
        end_s=None if segment is None or last else segment.end_s,
        output_path=str(output),
        variant=StreamVariant.HEVC,
        init_path=str(init) if init is not None else None,
    )


@dataclass
class Stream:
    streams: SourceStreams
    segments: list[Segment]
    init: bytes
    fragments: list[bytes]


def _make_stream(source: Path, folder: Path, order: list[int] | None = None) -> Stream:
    """The init, then every fragment made alone (in ``order``), as the server makes them."""
    streams = _streams(source)
    segments = plan_segments(streams.duration_s, SEGMENT_S, keyframes_s=streams.keyframes_s)
    folder.mkdir()
    init = folder / "init.mp4"
    make_init_segment(_spec(source, None, True, init, None))
    for index in order or range(len(segments)):
        last = index == len(segments) - 1
        make_segment(_spec(source, segments[index], last, folder / f"{index}.m4s", init))
    fragments = [(folder / f"{i}.m4s").read_bytes() for i in range(len(segments))]
    return Stream(streams, segments, init.read_bytes(), fragments)


@dataclass
class Packets:
    """What a player reads from the init and one fragment: per stream, (pts, dts, duration) in seconds."""

    video_tag: str
    video: list[tuple[float, float, float]]
    audio: list[tuple[float, float, float]]


def _read(path: Path) -> Packets:
    found: dict[str, list[tuple[float, float, float]]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        tag = container.streams.video[0].codec_context.codec_tag
        for packet in container.demux():
            if packet.pts is None or packet.dts is None or not packet.time_base:
                continue
            base = packet.time_base
            found[packet.stream.type].append(
                (float(packet.pts * base), float(packet.dts * base), float(packet.duration * base))
            )
    return Packets(tag, found["video"], found["audio"])


def _source_video_pts_s(source: Path) -> list[float]:
    with av.open(str(source)) as container:
        video = container.streams.video[0]
        start = container.start_time / av.time_base if container.start_time is not None else 0.0
        times = [float(p.pts * p.time_base) for p in container.demux(video) if p.pts is not None]
    return sorted(round(t - start + OUTPUT_OFFSET_S, 6) for t in times)


def _played(stream: Stream, folder: Path) -> list[Packets]:
    """Each fragment read back alone after the init, as a player starting (or seeking) there does."""
    read = []
    for index, fragment in enumerate(stream.fragments):
        alone = folder / f"played-{index}.mp4"
        alone.write_bytes(stream.init + fragment)
        read.append(_read(alone))
    return read


def test_the_probe_records_the_sample_entry(sources: dict[str, Path]) -> None:
    assert _streams(sources["hev1"]).video_tag == "hev1"
    assert _streams(sources["hvc1"]).video_tag == "hvc1"
    assert _streams(sources["mkv_mp3"]).video_tag is None
    # And the decision follows it: Safari gets the hvc1 file as it is, the hev1 one remuxed.
    assert decide(_streams(sources["hvc1"]), direct_codecs=SAFARI).method is PlaybackMethod.DIRECT
    remux = decide(_streams(sources["hev1"]), direct_codecs=SAFARI)
    assert (remux.method, remux.variant) == (PlaybackMethod.REMUX, StreamVariant.HEVC)


def test_an_hev1_mp4_becomes_hvc1_fragments_that_tile_the_source(sources: dict[str, Path], tmp_path: Path) -> None:
    stream = _make_stream(sources["hev1"], tmp_path / "hevc")
    # Cut at keyframes when shown (an MP4's index has them when decoded: B-frames come first).
    assert len(stream.segments) == 3
    assert {s.start_s for s in stream.segments} <= set(stream.streams.keyframes_s)
    assert stream.streams.keyframes_s[0] == 0.0
    # The init: headers only, the video's sample entry hvc1 with its parameter sets (hvcC).
    assert split_init(stream.init) == (stream.init, b"")
    assert stream.init[4:8] == b"ftyp" and b"hvc1" in stream.init and b"hvcC" in stream.init
    assert b"hev1" not in stream.init
    assert all(fragment[4:8] == b"moof" for fragment in stream.fragments)

    played = _played(stream, tmp_path)
    assert all(p.video_tag == "hvc1" for p in played)
    # Every source frame is in exactly one fragment, at its own time on the shared clock.
    video_pts = [round(pts, 6) for p in played for pts, _dts, _d in p.video]
    assert sorted(video_pts) == _source_video_pts_s(sources["hev1"])
    assert len(set(video_pts)) == len(video_pts) == 7 * FPS
    # Each fragment shows its planned span: the playlist's durations are the fragments' own.
    for segment, packets in zip(stream.segments, played, strict=True):
        first = min(pts for pts, _d, _l in packets.video)
        end = max(pts + length for pts, _d, length in packets.video)
        assert first - OUTPUT_OFFSET_S == pytest.approx(segment.start_s, abs=1e-6)
        assert end - OUTPUT_OFFSET_S == pytest.approx(segment.end_s, abs=1e-6)
    assert sum(s.duration_s for s in stream.segments) == pytest.approx(stream.streams.duration_s, abs=1e-6)
    assert stream.streams.duration_s == pytest.approx(7.0, abs=1 / FPS)
    # The decoding clock runs on from one fragment to the next (tfdt), as a player appends them.
    for before, after in itertools.pairwise(played):
        _pts, last_dts, last_length = before.video[-1]
        assert after.video[0][1] == pytest.approx(last_dts + last_length, abs=1e-6)
    # The copied AAC audio covers the same span, within an AAC frame at either end.
    for packets in played:
        video_start = min(pts for pts, _d, _l in packets.video)
        video_end = max(pts + length for pts, _d, length in packets.video)
        assert abs(packets.audio[0][0] - video_start) <= 0.05
        assert abs(packets.audio[-1][0] + packets.audio[-1][2] - video_end) <= 0.05


def test_the_fragments_in_a_row_decode_every_frame(sources: dict[str, Path], tmp_path: Path) -> None:
    stream = _make_stream(sources["hev1"], tmp_path / "hevc", order=[2, 0, 1])
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(stream.init + b"".join(stream.fragments))
    with av.open(str(whole)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"
        times = [float(frame.time) for frame in container.decode(video=0) if frame.time is not None]
    assert len(times) == 7 * FPS
    assert times[0] == pytest.approx(OUTPUT_OFFSET_S)
    assert all(b - a == pytest.approx(1 / FPS, abs=1e-6) for a, b in itertools.pairwise(times))


def test_every_fragment_is_made_byte_for_byte_the_same(sources: dict[str, Path], tmp_path: Path) -> None:
    first = _make_stream(sources["hev1"], tmp_path / "first")
    again = _make_stream(sources["hev1"], tmp_path / "again", order=[1, 2, 0])
    assert first.init == again.init
    assert first.fragments == again.fragments


def test_a_fragment_with_other_headers_than_the_init_is_refused(sources: dict[str, Path], tmp_path: Path) -> None:
    streams = _streams(sources["hev1"])
    segment = plan_segments(streams.duration_s, SEGMENT_S, keyframes_s=streams.keyframes_s)[0]
    other_init = tmp_path / "init.mp4"
    make_init_segment(_spec(sources["hvc1"], None, True, other_init, None))  # another file's headers
    output = tmp_path / "0.m4s"
    with pytest.raises(MediaError, match="differ from the stream's init segment"):
        make_segment(_spec(sources["hev1"], segment, False, output, other_init))
    assert not output.exists()


def test_hevc_in_matroska_with_mp3_is_copied_and_its_audio_becomes_aac(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    stream = _make_stream(sources["mkv_mp3"], tmp_path / "hevc")
    assert len(stream.segments) == 2
    played = _played(stream, tmp_path)
    video_pts = sorted(round(pts, 6) for p in played for pts, _dts, _d in p.video)
    assert video_pts == _source_video_pts_s(sources["mkv_mp3"])
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(stream.init + b"".join(stream.fragments))
    with av.open(str(whole)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples / 48_000 == pytest.approx(stream.streams.duration_s, abs=0.05)
    # Each fragment's AAC starts where the one before ends, but for the encoder's priming (one AAC
    # frame, shown as the fragment's first packet starting 1024 samples early), as in MPEG-TS.
    for before, after in itertools.pairwise(played):
        gap_s = after.audio[0][0] - (before.audio[-1][0] + before.audio[-1][2])
        assert -1024 / 48_000 - 1e-6 <= gap_s <= 1e-6


def test_the_hevc_stream_refuses_other_video(sources: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="HEVC video only"):
        make_init_segment(_spec(sources["mkv_h264"], None, True, tmp_path / "init.mp4", None))
    with pytest.raises(MediaError, match="HEVC video only"):
        make_segment(_spec(sources["mkv_h264"], Segment(0, 0.0, 2.0), False, tmp_path / "0.m4s", None))
