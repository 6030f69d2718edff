"""The playback decision table of issue 14: one case per row (see gql_media/core/playback.py)."""

from __future__ import annotations

from dataclasses import replace

from gql_media.core.playback import (
    HLS_MIME_TYPE,
    Decision,
    PlaybackMethod,
    SourceStreams,
    StreamVariant,
    client_codec_names,
    client_hevc_tags,
    decide,
    hevc_copy_blocker,
)

MP4_H264 = SourceStreams(container="mp4", duration_s=10.0, video_codec="h264", audio_codec="aac", width=640, height=360)


def test_broken_file_is_unplayable_with_its_reason() -> None:
    decision = decide(None, broken_reason="not a video, or damaged/truncated")
    assert decision.method is PlaybackMethod.UNPLAYABLE
    assert decision.reason == "not a video, or damaged/truncated"
    assert decision.mime_type is None


def test_no_video_stream_is_unplayable() -> None:
    decision = decide(replace(MP4_H264, video_codec=None))
    assert decision.method is PlaybackMethod.UNPLAYABLE
    assert decision.reason == "the file has no video stream"


def test_mp4_h264_aac_is_direct() -> None:
    decision = decide(MP4_H264)
    assert (decision.method, decision.mime_type, decision.reason) == (PlaybackMethod.DIRECT, "video/mp4", None)


def test_mov_h264_mp3_is_direct() -> None:
    assert decide(replace(MP4_H264, container="mov", audio_codec="mp3")).method is PlaybackMethod.DIRECT


def test_rotated_phone_clip_in_mp4_is_direct() -> None:
    # Browsers honour an MP4's display matrix themselves.
    assert decide(replace(MP4_H264, rotation_deg=90)).method is PlaybackMethod.DIRECT


def test_webm_vp9_opus_is_direct() -> None:
    decision = decide(SourceStreams(container="webm", duration_s=5.0, video_codec="vp9", audio_codec="opus"))
    assert (decision.method, decision.mime_type) == (PlaybackMethod.DIRECT, "video/webm")


def test_client_codecs_make_hevc_in_mp4_direct() -> None:
    hevc = replace(MP4_H264, video_codec="hevc")
    assert decide(hevc).method is PlaybackMethod.TRANSCODE
    assert decide(hevc, direct_codecs=["hvc1.1.6.L93.B0"]).method is PlaybackMethod.DIRECT
    assert decide(hevc, direct_codecs=["hevc"]).method is PlaybackMethod.DIRECT


def test_h264_aac_in_mkv_is_remuxed() -> None:
    decision = decide(replace(MP4_H264, container="matroska"))
    assert (decision.method, decision.mime_type) == (PlaybackMethod.REMUX, HLS_MIME_TYPE)
    assert decision.reason is not None and "Matroska (MKV) container is not playable" in decision.reason
    assert "without re-encoding" in decision.reason


def test_h264_with_ac3_in_ts_is_remuxed_with_audio_converted() -> None:
    decision = decide(replace(MP4_H264, container="mpegts", audio_codec="ac3"))
    assert decision.method is PlaybackMethod.REMUX
    assert decision.reason is not None and "AC-3 (Dolby Digital) audio converted to AAC" in decision.reason


def test_mpeg4_avi_is_transcoded_with_a_user_reason() -> None:
    decision = decide(SourceStreams(container="avi", duration_s=4.0, video_codec="mpeg4", audio_codec="mp3"))
    assert (decision.method, decision.mime_type) == (PlaybackMethod.TRANSCODE, HLS_MIME_TYPE)
    assert decision.reason == "transcoding: the AVI container is not playable in browsers"


def test_hevc_mkv_is_transcoded() -> None:
    decision = decide(replace(MP4_H264, container="matroska", video_codec="hevc"))
    assert decision.method is PlaybackMethod.TRANSCODE
    assert decision.reason == "transcoding: the Matroska (MKV) container is not playable in browsers"
    in_mp4 = decide(replace(MP4_H264, video_codec="hevc"))
    assert in_mp4.reason == "transcoding: HEVC video is not playable in this browser"


def test_ten_bit_h264_is_transcoded_unless_the_client_plays_it() -> None:
    ten_bit = replace(MP4_H264, bit_depth=10)
    decision = decide(ten_bit)
    assert decision.method is PlaybackMethod.TRANSCODE
    assert decision.reason == "transcoding: 10-bit H.264 video is not playable in this browser"
    assert decide(ten_bit, direct_codecs=["avc1.6E0028"]).method is PlaybackMethod.DIRECT


def test_rotated_h264_outside_mp4_is_transcoded_not_remuxed() -> None:
    # MPEG-TS has no display matrix: a copy would show the phone clip sideways.
    assert decide(replace(MP4_H264, container="matroska", rotation_deg=90)).method is PlaybackMethod.TRANSCODE


def test_unplayable_audio_in_mp4_is_not_direct() -> None:
    decision = decide(replace(MP4_H264, audio_codec="ac3"))
    assert decision.method is PlaybackMethod.REMUX
    assert decision.reason is not None and decision.reason.startswith("AC-3 (Dolby Digital) audio is not playable")
    assert decide(replace(MP4_H264, audio_codec="ac3"), direct_codecs=["ac-3"]).method is PlaybackMethod.DIRECT


