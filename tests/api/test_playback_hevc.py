"""HEVC for Safari over the real services and routes: an hev1 MP4 is remuxed into fMP4 tagged hvc1.

Safari plays HEVC in MP4 only as ``hvc1``, and over HLS only from fMP4 (``EXT-X-MAP`` + ``.m4s``).
A client saying it plays ``hvc1`` (the web UI sends ``hvc1.1.6.L93.B0`` where the browser plays
HEVC) gets an ``hvc1`` file as it is, and an ``hev1`` one (FFmpeg's default tag) as the HEVC
stream: playlist, init segment and fragments, read back here with PyAV. Chromium cannot stand in
for Safari, so this read-back is the proof.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import av
import pytest

from gql_media.settings import Settings
from tests.api.conftest import TOKEN, Api, open_api
from tests.playback_sources import SOURCES, encode_source

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

QUERY = """query($codecs: [String!]) { videos { edges { node { name
  playback(directCodecs: $codecs) { method url mimeType reason } } } } }"""
SAFARI = ["hvc1.1.6.L93.B0"]
FPS = 25


def _library(library: Path) -> dict[str, Path]:
    return {
        # 9 s, a keyframe a second at least: 4 s segments cut at keyframes, at least two.
        "hev1": encode_source(library, replace(SOURCES["mp4_hevc_hev1"], duration_s=9.0)),
        "hvc1": encode_source(library, SOURCES["mp4_hevc_hvc1"]),
        "avi": encode_source(library, SOURCES["avi_mpeg4_mp3"]),
    }


async def _playback(api: Api, codecs: list[str], token: str | None = None) -> dict[str, dict[str, Any]]:
    data = await api.data(QUERY, {"codecs": codecs}, token=token)
    return {edge["node"]["name"]: edge["node"]["playback"] for edge in data["videos"]["edges"]}


def _row_id(url: str) -> int:
    return int(urlsplit(url).path.split("/")[2])


def _media_lines(playlist_url: str, text: str) -> tuple[str, list[str], list[float]]:
    """The init segment's URL, the segment URLs and their durations."""
    lines = text.splitlines()
    (map_line,) = [line for line in lines if line.startswith("#EXT-X-MAP:")]
    init = urljoin(playlist_url, map_line.removeprefix('#EXT-X-MAP:URI="').removesuffix('"'))
    segments = [urljoin(playlist_url, line) for line in lines if line and not line.startswith("#")]
    durations = [float(line.removeprefix("#EXTINF:").rstrip(",")) for line in lines if line.startswith("#EXTINF:")]
    return init, segments, durations


def _source_video_pts_s(source: Path) -> list[float]:
    with av.open(str(source)) as container:
        return sorted(float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None)


