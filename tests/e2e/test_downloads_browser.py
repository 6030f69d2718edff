"""HLS downloads in Chromium against a real server (issue 15 item 6): the reason of a half-finished
download, and a complete one merged with its Merge button.

Runs tests/e2e/downloads.spec.mjs (node's test runner + playwright-core driving Debian's chromium),
then checks the merged mp4 on disk and that the half-finished download was left alone. Skips
outside CI when node or chromium is missing, like tests/e2e/test_browser.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import hls_layouts
from tests.e2e.test_browser import ARTIFACTS, REPO, _free_port, _missing, _wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "downloads.spec.mjs"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        _missing("node/npm not installed")
    if shutil.which("chromium") is None and not os.environ.get("CHROMIUM"):
        _missing("chromium not installed (Debian: apt-get install chromium)")
    subprocess.run(["bash", str(REPO / "scripts" / "build-frontend.sh")], check=True, timeout=600)
    library = tmp_path / "library"
    downloads = library / "Downloads"
    hls_layouts.mpegts(downloads / "lecture")
    (hls_layouts.cdn_names(downloads / "partial") / "index2.ts").unlink()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GQL_MEDIA_FRONTEND_DIR": str(REPO / "frontend-example" / "dist"),
        # A complete download waits for its Merge button.
        "GQL_MEDIA_HLS_AUTO_MERGE": "false",
    }
    env.pop("GQL_MEDIA_API_TOKEN", None)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "gql_media", "serve", str(library), "--port", str(port)]
        proc = subprocess.Popen(
            [*command, "--data-dir", str(tmp_path / "data")], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(base, proc)
            yield base, library
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copyfile(log_path, ARTIFACTS / "e2e-downloads-server.log")


def test_downloads_in_chromium(server: tuple[str, Path]) -> None:
    base, library = server
    partial_before = sorted(p.name for p in (library / "Downloads" / "partial").iterdir())
    env = {
        **os.environ,
        "GQL_MEDIA_E2E_URL": base,
        "GQL_MEDIA_E2E_LIBRARY": str(library),
        "GQL_MEDIA_E2E_ARTIFACTS": str(ARTIFACTS),
    }
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", str(SPEC)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, f"browser test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    merged = library / "Downloads" / "lecture.mp4"
    assert merged.is_file() and merged.stat().st_size > 0
    # The source stays (deleting it is opt-in); the half-finished download is untouched.
    assert (library / "Downloads" / "lecture" / "index.m3u8").is_file()
    assert sorted(p.name for p in (library / "Downloads" / "partial").iterdir()) == partial_before
