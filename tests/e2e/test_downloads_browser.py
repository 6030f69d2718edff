"""HLS downloads in Chromium against a real server (issue 15 item 6): the reason of a half-finished
download, and a complete one merged with its Merge button.

Runs tests/e2e/downloads.spec.mjs (node's test runner + playwright-core driving Debian's chromium),
then checks the merged mp4 on disk and that the half-finished download was left alone. Skips
outside CI when node or chromium is missing, like tests/e2e/test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import hls_layouts
from tests.e2e.harness import REPO, require_node_and_chromium, run_spec, serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "downloads.spec.mjs"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    require_node_and_chromium()
    library = tmp_path / "library"
    downloads = library / "Downloads"
    hls_layouts.mpegts(downloads / "lecture")
    (hls_layouts.cdn_names(downloads / "partial") / "index2.ts").unlink()
    # A complete download waits for its Merge button.
    with serve(library, tmp_path, "e2e-downloads-server.log", {"GQL_MEDIA_HLS_AUTO_MERGE": "false"}) as base:
        yield base, library


def test_downloads_in_chromium(server: tuple[str, Path]) -> None:
    base, library = server
    partial_before = sorted(p.name for p in (library / "Downloads" / "partial").iterdir())
    run_spec(SPEC, base, {"GQL_MEDIA_E2E_LIBRARY": str(library)})
    merged = library / "Downloads" / "lecture.mp4"
    assert merged.is_file() and merged.stat().st_size > 0
    # The source stays (deleting it is opt-in); the half-finished download is untouched.
    assert (library / "Downloads" / "lecture" / "index.m3u8").is_file()
    assert sorted(p.name for p in (library / "Downloads" / "partial").iterdir()) == partial_before
