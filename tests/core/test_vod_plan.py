"""The HLS VOD plan: segment boundaries from the duration alone, and the playlist text."""

from __future__ import annotations

import pytest

from gql_media.core.vod_plan import plan_segments, render_playlist, segment_at


def test_segments_tile_the_duration_without_gap_or_overlap() -> None:
    segments = plan_segments(20.0, target_s=6.0)
    assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 6.0), (6.0, 12.0), (12.0, 18.0), (18.0, 20.0)]
    assert sum(s.duration_s for s in segments) == pytest.approx(20.0)


def test_a_short_tail_joins_the_segment_before() -> None:
    assert [s.end_s for s in plan_segments(12.5, target_s=6.0)] == [6.0, 12.5]
    assert [s.end_s for s in plan_segments(14.0, target_s=6.0)] == [6.0, 12.0, 14.0]


def test_a_short_source_is_one_segment() -> None:
    assert [(s.start_s, s.end_s) for s in plan_segments(2.0)] == [(0.0, 2.0)]


def test_segment_far_ahead_is_computed_without_the_ones_between() -> None:
    segments = plan_segments(600.0, target_s=6.0)
    middle = segment_at(segments, 50)
    assert (middle.start_s, middle.end_s) == (300.0, 306.0)
    with pytest.raises(IndexError):
        segment_at(segments, 100)


@pytest.mark.parametrize("duration_s", [0.0, -1.0, float("nan"), float("inf")])
def test_no_duration_is_refused(duration_s: float) -> None:
    with pytest.raises(ValueError, match="no known duration"):
        plan_segments(duration_s)


def test_playlist_is_complete_vod_with_every_segment_url() -> None:
    text = render_playlist(plan_segments(13.0, 6.0), lambda i: f"seg/{i}.ts?sig=x")
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:7",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXTINF:6.000,",
        "seg/0.ts?sig=x",
        "#EXTINF:7.000,",
        "seg/1.ts?sig=x",
        "#EXT-X-ENDLIST",
    ]


def test_an_fmp4_playlist_names_its_init_segment_first() -> None:
    text = render_playlist(plan_segments(13.0, 6.0), lambda i: f"{i}.m4s?sig={i}", "init.mp4?sig=i")
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:7",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="init.mp4?sig=i"',
        "#EXTINF:6.000,",
        "0.m4s?sig=0",
        "#EXTINF:7.000,",
        "1.m4s?sig=1",
        "#EXT-X-ENDLIST",
    ]


def test_a_copy_cuts_at_the_keyframes_of_the_index() -> None:
    keyframes = [0.0, 2.0, 4.0, 10.0, 12.5, 19.0, 20.0]
    segments = plan_segments(21.0, target_s=6.0, keyframes_s=keyframes)
    assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 10.0), (10.0, 19.0), (19.0, 21.0)]
    # Keyframes every 10 s: 10 s segments, never an empty one.
    assert [s.end_s for s in plan_segments(30.0, 6.0, keyframes_s=[0.0, 10.0, 20.0])] == [10.0, 20.0, 30.0]


def test_a_transcode_starts_with_short_segments() -> None:
    segments = plan_segments(13.0, target_s=4.0, start_segments_s=(1.0, 1.0, 2.0))
    assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 13.0)]
    assert [s.end_s for s in plan_segments(1.5, 4.0, start_segments_s=(1.0,))] == [1.5]
