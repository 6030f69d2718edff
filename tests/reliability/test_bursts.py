"""Bursts while watching: 10,000 files created within about a second, then half of them deleted."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import disk_tree
from tests.reliability.conftest import Server, db_health, index_paths, wait_for

pytestmark = pytest.mark.slow

BURST_FILES = 10_000
# The server's peak RSS may grow with a burst, but stays far from "one object graph per event".
RSS_LIMIT_KB = 600 * 1024


def create_burst(root: Path) -> float:
    """10,000 small files in 100 new folders; returns how long the writing took (seconds)."""
    started = time.monotonic()
    for index in range(BURST_FILES):
        folder = root / f"burst{index // 100:03d}"
        if index % 100 == 0:
            folder.mkdir()
        fd = os.open(folder / f"clip {index:05d}.mp4", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * (index % 7 + 1))
        os.close(fd)
    return time.monotonic() - started


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["native", "polling"])
def test_burst_of_10k_then_half_deleted(
    mode: str, tmp_path: Path, make_server: Callable[..., Server], record_property: Callable[[str, object], None]
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "before.mp4").write_bytes(b"already there")
    env = {"GQL_MEDIA_WATCH_MODE": mode, "GQL_MEDIA_FILE_SETTLE_MS": "500", "GQL_MEDIA_POLL_DELAY_MS": "500"}
    server = make_server([library], env=env).start()
    server.wait_idle()
    idle_rss_kb = server.rss_kb()

    write_s = create_burst(library)
    expected = disk_tree(library)
    assert len(expected) == BURST_FILES + 100 + 2

    def converged() -> bool:
        return index_paths(server.db_path) == expected

    try:
        wait_for(converged, 240, f"the index to hold the {BURST_FILES} new files ({mode})", every_s=1.0)
    except AssertionError:
        missing = expected - index_paths(server.db_path)
        state = server.data(
            "{ watcher { error pendingPaths } syncJobs(first: 5) { state trigger paths errors { message } } }"
        )
        raise AssertionError(f"{len(missing)} missing, e.g. {sorted(missing)[:3]}; {state}") from None

    for index in range(0, BURST_FILES, 2):
        os.unlink(library / f"burst{index // 100:03d}" / f"clip {index:05d}.mp4")
    expected = disk_tree(library)
    wait_for(converged, 240, f"the index to drop the deleted half ({mode})", every_s=1.0)
    server.wait_idle(timeout_s=300)
    assert index_paths(server.db_path) == expected
    health = db_health(server.db_path)
    assert health["integrity"] == ["ok"] and not health["duplicates"]
    status = server.data("{ watcher { enabled error mode } }")["watcher"]
    assert status["enabled"] and status["error"] is None, status

    peak_kb = server.rss_kb()
    record_property("burst_write_s", round(write_s, 2))
    record_property("rss_idle_kb", idle_rss_kb)
    record_property("rss_peak_kb", peak_kb)
    print(f"burst {mode}: written in {write_s:.2f} s; server RSS idle {idle_rss_kb} KiB, peak {peak_kb} KiB")
    assert peak_kb < RSS_LIMIT_KB
