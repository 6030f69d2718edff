"""What the browser tests share: the tools they need, a real `gql_media serve` process, a spec run.

Each test (tests/e2e/test_*browser.py) makes its own library, then ``serve``s it and ``run_spec``s
its `*.spec.mjs` (node's test runner + playwright-core driving Debian's chromium) against it.
Outside CI a missing tool skips the test; in CI it fails (`make test` installs chromium first via
scripts/ci-system-deps.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts.frontend import NodeNotFound, node_bin
from tests.processes import REPO, free_port, start_server, wait_healthy, wait_or_kill

ARTIFACTS = REPO / "test-artifacts"
IN_CI = bool(os.environ.get("CI"))


def missing(what: str) -> None:
    """Skip for a missing tool, or fail in CI (where the browser tests must run)."""
    if IN_CI:
        pytest.fail(f"{what} (CI must run the browser test: see scripts/ci-system-deps.sh)")
    pytest.skip(what)


def chromium_runs() -> bool:
    """Debian's chromium (or $CHROMIUM) is there and runs: a binary hidden or broken counts as missing."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if path is None:
        return False
    try:
        return subprocess.run([path, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def require_node_and_chromium() -> None:
    """Skip (fail in CI) unless node, npm and chromium are installed; then build the UI (skipped when up to date)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing("node/npm not installed")
    if shutil.which("chromium") is None and not os.environ.get("CHROMIUM"):
        missing("chromium not installed (Debian: apt-get install chromium)")
    build_frontend()


def build_frontend() -> None:
    """npm ci + vite build, skipped when up to date."""
    subprocess.run(["bash", str(REPO / "scripts" / "build-frontend.sh")], check=True, timeout=600)


@contextmanager
def node_first_on_path() -> Iterator[None]:
    """The Node.js scripts/frontend.py picks (the system's 20+ or the venv's) first on PATH; skips without one."""
    try:
        node_dir = node_bin()
    except NodeNotFound as error:
        missing(str(error))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{node_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@contextmanager
def serve(library: Path, tmp_path: Path, log_name: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A `gql_media serve` process on ``library`` with the built UI (and ``env`` set); yields its base URL.

    Its output is copied to test-artifacts/``log_name`` when it stops.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The server's info lines are kept with the spec's artifacts.
    settings = {"GQL_MEDIA_FRONTEND_DIR": str(REPO / "frontend-example" / "dist"), "GQL_MEDIA_LOG_LEVEL": "info"}
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "gql_media", "serve", str(library), "--port", str(port)]
    proc = start_server([*command, "--data-dir", str(tmp_path / "data")], log_path, {**settings, **(env or {})})
    try:
        wait_healthy(proc, base, log_path)
        yield base
    finally:
        proc.terminate()
        wait_or_kill(proc, 15)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(log_path, ARTIFACTS / log_name)


def run_spec(spec: Path, base: str, env: Mapping[str, str] | None = None, timeout_s: float = 300) -> None:
    """Run one browser spec against the server at ``base``; fails with the end of its output when it fails."""
    full_env = {
        **os.environ,
        "GQL_MEDIA_E2E_URL": base,
        "GQL_MEDIA_E2E_ARTIFACTS": str(ARTIFACTS),
        **(env or {}),
    }
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", str(spec)],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, f"browser test failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
