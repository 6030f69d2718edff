"""HLS segments made by the worker functions, read back with PyAV (issue 14).

Every kind of source the issue names is encoded here, cut into a playlist's segments one by
one (each made alone, as the server makes them on demand), and each segment is decoded alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest

from gql_media.adapters.media.playback_probe import make_subtitle_vtt, probe_streams
from gql_media.adapters.media.segments import OUTPUT_OFFSET_S, make_segment
from gql_media.core.playback import PlaybackMethod, SegmentSpec, SourceStreams, SubtitleStream, decide
from gql_media.core.ports import MediaError
from gql_media.core.vod_plan import plan_segments
from tests.playback_sources import SOURCES, encode_source, truncate_half

SEGMENT_S = 2.0


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("playback-sources")
    made = {key: encode_source(folder, spec) for key, spec in SOURCES.items()}
    made["avi_truncated"] = truncate_half(made["avi_mpeg4_mp3"], "cut short.avi")
    made["mkv_truncated"] = truncate_half(made["mkv_hevc"], "cut short.mkv")
    return made


@dataclass
class Decoded:
    video_times: list[float]
    frame_s: float
    audio_start_s: float | None
    audio_end_s: float | None
    width: int
    height: int

    @property
    def video_end_s(self) -> float:
        return self.video_times[-1] + self.frame_s


def _decode_alone(path: Path) -> Decoded:
    """Decode one segment on its own: every frame of every stream."""
    with av.open(str(path)) as container:
        assert container.format.name == "mpegts"
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate
        times = []
        width = height = 0
        for frame in container.decode(video):
            assert frame.time is not None
            times.append(float(frame.time))
            width, height = frame.width, frame.height
    audio_start = audio_end = None
    with av.open(str(path)) as container:
        if container.streams.audio:
            for frame in container.decode(container.streams.audio[0]):
                assert frame.time is not None
                if audio_start is None:
                    audio_start = float(frame.time)
                audio_end = float(frame.time) + frame.samples / frame.sample_rate
    assert times, f"{path.name} holds no decodable video frame"
    return Decoded(times, float(1 / rate) if rate else 0.04, audio_start, audio_end, width, height)


def _video_dts_s(path: Path) -> tuple[float, float]:
    with av.open(str(path)) as container:
        times = [float(p.dts * p.time_base) for p in container.demux(video=0) if p.dts is not None]
    return times[0], times[-1]


def _make_all(
    source: Path, method: str, folder: Path, order: list[int] | None = None
) -> tuple[SourceStreams, list[Decoded]]:
    info = probe_streams(str(source))
    streams = SourceStreams(**{**info, "subtitles": tuple(SubtitleStream(**s) for s in info["subtitles"])})
    keyframes_s = streams.keyframes_s if method == "REMUX" else ()
    segments = plan_segments(streams.duration_s, SEGMENT_S, keyframes_s=keyframes_s)
    folder.mkdir()
    for index in order or range(len(segments)):
        segment = segments[index]
        spec = SegmentSpec(
            path=str(source),
            method=PlaybackMethod(method),
            start_s=segment.start_s,
            end_s=None if index == len(segments) - 1 else segment.end_s,
            output_path=str(folder / f"{index}.ts"),
            rotation_deg=streams.rotation_deg,
        )
        make_segment(spec)
    return streams, [_decode_alone(folder / f"{i}.ts") for i in range(len(segments))]


def _transcode(source: Path, start_s: float, end_s: float, output: Path) -> SegmentSpec:
    return SegmentSpec(
        path=str(source), method=PlaybackMethod.TRANSCODE, start_s=start_s, end_s=end_s, output_path=str(output)
    )


def _check_timeline(streams: SourceStreams, decoded: list[Decoded]) -> None:
    # The durations add up to the source's within 0.5 s.
    total_s = sum(d.video_end_s - d.video_times[0] for d in decoded)
    assert abs(total_s - streams.duration_s) <= 0.5, (total_s, streams.duration_s)
    # Timestamps are continuous: each segment starts one frame after the previous one ended.
    for before, after in itertools.pairwise(decoded):
        gap_s = after.video_times[0] - before.video_times[-1]
        assert 0 < gap_s <= 1.5 * before.frame_s, (before.video_times[-1], after.video_times[0])
    # On the shared output clock, segment i starts where the plan puts it.
    assert decoded[0].video_times[0] == pytest.approx(OUTPUT_OFFSET_S, abs=0.1)
    # Audio and video stay within 100 ms, at both ends of every segment.
    for segment in decoded:
        if segment.audio_start_s is None or segment.audio_end_s is None:
            continue
        assert abs(segment.audio_start_s - segment.video_times[0]) <= 0.1
        assert abs(segment.audio_end_s - segment.video_end_s) <= 0.1


@pytest.mark.parametrize(
    "key",
    ["avi_mpeg4_mp3", "mkv_hevc", "ts_mpeg2", "mp4_h264_10bit", "mkv_odd_size", "mkv_rotated"],
)
def test_transcoded_segments_decode_alone_and_line_up(sources: dict[str, Path], tmp_path: Path, key: str) -> None:
    streams, decoded = _make_all(sources[key], "TRANSCODE", tmp_path / "hls")
    assert decide(streams).method is PlaybackMethod.TRANSCODE
    assert len(decoded) == 2
    _check_timeline(streams, decoded)
    # Decoding timestamps run on across segments too (a player appends them one after another).
    dts_ranges = [_video_dts_s(tmp_path / "hls" / f"{i}.ts") for i in range(len(decoded))]
    for (_first, last), (following, _end) in itertools.pairwise(dts_ranges):
        assert following > last


def test_remuxed_segments_copy_h264_and_line_up(sources: dict[str, Path], tmp_path: Path) -> None:
    streams, decoded = _make_all(sources["mkv_h264"], "REMUX", tmp_path / "hls")
    assert decide(streams).method is PlaybackMethod.REMUX
    _check_timeline(streams, decoded)
    # The plan cut at the index's keyframes (one a second): segments start exactly where it says.
    assert streams.keyframes_s == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert [d.video_times[0] - OUTPUT_OFFSET_S for d in decoded] == pytest.approx([0.0, 2.0])
    with av.open(str(tmp_path / "hls" / "0.ts")) as segment:
        assert segment.streams.video[0].codec_context.name == "h264"
        assert segment.streams.audio[0].codec_context.name == "aac"


def test_remuxed_h264_with_mp3_gets_aac_in_every_segment(sources: dict[str, Path], tmp_path: Path) -> None:
    # The AAC encoder's stream is added before the first packet writes the headers: added after
    # them, the MPEG-TS muxer killed the worker (SIGFPE) on every segment but the first.
    streams, decoded = _make_all(sources["mkv_h264_mp3"], "REMUX", tmp_path / "hls", order=[1, 0])
    assert decide(streams).method is PlaybackMethod.REMUX
    _check_timeline(streams, decoded)
    for index in range(len(decoded)):
        with av.open(str(tmp_path / "hls" / f"{index}.ts")) as segment:
            assert segment.streams.audio[0].codec_context.name == "aac"


def test_a_segment_far_ahead_is_made_without_the_ones_before(sources: dict[str, Path], tmp_path: Path) -> None:
    streams, decoded = _make_all(sources["mkv_hevc"], "TRANSCODE", tmp_path / "hls", order=[1, 0])
    _check_timeline(streams, decoded)


def test_odd_sizes_become_even_and_rotation_is_applied(sources: dict[str, Path], tmp_path: Path) -> None:
    _streams, odd = _make_all(sources["mkv_odd_size"], "TRANSCODE", tmp_path / "odd")
    assert (odd[0].width, odd[0].height) == (320, 240)
    streams, rotated = _make_all(sources["mkv_rotated"], "TRANSCODE", tmp_path / "rotated")
    assert streams.rotation_deg == 90
    assert (rotated[0].width, rotated[0].height) == (64, 96)


def test_sources_above_the_max_height_are_scaled_down(sources: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "small.ts"
    make_segment(replace(_transcode(sources["mkv_odd_size"], 0.0, 2.0, output), max_height_px=120, preset="ultrafast"))
    decoded = _decode_alone(output)
    assert (decoded.width, decoded.height) == (160, 120)


def test_a_truncated_file_plays_what_is_there(sources: dict[str, Path], tmp_path: Path) -> None:
    source = sources["avi_truncated"]
    output = tmp_path / "0.ts"
    make_segment(_transcode(source, 0.0, 2.0, output))
    assert len(_decode_alone(output).video_times) >= 40
    with pytest.raises(MediaError, match="no video frame"):
        make_segment(_transcode(source, 30.0, 32.0, tmp_path / "15.ts"))


def test_a_truncated_mkv_streams_as_far_as_its_data_goes(sources: dict[str, Path], tmp_path: Path) -> None:
    # Its header still says 5 s; the playlist must end where the data does, every segment made.
    streams, decoded = _make_all(sources["mkv_truncated"], "TRANSCODE", tmp_path / "hls")
    assert 2.0 < streams.duration_s < 3.0
    assert decoded[-1].video_end_s - OUTPUT_OFFSET_S == pytest.approx(streams.duration_s, abs=0.1)


def test_playback_probe_sees_what_the_decision_needs(sources: dict[str, Path]) -> None:
    assert probe_streams(str(sources["mp4_h264_10bit"]))["bit_depth"] == 10
    assert probe_streams(str(sources["mp4_rotated"]))["rotation_deg"] == 90
    assert probe_streams(str(sources["audio_only"]))["video_codec"] is None
    subtitles = probe_streams(str(sources["mkv_h264"]))["subtitles"]
    assert [(s["language"], s["title"]) for s in subtitles] == [("fra", "Français")]
    with pytest.raises(MediaError, match="file not found"):
        probe_streams(str(sources["mkv_h264"].with_name("gone.mkv")))


def test_embedded_text_subtitles_become_webvtt(sources: dict[str, Path], tmp_path: Path) -> None:
    index = probe_streams(str(sources["mkv_h264"]))["subtitles"][0]["index"]
    output = tmp_path / "fra.vtt"
    assert make_subtitle_vtt(str(sources["mkv_h264"]), index, str(output)) == 2
    assert output.read_text(encoding="utf-8") == (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nBonjour\n\n00:00:03.000 --> 00:00:04.000\nAu revoir\n\n"
    )