def test_transcode_turned_off_makes_it_unplayable() -> None:
    decision = decide(replace(MP4_H264, video_codec="hevc"), transcode_enabled=False)
    assert decision.method is PlaybackMethod.UNPLAYABLE
    assert decision.reason == "HEVC video is not playable in this browser, and transcoding is turned off on this server"
    # A remux is no transcode: it still plays.
    assert decide(replace(MP4_H264, container="avi"), transcode_enabled=False).method is PlaybackMethod.REMUX


def test_client_codec_names_accept_ours_ffmpegs_and_rfc6381() -> None:
    names = client_codec_names(["avc1.64001F", "mp4a.40.2", "H265", " vp09.00.10.08 ", "opus", "", "ec-3"])
    assert names == {"h264", "aac", "hevc", "vp9", "opus", "eac3"}


def test_a_container_the_client_lists_takes_the_default_codecs() -> None:
    mkv = replace(MP4_H264, container="matroska")
    assert decide(mkv, direct_codecs=["matroska"]) == Decision(PlaybackMethod.DIRECT, "video/x-matroska")
    assert (
        decide(replace(mkv, video_codec="hevc"), direct_codecs=["video/x-matroska"]).method is PlaybackMethod.TRANSCODE
    )
    assert decide(replace(mkv, video_codec="hevc"), direct_codecs=["mkv", "hev1"]).method is PlaybackMethod.DIRECT


# HEVC's sample entry in MP4: Safari plays hvc1 only, in MP4 and over HLS (then in fMP4 only).
MP4_HEV1 = replace(MP4_H264, video_codec="hevc", video_tag="hev1")
SAFARI = ["hvc1.1.6.L93.B0"]  # what the web UI sends where HEVC plays (frontend-example/src/playback.ts)


def test_hev1_in_mp4_is_remuxed_into_hevc_fmp4_for_a_client_that_plays_hvc1() -> None:
    decision = decide(MP4_HEV1, direct_codecs=SAFARI)
    assert (decision.method, decision.mime_type, decision.variant) == (
        PlaybackMethod.REMUX,
        HLS_MIME_TYPE,
        StreamVariant.HEVC,
    )
    assert decision.reason == (
        "HEVC video tagged hev1 is not playable in this browser;"
        " its streams are copied into HLS (fMP4, the video tagged hvc1) without re-encoding"
    )
    # A remux is no transcode: it plays with transcoding turned off too.
    assert decide(MP4_HEV1, direct_codecs=SAFARI, transcode_enabled=False).variant is StreamVariant.HEVC


def test_hvc1_in_mp4_stays_direct_and_hev1_is_direct_where_the_client_plays_it() -> None:
    assert decide(replace(MP4_HEV1, video_tag="hvc1"), direct_codecs=SAFARI).method is PlaybackMethod.DIRECT
    assert decide(MP4_HEV1, direct_codecs=["hev1.1.6.L93.B0"]).method is PlaybackMethod.DIRECT
    # Our names and FFmpeg's say "HEVC" without a tag: they play both.
    assert decide(MP4_HEV1, direct_codecs=["hevc"]).method is PlaybackMethod.DIRECT
    assert decide(MP4_HEV1, direct_codecs=["H265"]).method is PlaybackMethod.DIRECT


def test_hev1_for_a_client_without_hevc_is_transcoded_into_mpegts() -> None:
    decision = decide(MP4_HEV1, direct_codecs=[])
    assert (decision.method, decision.variant) == (PlaybackMethod.TRANSCODE, StreamVariant.MPEGTS)
    assert decision.reason == "transcoding: HEVC video is not playable in this browser"


def test_hevc_outside_mp4_is_copied_into_fmp4_for_a_client_that_plays_hvc1() -> None:
    mkv = replace(MP4_HEV1, container="matroska", video_tag=None, audio_codec="ac3")
    decision = decide(mkv, direct_codecs=SAFARI)
    assert (decision.method, decision.variant) == (PlaybackMethod.REMUX, StreamVariant.HEVC)
    assert decision.reason is not None and decision.reason.endswith("the AC-3 (Dolby Digital) audio converted to AAC")
    # Rotated, a copy would show it sideways: transcoded (upright) into MPEG-TS.
    rotated = decide(replace(mkv, rotation_deg=90), direct_codecs=SAFARI)
    assert (rotated.method, rotated.variant) == (PlaybackMethod.TRANSCODE, StreamVariant.MPEGTS)


def test_h264_remux_stays_mpegts() -> None:
    assert decide(replace(MP4_H264, container="matroska"), direct_codecs=SAFARI).variant is StreamVariant.MPEGTS


def test_client_hevc_tags_tell_hvc1_from_hev1() -> None:
    assert client_hevc_tags(["hvc1.1.6.L93.B0", "mp4a.40.2"]) == {"hvc1"}
    assert client_hevc_tags([" HEV1.2.4.L120.B0 ", "hev1"]) == {"hev1"}
    assert client_hevc_tags(["h265"]) == {"hvc1", "hev1"}
    assert client_hevc_tags(["hvc1x", "avc1.64001F", ""]) == set()
    assert client_hevc_tags(None) == set()


def test_the_hevc_stream_copies_unrotated_hevc_only() -> None:
    assert hevc_copy_blocker(MP4_HEV1) is None
    assert hevc_copy_blocker(MP4_H264) == "H.264 video is not HEVC"
    assert hevc_copy_blocker(replace(MP4_HEV1, rotation_deg=270)) == "the HEVC video is shown rotated"
