"""Sidecar subtitles by stem, and SubRip/ASS/cues to WebVTT."""

from __future__ import annotations

from gql_media.core.subtitles import (
    Cue,
    SubtitleTrack,
    ass_text,
    cues_to_vtt,
    decode_subtitle_bytes,
    sidecar_subtitles,
    srt_to_vtt,
)


def test_sidecars_are_found_by_the_videos_stem() -> None:
    names = ["movie.mkv", "movie.srt", "movie.en.srt", "movie.pt-BR.forced.vtt", "movie2.srt", "other.srt", "movie.txt"]
    assert sidecar_subtitles("movie.mkv", names) == [
        SubtitleTrack(key="f:movie.en.srt", language="en", label="en"),
        SubtitleTrack(key="f:movie.pt-BR.forced.vtt", language="pt-BR", label="pt-BR forced"),
        SubtitleTrack(key="f:movie.srt", language=None, label="Subtitles"),
    ]


def test_srt_becomes_webvtt() -> None:
    srt = "\ufeff1\r\n00:00:01,000 --> 00:00:02,5\r\nHello\r\n\r\n2\r\n00:00:03,250 --> 00:00:04,000\r\nWorld\r\n"
    assert srt_to_vtt(srt) == (
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nHello\n\n2\n00:00:03.250 --> 00:00:04.000\nWorld\n"
    )
    assert srt_to_vtt("WEBVTT\n\n00:01.000 --> 00:02.000\nx") == "WEBVTT\n\n00:01.000 --> 00:02.000\nx\n"


def test_subtitle_bytes_in_old_code_pages_still_decode() -> None:
    assert decode_subtitle_bytes("caf\u00e9".encode("cp1252")) == "caf\u00e9"
    assert decode_subtitle_bytes("\ufeffcaf\u00e9".encode()) == "caf\u00e9"
    assert decode_subtitle_bytes("caf\u00e9".encode("utf-16")) == "caf\u00e9"


def test_ass_events_lose_their_styling() -> None:
    assert ass_text("0,0,Default,,0,0,0,,{\\i1}Hello{\\i0}\\Nthere") == "Hello\nthere"
    assert ass_text("Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,Hi, you") == "Hi, you"


def test_cues_become_ordered_webvtt() -> None:
    vtt = cues_to_vtt([Cue(3723.5, 3725.0, "second"), Cue(1.0, 2.0, "first\n\n"), Cue(5.0, 6.0, "  ")])
    assert vtt == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfirst\n\n01:02:03.500 --> 01:02:05.000\nsecond\n\n"
