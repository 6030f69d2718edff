"""HLS downloads through the API: every layout merged and indexed alone, or its state and reason shown."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gql_media.settings import Settings
from tests import hls_layouts
from tests.adapters.test_hls_layouts import EXPECTED, MERGED
from tests.api.conftest import open_api

QUERY = """{
  hlsDownloads { path state reason segmentsPresent segmentsExpected playlist outputPath }
  videos(first: 100) { edges { node { path status durationSeconds width height error } } }
}"""


def _refused_and_waiting(downloads: Path) -> None:
    gone_key = hls_layouts.aes128(downloads / "aes-missing-key", key_uri="https://keys.example.com/k/gone.key")
    (gone_key / "gone.key").unlink()
    hls_layouts.sample_aes(downloads / "sample-aes")
    waiting = hls_layouts.cdn_names(downloads / "still-downloading")
    (waiting / "index2.ts").unlink()


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every layout once (encoding them is the slow part); each test copies them into its library."""
    downloads = tmp_path_factory.mktemp("layouts") / "Downloads"
    for name, make in MERGED.items():
        make(downloads / name)
    _refused_and_waiting(downloads)
    return downloads


async def test_every_layout_is_merged_or_explained(
    make_settings: Callable[..., Settings], library: Path, layouts: Path
) -> None:
    shutil.copytree(layouts, library / "Downloads")
    async with open_api(make_settings(media_workers=1), media=True) as api:
        data = await api.data(QUERY)
    downloads = {Path(d["path"]).name: d for d in data["hlsDownloads"]}
    videos = {v["node"]["path"]: v["node"] for v in data["videos"]["edges"]}

    # Merged layouts: one video each, named after the download folder, with the right duration and size.
    for name in MERGED:
        status = downloads[name]
        assert status["state"] == "MERGED", status
        assert status["outputPath"] == str(library / "Downloads" / f"{name}.mp4")
        assert status["segmentsPresent"] == status["segmentsExpected"] > 0
        video = videos[f"Downloads/{name}.mp4"]
        duration_s, width, height, _audio = EXPECTED[name]
        assert video["status"] == "READY", video
        assert video["durationSeconds"] == pytest.approx(duration_s, abs=0.5)
        assert (video["width"], video["height"]) == (width, height)
    # No stray entry: no segment, init.mp4 or variant file is a video of its own.
    assert sorted(videos) == sorted(f"Downloads/{name}.mp4" for name in MERGED)

    # Refused and unfinished downloads: their state, reason and counts.
    missing_key = downloads["aes-missing-key"]
    assert missing_key["state"] == "FAILED"
    assert "key gone.key is missing" in missing_key["reason"]
    assert "SAMPLE-AES" in downloads["sample-aes"]["reason"]
    assert downloads["sample-aes"]["state"] == "FAILED"
    waiting = downloads["still-downloading"]
    assert waiting["state"] == "WAITING"
    assert waiting["reason"] == "1 of 3 segments are missing: index2.ts"
    assert (waiting["segmentsPresent"], waiting["segmentsExpected"]) == (2, 3)
    assert waiting["playlist"] == "index.m3u8"
    assert len(downloads) == len(MERGED) + 3


async def test_a_waiting_download_is_merged_once_complete_and_the_state_follows(
    make_settings: Callable[..., Settings], library: Path, layouts: Path
) -> None:
    folder = library / "Downloads" / "still-downloading"
    shutil.copytree(layouts / "still-downloading", folder)
    async with open_api(make_settings(media_workers=1, hls_auto_merge=False), media=True) as api:
        first = await api.data("{ hlsDownloads { state reason } }")
        assert first["hlsDownloads"] == [{"state": "WAITING", "reason": "1 of 3 segments are missing: index2.ts"}]
        # The last segment arrives; a merge asked for (the UI's Merge button) merges it.
        shutil.copy(layouts / "cdn-names" / "index2.ts", folder / "index2.ts")
        merged = await api.data(
            "mutation($p: String!) { mergeHls(path: $p) { ok outputPath error } }", {"p": str(folder)}
        )
        assert merged["mergeHls"]["ok"], merged
        after = await api.data("{ hlsDownloads(state: MERGED) { path outputPath segmentsPresent } }")
        assert after["hlsDownloads"] == [
            {"path": str(folder), "outputPath": str(folder.parent / "still-downloading.mp4"), "segmentsPresent": 3}
        ]
        assert (await api.data("{ hlsDownloads(state: WAITING) { path } }"))["hlsDownloads"] == []


async def test_a_complete_download_is_ready_when_merging_is_manual(
    make_settings: Callable[..., Settings], library: Path, layouts: Path
) -> None:
    shutil.copytree(layouts / "fmp4", library / "Downloads" / "fmp4")
    async with open_api(make_settings(media_workers=1, hls_auto_merge=False), media=True) as api:
        data = await api.data(
            "{ hlsDownloads { state reason segmentsPresent segmentsExpected } videos { edges { node { path } } } }"
        )
    assert data["hlsDownloads"] == [{"state": "READY", "reason": None, "segmentsPresent": 3, "segmentsExpected": 3}]
    assert data["videos"]["edges"] == []  # init.mp4 is no video of its own