async def test_safari_gets_hvc1_as_it_is_and_hev1_as_fmp4_hls(
    make_settings: Callable[..., Settings], library: Path, tmp_path: Path
) -> None:
    files = _library(library)
    async with open_api(make_settings(media_workers=1, transcode_workers=1), media=True) as api:
        safari = await _playback(api, SAFARI)
        assert safari["hevc hvc1.mp4"]["method"] == "DIRECT"
        hev1 = safari["hevc hev1.mp4"]
        assert (hev1["method"], hev1["mimeType"]) == ("REMUX", "application/vnd.apple.mpegurl")
        assert hev1["reason"].startswith("HEVC video tagged hev1 is not playable in this browser;")
        url = hev1["url"]
        video_id = _row_id(url)
        assert urlsplit(url).path == f"/playback/{video_id}/hevc/index.m3u8"
        # A browser without HEVC still gets the MPEG-TS transcode; one that plays hev1, the file.
        plain = await _playback(api, [])
        assert plain["hevc hev1.mp4"]["method"] == "TRANSCODE"
        assert urlsplit(plain["hevc hev1.mp4"]["url"]).path == f"/playback/{video_id}/index.m3u8"
        assert (await _playback(api, ["hev1.1.6.L93.B0"]))["hevc hev1.mp4"]["method"] == "DIRECT"

        response = await api.client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert "#EXT-X-VERSION:7" in response.text.splitlines()
        init_url, segment_urls, durations = _media_lines(url, response.text)
        assert urlsplit(init_url).path == f"/playback/{video_id}/hevc/init.mp4"
        assert len(segment_urls) >= 2
        assert [urlsplit(u).path for u in segment_urls] == [
            f"/playback/{video_id}/hevc/{i}.m4s" for i in range(len(segment_urls))
        ]

        init = await api.client.get(init_url)
        assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"
        fragments = []
        for segment_url in segment_urls:
            segment = await api.client.get(segment_url)
            assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp4"
            assert segment.content[4:8] == b"moof"
            fragments.append(segment.content)

        # Read back as a player does: the init, then each fragment.
        pts_s: list[float] = []
        dts_ends: list[tuple[float, float]] = []
        for index, (fragment, duration_s) in enumerate(zip(fragments, durations, strict=True)):
            played = tmp_path / f"played-{index}.mp4"
            played.write_bytes(init.content + fragment)
            with av.open(str(played)) as container:
                video = container.streams.video[0]
                assert (video.codec_context.name, video.codec_context.codec_tag) == ("hevc", "hvc1")
                assert container.streams.audio[0].codec_context.name == "aac"
                packets = [p for p in container.demux(video) if p.pts is not None]
            times = [float(p.pts * p.time_base) for p in packets]
            shown_s = max(float((p.pts + p.duration) * p.time_base) for p in packets) - min(times)
            assert shown_s == pytest.approx(duration_s, abs=1e-3)  # the playlist says what it holds
            pts_s += times
            first, last = packets[0], packets[-1]
            dts_ends.append((float(first.dts * first.time_base), float((last.dts + last.duration) * last.time_base)))
        # Continuous: every source frame once, the decoding clock running on across fragments.
        source_pts = _source_video_pts_s(files["hev1"])
        assert len(pts_s) == len(set(pts_s)) == len(source_pts) == 9 * FPS
        offset = min(pts_s) - source_pts[0]
        assert sorted(round(t - offset, 6) for t in pts_s) == [round(t, 6) for t in source_pts]
        for (_start, end), (following, _end) in itertools.pairwise(dts_ends):
            assert following == pytest.approx(end, abs=1e-6)
        assert sum(durations) == pytest.approx(9.0, abs=1 / FPS)

        # The same bytes on every request (from the cache), and Range requests of them.
        again = await api.client.get(segment_urls[1])
        assert hashlib.sha256(again.content).digest() == hashlib.sha256(fragments[1]).digest()
        assert again.headers["etag"] == (await api.client.get(segment_urls[1])).headers["etag"]
        ranged = await api.client.get(segment_urls[1], headers={"Range": "bytes=100-1099"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes 100-1099/{len(fragments[1])}"
        assert ranged.content == fragments[1][100:1100]
        init_range = await api.client.get(init_url, headers={"Range": "bytes=0-7"})
        assert init_range.status_code == 206 and init_range.content == init.content[:8]

        # No HEVC stream for a video that is no HEVC; no such segment past the end.
        avi_id = _row_id(plain["old camera.avi"]["url"])
        refused = await api.client.get(f"/playback/{avi_id}/hevc/index.m3u8")
        assert refused.status_code == 409 and "not HEVC" in refused.text
        assert (await api.client.get(f"/playback/{avi_id}/hevc/init.mp4")).status_code == 409
        past_end = f"/playback/{video_id}/hevc/{len(segment_urls)}.m4s"
        assert (await api.client.get(past_end)).status_code == 404


async def test_signed_urls_cover_the_init_and_every_fragment(
    make_settings: Callable[..., Settings], library: Path
) -> None:
    encode_source(library, SOURCES["mp4_hevc_hev1"])
    settings = make_settings(media_workers=1, transcode_workers=1, api_token=TOKEN)
    async with open_api(settings, media=True) as api:
        url = (await _playback(api, SAFARI, token=TOKEN))["hevc hev1.mp4"]["url"]
        assert {"exp", "sig"} <= set(parse_qs(urlsplit(url).query))
        assert (await api.client.get(url.split("?")[0])).status_code == 403
        playlist = await api.client.get(url)
        assert playlist.status_code == 200
        init_url, segment_urls, _durations = _media_lines(url, playlist.text)
        for signed in (init_url, *segment_urls):
            assert {"exp", "sig"} <= set(parse_qs(urlsplit(signed).query))
            assert (await api.client.get(signed.split("?")[0])).status_code == 403
            assert (await api.client.get(signed)).status_code == 200
        # A signature opens its own file only: the init's opens no fragment.
        borrowed = init_url.replace("/init.mp4?", "/0.m4s?")
        assert (await api.client.get(borrowed)).status_code == 403
