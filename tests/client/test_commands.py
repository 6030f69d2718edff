"""`gql-media sync`, `watch` and `status` against real servers: every exit code, the progress shown in a
pipe and on a terminal, Ctrl-C, refusals and an unreachable server."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import (
    CLIENT_TOKEN,
    Site,
    closed_port_url,
    gql_media,
    running_gql_media,
    start_site,
)
from tests.processes import REPO

pytestmark = pytest.mark.e2e


def job_state(site: Site, job_id: str) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on SyncJob { state } } }"
    state: str = site.server.data(query, {"id": job_id})["node"]["state"]
    return state


def wait_state(site: Site, job_id: str, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = job_state(site, job_id)
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


def indexed(site: Site, path: str) -> bool:
    query = "query($p: String!) { videos(first: 5, filter: { nameContains: $p }) { edges { node { path } } } }"
    edges = site.server.data(query, {"p": os.path.basename(path)})["videos"]["edges"]
    return any(edge["node"]["path"] == path for edge in edges)


# --------------------------------------------------------------------------------------------
# sync


def test_sync_starts_a_job_and_returns(site: Site) -> None:
    done = gql_media("sync", url=site.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sync job ") and "(INCREMENTAL: " in done.stdout
    site.server.wait_idle()


def test_sync_wait_succeeds_with_plain_lines_in_a_pipe(site: Site) -> None:
    site.add_video("sub/new-one.mp4")
    done = gql_media("sync", "sub", "--wait", url=site.url, cwd=site.library)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # A PATH that exists here is sent as an absolute path: the job covers exactly that folder.
    assert lines[0].endswith(f"(INCREMENTAL: {site.library / 'sub'})"), lines[0]
    assert any(line.startswith("SUCCEEDED DONE ") for line in lines), lines
    assert "\x1b[" not in done.stdout  # no terminal codes in a pipe
    assert "SUCCEEDED in " in lines[-1] and "added 1," in lines[-1], lines[-1]
    assert indexed(site, "sub/new-one.mp4")


def test_sync_wait_shows_a_bar_on_a_terminal(site: Site) -> None:
    site.add_video("sub/on-a-terminal.mp4")
    primary, secondary = pty.openpty()
    env = {**os.environ, "GQL_MEDIA_SERVER": site.url, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    env.pop("GQL_MEDIA_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gql_media", "sync", "--wait", "--full"],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env, cwd=REPO,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    assert proc.wait(60) == 0, output.decode(errors="replace")
    text = output.decode(errors="replace")
    assert "━" in text  # rich's bar
    assert "(FULL: " in text and "SUCCEEDED in " in text and "added 1," in text


def test_sync_wait_of_a_cancelled_job_exits_2(site: Site) -> None:
    folder = site.held_folder()
    with running_gql_media("sync", str(folder), "--wait", url=site.url) as proc:
        try:
            job_id = site.wait_merging()
            site.server.data("mutation($id: ID!) { cancelSync(id: $id) { id } }", {"id": job_id})
        finally:
            site.release()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert f"sync job {job_id}: CANCELLED in " in out


def test_ctrl_c_during_wait_leaves_the_job_running(site: Site) -> None:
    folder = site.held_folder()
    try:
        with running_gql_media("sync", str(folder), "--wait", url=site.url) as proc:
            job_id = site.wait_merging()
            # The client said which job it follows.
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(f"sync job {job_id}: ")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, out + err
            assert f"sync job {job_id} keeps running on the server" in err
            assert job_state(site, job_id) == "RUNNING"
            # `status` shows it, in both forms.
            status = gql_media("status", "--json", url=site.url)
            assert status.returncode == 0, status.stderr
            assert json.loads(status.stdout)["currentSync"]["id"] == job_id
            table = gql_media("status", url=site.url)
            assert job_id in table.stdout and "MERGING" in table.stdout
    finally:
        site.release()
    assert wait_state(site, job_id) == "SUCCEEDED"


def test_sync_of_a_path_outside_the_roots_is_refused_with_exit_3(site: Site) -> None:
    done = gql_media("sync", "/definitely/not/a/root", "--wait", url=site.url)
    assert done.returncode == 3
    assert "outside every library root (OUTSIDE_ROOTS)" in done.stderr


def test_an_unreachable_server_exits_3_with_the_reason() -> None:
    url = closed_port_url()
    for args in (["sync"], ["sync", "--wait"], ["status"], ["status", "--json"], ["watch"]):
        done = gql_media(*args, url=url)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        assert f"cannot reach the server at {url}" in done.stderr or "cannot reach the server at ws" in done.stderr
        assert "Traceback" not in done.stderr
    bad = gql_media("status", "--server", "ftp://example", url=None)
    assert bad.returncode == 3 and "not an http(s) URL" in bad.stderr


# --------------------------------------------------------------------------------------------
# watch and status


def test_watch_prints_library_changes_as_json_lines(site: Site) -> None:
    with running_gql_media("watch", url=site.url) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        assert "watching" in proc.stderr.readline()
        added = site.added_events(proc.stdout, "watched")
        assert added[-1]["rootPath"] == str(site.library)
        assert set(added[-1]) == {"sequence", "kind", "id", "path", "oldPath", "rootPath", "jobId"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130


def test_status_as_a_table_and_as_json(site: Site) -> None:
    site.server.wait_idle()
    table = gql_media("status", url=site.url)
    assert table.returncode == 0, table.stderr
    assert "watcher" in table.stdout and "off" in table.stdout
    assert str(site.library) in table.stdout and "current job" in table.stdout
    data = json.loads(gql_media("status", "--json", url=site.url).stdout)
    assert data["watcher"]["enabled"] is False
    assert data["currentSync"] is None
    assert [root["rootPath"] for root in data["roots"]] == [str(site.library)]
    assert data["roots"][0]["videoCount"] >= 1


# --------------------------------------------------------------------------------------------
# A server with a token; a job that fails


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = start_site(tmp_path_factory.mktemp("client-token"), token=CLIENT_TOKEN)
    try:
        yield made
    finally:
        made.release()
        made.server.stop()


def test_without_the_token_every_command_is_refused_with_exit_3(secured: Site) -> None:
    for args in (["sync"], ["status"], ["watch"]):
        done = gql_media(*args, url=secured.url)
        assert done.returncode == 3, (args, done.stdout, done.stderr)
        assert "the server refused: unauthorized" in done.stderr, done.stderr
    wrong = gql_media("status", "--token", "wrong", url=secured.url)
    assert wrong.returncode == 3 and "UNAUTHENTICATED" in wrong.stderr
    # From GQL_MEDIA_API_TOKEN, or --token.
    assert gql_media("status", url=secured.url, token=CLIENT_TOKEN).returncode == 0
    assert gql_media("status", "--token", CLIENT_TOKEN, url=secured.url).returncode == 0


def test_sync_wait_of_a_failed_job_exits_1(secured: Site) -> None:
    """The index loses a table under a running job (as a damaged database would): the job FAILS."""
    folder = secured.held_folder()
    with running_gql_media("sync", str(folder), "--wait", url=secured.url, token=CLIENT_TOKEN) as proc:
        try:
            job_id = secured.wait_merging()
            with contextlib.closing(sqlite3.connect(secured.server.db_path, timeout=30)) as db:
                db.execute("ALTER TABLE videos RENAME TO videos_gone")
                db.commit()
        finally:
            secured.release()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert f"sync job {job_id}: FAILED in " in out
    assert "error: : sync failed: " in out


def test_help_lists_the_client_commands() -> None:
    done = gql_media("--help", url=None)
    for command in ("sync", "watch", "status", "roots"):
        assert command in done.stdout
    sync_help = " ".join(gql_media("sync", "--help", url=None).stdout.split())
    assert "--server" in sync_help and "3 server unreachable or refused" in sync_help


def test_the_client_never_opens_the_database(site: Site, tmp_path: Path) -> None:
    """No data dir, no database URL: the client has only the server's address."""
    done = gql_media("status", "--json", url=site.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".gql_media").exists()
