"""A library root that disappears (an unplugged disk) and comes back, under a real watching server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import disk_tree
from tests.reliability.conftest import Server, index_paths, wait_for


def test_a_vanished_root_is_reported_keeps_its_index_and_is_caught_up_when_back(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    library = tmp_path / "disk"
    for i in range(30):
        path = library / f"show{i % 3}" / f"ep{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"v" * (i + 1))
    server = make_server([library], env={"GQL_MEDIA_WATCH_RETRY_DELAY_S": "0.5"}).start()
    server.wait_idle()
    before = index_paths(server.db_path)
    assert before == disk_tree(library)

    unplugged = tmp_path / "elsewhere"
    library.rename(unplugged)  # the disk goes away
    wait_for(
        lambda: "missing" in (server.data("{ watcher { error } }")["watcher"]["error"] or ""),
        timeout_s=60,
        what="the watcher to report the missing root",
    )
    # A sync asked for meanwhile removes nothing: the root is missing, not empty.
    server.data("mutation { syncLibrary(mode: INCREMENTAL) { id } }")
    job = server.wait_idle()
    assert job["state"] == "SUCCEEDED" and job["progress"]["removed"] == 0, job
    assert any("missing" in e["message"] for e in job["errors"]), job
    assert index_paths(server.db_path) == before

    # Changed while it was away, then plugged back in: caught up without a restart.
    (unplugged / "show0" / "ep0.mp4").unlink()
    (unplugged / "show9").mkdir()
    (unplugged / "show9" / "new.mp4").write_bytes(b"new")
    unplugged.rename(library)
    wait_for(
        lambda: server.data("{ watcher { error } }")["watcher"]["error"] is None,
        timeout_s=60,
        what="the watcher's error to clear",
    )
    wait_for(lambda: index_paths(server.db_path) == disk_tree(library), timeout_s=60, what="index == disk")
    assert ("video", "show9/new.mp4") in index_paths(server.db_path)
