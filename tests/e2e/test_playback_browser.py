"""Playback in Chromium against a real server: an AVI, an H.264 MKV and an HEVC MKV play through HLS and seek.

Runs tests/e2e/playback.spec.mjs (node's test runner + playwright-core driving Debian's chromium).
Skips outside CI when node or chromium is missing, like tests/e2e/test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, require_node_and_chromium, run_spec, serve
from tests.playback_sources import SOURCES, encode_source

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "playback.spec.mjs"
SIDECAR = "1\n00:00:05,000 --> 00:00:10,000\nHello from the middle\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    require_node_and_chromium()
    library = tmp_path / "library"
    # 14 s each: 4 s segments, so the middle is in a segment after the first.
    encode_source(library, replace(SOURCES["avi_mpeg4_mp3"], width_px=160, height_px=120, duration_s=14.0))
    encode_source(library, replace(SOURCES["mkv_hevc"], width_px=160, height_px=120, duration_s=14.0))
    # H.264 in Matroska: remuxed, its stream copied into MPEG-TS segments.
    encode_source(library, replace(SOURCES["mkv_h264"], width_px=160, height_px=120, duration_s=14.0))
    (library / "hevc clip.en.srt").write_text(SIDECAR, encoding="utf-8")
    (library / "notes.mp4").write_bytes(b"not a video\n" * 10)
    with serve(library, tmp_path, "e2e-playback-server.log") as base:
        yield base


def test_playback_in_chromium(server: str) -> None:
    run_spec(SPEC, server)
