"""Each script of examples/ run as the README shows it, against a real server."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scripts.frontend import NodeNotFound, env_with_node, node_bin
from tests.client.conftest import Site, client_env, closed_port_url
from tests.processes import REPO

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"


def run_example(*command: str, url: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        env=client_env(url),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


def test_sync_sh(site: Site) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    site.add_video("from-curl.mp4")
    done = run_example(str(EXAMPLES / "sync.sh"), url=site.url)
    assert done.returncode == 0, done.stdout + done.stderr
    first, last = done.stdout.splitlines()[0], done.stdout.splitlines()[-1]
    assert json.loads(first)["data"]["syncLibrary"]["state"] in ("QUEUED", "RUNNING")
    progress = json.loads(last)["data"]["node"]
    assert progress["state"] == "SUCCEEDED" and progress["progress"]["added"] == 1
    outside = run_example(str(EXAMPLES / "sync.sh"), "/not/a/root", url=site.url)
    assert outside.returncode == 3 and "OUTSIDE_ROOTS" in outside.stdout
    assert run_example(str(EXAMPLES / "sync.sh"), url=closed_port_url()).returncode == 3


def test_sync_and_wait_py(site: Site) -> None:
    site.add_video("sub/from-gql.mp4")
    done = run_example(sys.executable, str(EXAMPLES / "sync_and_wait.py"), "sub", url=site.url)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("sync job ")
    assert lines[-1].startswith("SUCCEEDED DONE ") and "+1 " in lines[-1], lines


@pytest.fixture(scope="module")
def node_examples() -> Iterator[dict[str, str]]:
    """examples/ installed with `npm ci`, by the Node.js the rest of the project uses."""
    try:
        bin_dir = node_bin()
    except NodeNotFound as error:
        pytest.skip(f"no Node.js at all: {error}")
    env = env_with_node(bin_dir)
    npm_ci = [str(bin_dir / "npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(npm_ci, cwd=EXAMPLES, env=env, check=True, timeout=600, stdin=subprocess.DEVNULL)
    yield env


def test_watch_mjs(site: Site, node_examples: dict[str, str]) -> None:
    env = {**node_examples, "GQL_MEDIA_SERVER": site.url}
    env.pop("GQL_MEDIA_API_TOKEN", None)
    proc = subprocess.Popen(
        ["node", str(EXAMPLES / "watch.mjs")],
        env=env, cwd=EXAMPLES, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "watching" in proc.stderr.readline()
        added = site.added_events(proc.stdout, "from-node")
        assert added[-1]["rootPath"] == str(site.library)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    unreachable = subprocess.run(
        ["node", str(EXAMPLES / "watch.mjs")],
        env={**env, "GQL_MEDIA_SERVER": closed_port_url()},
        cwd=EXAMPLES, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
