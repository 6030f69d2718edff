"""Playback in Chromium against a real server: an AVI and an HEVC MKV play through HLS and seek (issue 14).

Runs tests/e2e/playback.spec.mjs (node's test runner + playwright-core driving Debian's chromium).
Skips outside CI when node or chromium is missing, like tests/e2e/test_browser.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.e2e.test_browser import ARTIFACTS, REPO, _free_port, _missing, _wait_healthy
from tests.playback_sources import SOURCES, encode_source

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "playback.spec.mjs"
SIDECAR = "1\n00:00:05,000 --> 00:00:10,000\nHello from the middle\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        _missing("node/npm not installed")
    if shutil.which("chromium") is None and not os.environ.get("CHROMIUM"):
        _missing("chromium not installed (Debian: apt-get install chromium)")
    subprocess.run(["bash", str(REPO / "scripts" / "build-frontend.sh")], check=True, timeout=600)
    library = tmp_path / "library"
    # 14 s each: 4 s segments, so the middle is in a segment after the first.
    encode_source(library, replace(SOURCES["avi_mpeg4_mp3"], width_px=160, height_px=120, duration_s=14.0))
    encode_source(library, replace(SOURCES["mkv_hevc"], width_px=160, height_px=120, duration_s=14.0))
    (library / "hevc clip.en.srt").write_text(SIDECAR, encoding="utf-8")
    (library / "notes.mp4").write_bytes(b"not a video\n" * 10)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GQL_MEDIA_FRONTEND_DIR": str(REPO / "frontend-example" / "dist")}
    env.pop("GQL_MEDIA_API_TOKEN", None)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "gql_media", "serve", str(library), "--port", str(port)]
        proc = subprocess.Popen(
            [*command, "--data-dir", str(tmp_path / "data")], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(base, proc)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copyfile(log_path, ARTIFACTS / "e2e-playback-server.log")


def test_playback_in_chromium(server: str) -> None:
    env = {**os.environ, "GQL_MEDIA_E2E_URL": server, "GQL_MEDIA_E2E_ARTIFACTS": str(ARTIFACTS)}
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
