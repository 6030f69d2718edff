"""Video.playback, Video.subtitles and the HLS/WebVTT routes on the real services with real media (issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import av
import httpx
import pytest

from gql_media.adapters.media.transcode import PyAvSegmentWorkers
from gql_media.core.segment_cache import TEMP_MARKER
from gql_media.settings import Settings
from tests.api.conftest import TOKEN, Api, open_api, serve
from tests.conftest import run_sync
from tests.playback_sources import SLOW, SOURCES, encode_source

QUERY = """{ videos { edges { node { id name status
  playback(directCodecs: []) { method url mimeType reason }
  subtitles { language label url } } } } }"""

SIDECAR = "1\n00:00:00,500 --> 00:00:02,000\nHello from the sidecar\n"


def _library(library: Path) -> None:
    for key in ("avi_mpeg4_mp3", "mkv_hevc", "mkv_h264", "webm_vp9", "audio_only"):
        encode_source(library, SOURCES[key])
    (library / "h264 clip.en.srt").write_text(SIDECAR, encoding="utf-8")
    (library / "notes.mp4").write_bytes(b"not a video at all\n" * 10)


async def _videos(api: Api, token: str | None = None) -> dict[str, Any]:
    data = await api.data(QUERY, token=token)
    return {edge["node"]["name"]: edge["node"] for edge in data["videos"]["edges"]}


def _segment_urls(playlist_url: str, text: str) -> list[str]:
    return [urljoin(playlist_url, line) for line in text.splitlines() if line and not line.startswith("#")]


def _decode(data: bytes, path: Path) -> int:
    path.write_bytes(data)
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_every_source_gets_its_method_and_plays(
    make_settings: Callable[..., Settings], library: Path, tmp_path: Path
) -> None:
    _library(library)
    async with open_api(make_settings(media_workers=1, transcode_workers=1), media=True) as api:
        videos = await _videos(api)
        # Sidecar subtitle files are never indexed as videos.
        assert sorted(videos) == [
            "h264 clip.mkv",
            "hevc clip.mkv",
            "notes.mp4",
            "old camera.avi",
            "song.mp4",
            "vp9 clip.webm",
        ]
        methods = {name: video["playback"]["method"] for name, video in videos.items()}
        assert methods == {
            "h264 clip.mkv": "REMUX",
            "hevc clip.mkv": "TRANSCODE",
            "notes.mp4": "UNPLAYABLE",
            "old camera.avi": "TRANSCODE",
            "song.mp4": "UNPLAYABLE",
            "vp9 clip.webm": "DIRECT",
        }
        webm = videos["vp9 clip.webm"]["playback"]
        assert webm["mimeType"] == "video/webm" and webm["url"].endswith(f"/media/{_row_id(videos['vp9 clip.webm'])}")
        assert webm["reason"] is None
        avi = videos["old camera.avi"]["playback"]
        assert avi["mimeType"] == "application/vnd.apple.mpegurl"
        assert avi["reason"] == "transcoding: the AVI container is not playable in browsers"
        assert videos["song.mp4"]["playback"]["url"] is None
        assert "no video stream" in videos["song.mp4"]["playback"]["reason"]

        for name in ("old camera.avi", "hevc clip.mkv", "h264 clip.mkv"):
            url = videos[name]["playback"]["url"]
            playlist = await api.client.get(url)
            assert playlist.status_code == 200, playlist.text
            assert playlist.headers["content-type"].startswith("application/vnd.apple.mpegurl")
            segments = _segment_urls(url, playlist.text)
            # A transcode starts with 1 s segments; a remux cuts at keyframes (one 5 s segment here).
            assert len(segments) == (1 if name == "h264 clip.mkv" else 3)
            frames = 0
            for segment_url in segments:
                segment = await api.client.get(segment_url)
                assert segment.status_code == 200, f"{name} {segment_url}: {segment.text}"
                assert segment.headers["content-type"] == "video/mp2t"
                frames += _decode(segment.content, tmp_path / "segment.ts")
            assert frames >= 120  # 5 s at 25 fps
            missing = await api.client.get(segments[0].replace("/0.ts", "/7.ts"))
            assert missing.status_code == 404

        # A DIRECT source asked for as HLS is refused with the reason.
        direct = await api.client.get(f"/playback/{_row_id(videos['vp9 clip.webm'])}/index.m3u8")
        assert direct.status_code == 409

        # A client that says it plays HEVC in Matroska gets the file as it is.
        hevc_id = videos["hevc clip.mkv"]["id"]
        query = 'query($id: ID!) { node(id: $id) { ... on Video { playback(directCodecs: ["hvc1", "matroska"]) {'
        body = await api.data(query + " method } } } }", {"id": hevc_id})
        assert body["node"]["playback"]["method"] == "DIRECT"


def _row_id(video: dict[str, Any]) -> int:
    import base64

    return int(base64.b64decode(video["id"]).decode().split(":")[1])


async def test_sidecar_and_embedded_subtitles_are_webvtt_and_follow_a_rename(
    make_settings: Callable[..., Settings], library: Path
) -> None:
    encode_source(library, SOURCES["mkv_h264"])
    (library / "h264 clip.en.srt").write_text(SIDECAR, encoding="utf-8")
    (library / "h264 clip.srt").write_text(SIDECAR, encoding="utf-8")
    async with open_api(make_settings(media_workers=1, transcode_workers=1), media=True) as api:
        video = (await _videos(api))["h264 clip.mkv"]
        tracks = [(t["language"], t["label"]) for t in video["subtitles"]]
        assert tracks == [("en", "en"), (None, "Subtitles"), ("fra", "Français")]
        sidecar = await api.client.get(video["subtitles"][0]["url"])
        assert sidecar.status_code == 200 and sidecar.headers["content-type"].startswith("text/vtt")
        assert sidecar.text == "WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.000\nHello from the sidecar\n"
        embedded = await api.client.get(video["subtitles"][2]["url"])
        assert embedded.status_code == 200
        assert "00:00:01.000 --> 00:00:02.500\nBonjour" in embedded.text
        unknown = await api.client.get(f"/subtitles/{_row_id(video)}/f%3A..%2Fsecret.srt")
        assert unknown.status_code == 404

        # The user renames the video and its subtitles together: same video, same tracks.
        for old, new in (("h264 clip.mkv", "Holiday.mkv"), ("h264 clip.en.srt", "Holiday.en.srt")):
            (library / old).rename(library / new)
        await run_sync(api.services)
        renamed = (await _videos(api))["Holiday.mkv"]
        assert renamed["id"] == video["id"]
        assert [(t["language"], t["label"]) for t in renamed["subtitles"]] == [("en", "en"), ("fra", "Français")]


async def test_signed_urls_cover_the_playlist_and_every_segment(
    make_settings: Callable[..., Settings], library: Path
) -> None:
    encode_source(library, SOURCES["avi_mpeg4_mp3"])
    (library / "old camera.srt").write_text(SIDECAR, encoding="utf-8")
    settings = make_settings(media_workers=1, transcode_workers=1, api_token=TOKEN)
    async with open_api(settings, media=True) as api:
        video = (await _videos(api, token=TOKEN))["old camera.avi"]
        url = video["playback"]["url"]
        assert {"exp", "sig"} <= set(parse_qs(urlsplit(url).query))
        unsigned = url.split("?")[0]
        assert (await api.client.get(unsigned)).status_code == 403
        playlist = await api.client.get(url)
        assert playlist.status_code == 200
        segments = _segment_urls(url, playlist.text)
        assert all({"exp", "sig"} <= set(parse_qs(urlsplit(s).query)) for s in segments)
        assert (await api.client.get(segments[0].split("?")[0])).status_code == 403
        # A segment's signature is its own: it opens no other segment.
        other = segments[0].replace("/0.ts?", "/1.ts?")
        assert (await api.client.get(other)).status_code == 403
        assert (await api.client.get(segments[0])).status_code == 200
        subtitle = video["subtitles"][0]["url"]
        assert (await api.client.get(subtitle)).status_code == 200
        assert (await api.client.get(subtitle.split("?")[0])).status_code == 403
        # The token itself opens them too.
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await api.client.get(unsigned, headers=bearer)).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_changed_source_drops_its_cache(make_settings: Callable[..., Settings], library: Path) -> None:
    source = encode_source(library, SOURCES["mkv_h264"])
    async with open_api(make_settings(media_workers=1, transcode_workers=1), media=True) as api:
        video = (await _videos(api))["h264 clip.mkv"]
        playlist_url = video["playback"]["url"]
        segment_url = _segment_urls(playlist_url, (await api.client.get(playlist_url)).text)[0]
        assert (await api.client.get(segment_url)).status_code == 200
        cached = api.settings.transcode_cache_dir / str(_row_id(video))
        assert any(cached.rglob("*.ts"))
        # A changed file under the same name (that streams too: H.264 with MP3 in Matroska, remuxed).
        replacement = encode_source(library / "other", replace(SOURCES["mkv_h264_mp3"], duration_s=3.0))
        source.write_bytes(replacement.read_bytes())
        replacement.unlink()
        await run_sync(api.services)
        for _ in range(100):
            if not cached.exists():
                break
            await asyncio.sleep(0.02)
        assert not cached.exists()
        # The old playlist's segments name the file as it was: refused, so that a player asks again
        # (and a browser's cache, which keeps segments, never mixes the two files).
        stale = await api.client.get(segment_url)
        assert stale.status_code == 409 and "changed" in stale.text
        fresh_url = _segment_urls(playlist_url, (await api.client.get(playlist_url)).text)[0]
        assert urlsplit(fresh_url).query != urlsplit(segment_url).query
        fresh = await api.client.get(fresh_url)
        assert fresh.status_code == 200
        assert _decode(fresh.content, library / "fresh.ts") > 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_busy_is_a_503_and_a_client_that_leaves_stops_its_segment(
    make_settings: Callable[..., Settings], library: Path
) -> None:
    encode_source(library, SLOW)
    encode_source(library, SOURCES["mkv_hevc"])
    settings = make_settings(
        media_workers=1,
        transcode_workers=1,
        transcode_wait_s=0.2,
        transcode_preset="veryslow",
        transcode_abandoned_grace_s=0.0,
    )
    async with open_api(settings, media=True) as api, serve(api.app) as ws_base:
        base = "http" + ws_base.removeprefix("ws")
        videos = await _videos(api)
        slow_id, other_id = _row_id(videos["slow.avi"]), _row_id(videos["hevc clip.mkv"])
        playback = api.services.playback
        assert playback is not None
        async with httpx.AsyncClient(base_url=base, timeout=60) as viewer:
            leaving = asyncio.create_task(viewer.get(f"/playback/{slow_id}/0.ts"))
            cache = settings.transcode_cache_dir
            await _until(lambda: any(TEMP_MARKER in p.name for p in cache.rglob("*")), "the only slot taken")
            async with httpx.AsyncClient(base_url=base, timeout=60) as other:
                busy = await other.get(f"/playback/{other_id}/0.ts")
            assert busy.status_code == 503
            assert int(busy.headers["retry-after"]) >= 1
            leaving.cancel()  # the viewer closes its connection
            with pytest.raises(asyncio.CancelledError):
                await leaving
        workers = playback.workers
        assert isinstance(workers, PyAvSegmentWorkers)
        await _until(lambda: workers.replaced_workers == 1, "the abandoned segment's worker stopped")
        await _until(lambda: not any(p.is_file() for p in cache.rglob("*")), "no partial file left")


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")
