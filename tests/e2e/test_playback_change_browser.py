"""A video whose file changes while it plays, in Chromium against a real server: the player asks for
the stream again and plays on from where it was, instead of stopping at the server's refusal.

Runs tests/e2e/playback-change.spec.mjs. The library holds a 90 s MPEG-4 AVI (transcoded); the spec
plays it, then moves a 40 s clip over it (made beside the library, renamed in as a download
finishes), then a 10 s one. The watcher syncs each change and the server drops the old stream: a
segment the player asks for is refused (404: the new file has no such segment; or 409: it was being
made from the old file). The player plays on from where it was in the 40 s clip, and from the start
of the 10 s one (where it was lies past its end). Skips outside CI when node or chromium is
missing, like tests/e2e/test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, require_node_and_chromium, run_spec, serve
from tests.playback_sources import SOURCES, encode_source

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "playback-change.spec.mjs"
CLIP = replace(SOURCES["avi_mpeg4_mp3"], name="long clip.avi", width_px=160, height_px=120, duration_s=90.0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, Path, Path]]:
    require_node_and_chromium()
    library = tmp_path / "library"
    playing = encode_source(library, CLIP)
    # The new files: other, shorter clips of the same name, made outside the library.
    longer = encode_source(tmp_path / "40s", replace(CLIP, duration_s=40.0, fps=24))
    shorter = encode_source(tmp_path / "10s", replace(CLIP, duration_s=10.0, fps=24))
    with serve(library, tmp_path, "e2e-playback-change-server.log") as base:
        yield base, playing, longer, shorter


def test_a_video_whose_file_changes_plays_on(server: tuple[str, Path, Path, Path]) -> None:
    base, playing, longer, shorter = server
    run_spec(
        SPEC,
        base,
        {"GQL_MEDIA_E2E_PLAYING": str(playing), "GQL_MEDIA_E2E_LONGER": str(longer),
         "GQL_MEDIA_E2E_SHORTER": str(shorter)},
    )  # fmt: skip
