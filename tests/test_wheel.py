"""The wheel carries the web UI: built from a copy of the source tree, installed into a new venv and
served there by ``gql-media serve`` with no source checkout (and no Node.js) beside it.

The new venv gets the wheel's dependencies from the package index when it answers (pip's cache makes
that quick), as a user's install would. On a machine without network (the `unshare -mn` check) it
falls back to the wheel alone plus this test environment's packages (a .pth file), and `pip check`
proves the wheel's declared dependencies are all met there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.frontend import NodeNotFound, build
from tests.processes import free_port, wait_or_kill

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]
# Not part of a build: local state, caches, other builds.
IGNORED = shutil.ignore_patterns(
    ".venv", "node_modules", ".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".gql_media",
    "test-artifacts", ".make-stamps", "*.whl",
)  # fmt: skip


def _run(*args: str | Path, timeout_s: float = 600, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built with pip (setup.py's step puts frontend-example/dist into gql_media/static)."""
    try:
        build()  # a no-op when dist is fresh; otherwise the system's or the venv's Node.js
    except NodeNotFound as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    source = tmp_path_factory.mktemp("source") / "gql_media"
    shutil.copytree(REPO, source, ignore=IGNORED)
    shutil.rmtree(source / "dist", ignore_errors=True)
    out = tmp_path_factory.mktemp("wheelhouse")
    # No build isolation: this environment has setuptools and wheel (the test extra), and a
    # machine without network can still build.
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", out, source)
    (built,) = out.glob("gql_media-*.whl")
    return built


def test_the_wheel_contains_the_built_web_ui(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"gql_media/static/index.html", "gql_media/static/playground.html"} <= names
    assets = [n for n in names if n.startswith("gql_media/static/assets/")]
    assert any(n.endswith(".js") for n in assets), sorted(names)
    # The code and its data files too (migrations are read at run time).
    assert "gql_media/cli.py" in names
    assert "gql_media/adapters/migrations/script.py.mako" in names
    assert any(n.startswith("gql_media/adapters/migrations/versions/") and n.endswith(".py") for n in names)


def _install(wheel: Path, venv: Path) -> str:
    """Install ``wheel`` into the new ``venv``; says how its dependencies came."""
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    online = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--retries", "0", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    if online.returncode == 0:
        return "dependencies from the package index"
    print(f"pip install with dependencies failed (no network?):\n{online.stderr[-2000:]}", file=sys.stderr)
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run(python, "-m", "pip", "check")
    return "dependencies from the test environment (offline)"


@pytest.fixture
def installed_server(wheel: Path, tmp_path: Path) -> Iterator[str]:
    venv = tmp_path / "venv"
    how = _install(wheel, venv)
    print(f"wheel installed into a new venv, {how}")
    located = _run(venv / "bin" / "python", "-c", "import gql_media; print(gql_media.__file__)", cwd=tmp_path)
    assert Path(located.stdout.strip()).is_relative_to(venv), located.stdout
    library = tmp_path / "library"
    library.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GQL_MEDIA_")}
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "gql-media"), "serve", str(library), "--port", str(port),
             "--data-dir", str(tmp_path / "data"), "--no-watch"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited:\n{log_path.read_text()[-3000:]}"
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, f"the server did not start:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        wait_or_kill(process, 20)


def test_the_installed_wheel_serves_the_ui_and_the_playground(installed_server: str) -> None:
    status, index = _get(f"{installed_server}/")
    assert status == 200
    assert "<script" in index
    # The page's own script comes from the wheel's static folder too.
    script = re.search(r'src="(/assets/[^"]+\.js)"', index)
    assert script is not None, index[:2000]
    status, code = _get(installed_server + script.group(1))
    assert status == 200 and len(code) > 1000
    status, playground = _get(f"{installed_server}/playground")
    assert status == 200
    assert "<script" in playground and playground != index
