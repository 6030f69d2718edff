"""`gql-media roots list|add|remove` against a real server, and an added root kept across a real restart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gql_media.adapters.demo import encode_clip
from tests.client.conftest import SMALL, gql_media
from tests.reliability.conftest import Server

pytestmark = pytest.mark.e2e


def listed(url: str) -> dict[str, Any]:
    done = gql_media("roots", "list", "--json", url=url)
    assert done.returncode == 0, done.stderr
    return {root["rootPath"]: root for root in json.loads(done.stdout)}


def wait_videos(url: str, root: Path, count: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = listed(url)
        if str(root) in last and last[str(root)]["videoCount"] == count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{root} never showed {count} videos: {last}")


def test_roots_add_list_remove_and_a_restart(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    clip = encode_clip(tmp_path / "clip.mp4", SMALL)
    (library / "first.mp4").write_bytes(clip.read_bytes())
    shows = tmp_path / "shows"
    (shows / "season 1").mkdir(parents=True)
    (shows / "season 1" / "e1.mp4").write_bytes(clip.read_bytes())
    (shows / "e0.mp4").write_bytes(clip.read_bytes())
    before = {p: p.read_bytes() for p in shows.rglob("*") if p.is_file()}
    server = Server(roots=[library], data_dir=tmp_path / "data", log_path=tmp_path / "server.log", watch=True)
    server.start()
    try:
        url = server.base
        added = gql_media("roots", "add", str(shows), url=url)
        assert added.returncode == 0, added.stderr
        assert f"library root added: {shows}" in added.stdout
        wait_videos(url, shows, 2)
        assert set(listed(url)) == {str(library), str(shows)}
        table = gql_media("roots", "list", url=url)
        assert table.returncode == 0 and str(shows) in table.stdout and "videos" in table.stdout

        # Each refusal exits 3 with the server's reason and code.
        inside = gql_media("roots", "add", str(shows / "season 1"), url=url)
        assert inside.returncode == 3 and "(ROOT_OVERLAP)" in inside.stderr, inside.stderr
        configured = gql_media("roots", "remove", str(library), url=url)
        assert configured.returncode == 3 and "(ROOT_FROM_CONFIG)" in configured.stderr, configured.stderr

        # A real restart: the added root comes back, indexed and watched.
        server.stop()
        server.start()
        assert set(listed(url)) == {str(library), str(shows)}
        watcher = server.data("{ watcher { enabled roots } }")["watcher"]
        assert watcher == {"enabled": True, "roots": [str(library), str(shows)]}
        (shows / "e2.mp4").write_bytes(clip.read_bytes())
        wait_videos(url, shows, 3)

        removed = gql_media("roots", "remove", str(shows), url=url)
        assert removed.returncode == 0, removed.stderr
        assert set(listed(url)) == {str(library)}
        del_after = {p: p.read_bytes() for p in shows.rglob("*") if p.is_file()}
        assert {p: b for p, b in del_after.items() if p.name != "e2.mp4"} == before
        server.stop()
        server.start()
        assert set(listed(url)) == {str(library)}
    finally:
        server.stop()
