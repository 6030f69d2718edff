"""A first index killed while its bulk load is open: the next start finishes it from its marker.

A real server indexes 60k empty videos in many batches (the store dropped the secondary indexes
and the search trigger at an early batch, leaving a row in ``bulk_loads``). While the load is
open a name search still finds videos on both sides of the marker's id; then SIGKILL. The next
start makes the indexes and triggers again from the marker's own statements, fills the search
table, and the sync goes on: the index equals the disk and FTS5's own check passes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gql_media.adapters.store.bulk import KEPT_INDEXES
from tests.conftest import disk_tree
from tests.reliability.conftest import Server, db_health, index_paths

pytestmark = pytest.mark.slow

FILES = 60_000
FOLDERS = 300
SEARCH = "query($n: String) { videos(first: 5, filter: {nameContains: $n}) { totalCount edges { node { name } } } }"
WRITING_DONE = "{ currentSync { progress { phase } } }"


def _read(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A read of the live database (read-only; an empty answer while it is not there yet)."""
    if not db_path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # the schema is not made yet
            return []


def _schema(db_path: Path) -> dict[str, str]:
    rows = _read(db_path, "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'videos' AND sql IS NOT NULL")
    return {str(name): str(sql) for name, sql in rows}


def _open_load(db_path: Path, timeout_s: float = 120.0) -> tuple[int, str, str]:
    """Once a bulk load is open past its first batches: its marker's id (the first the search table
    lacks: each batch moves it past its videos), the first video's name and the last one's."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        marker = _read(db_path, "SELECT first_video_id FROM bulk_loads")
        if marker:
            first = int(marker[0][0])
            oldest = _read(db_path, "SELECT name FROM videos ORDER BY id LIMIT 1")
            newest = _read(db_path, "SELECT name, id FROM videos WHERE id > ? ORDER BY id DESC LIMIT 1", (5000,))
            if oldest and newest and newest[0][1] < first:
                return first, str(oldest[0][0]), str(newest[0][0])
        time.sleep(0.02)
    raise AssertionError("no bulk load seen open")


def _names(server: Server, text: str) -> list[str]:
    found = server.data(SEARCH, {"n": text})["videos"]
    return [edge["node"]["name"] for edge in found["edges"]]


def _wait(check: Callable[[], bool], what: str, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_first_index_killed_mid_bulk_load_is_finished_at_the_next_start(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    library = tmp_path / "library"
    for folder in range(FOLDERS):
        (library / f"d{folder:03d}").mkdir(parents=True)
    for number in range(FILES):
        (library / f"d{number % FOLDERS:03d}" / f"clip {number:05d}.mp4").write_bytes(b"")
    data_dir = tmp_path / "data"
    # Walk batches of 1,000 entries: the first index is 60 batches, each its own transactions.
    env = {"GQL_MEDIA_SYNC_BATCH_SIZE": "100"}
    server = make_server([library], data_dir=data_dir, watch=False, env=env)
    server.start()
    db_path = server.db_path
    before = _schema(db_path)
    assert {"videos_search_insert", "ix_videos_name", "ix_videos_size"} <= set(before), before

    first, old_name, new_name = _open_load(db_path)
    # Searches answer right while the load is open: through the search table, which each batch
    # fills (and by name past the marker's id, within a batch's own transaction).
    assert _names(server, old_name) == [old_name]
    assert _names(server, new_name) == [new_name]
    server.kill()

    # What the kill left: the load still open, its indexes and insert trigger gone, the file sound.
    marker = _read(db_path, "SELECT first_video_id, restore FROM bulk_loads")
    assert len(marker) == 1 and marker[0][0] >= first, "the load ended before the kill: nothing to repair"
    restore = json.loads(marker[0][1])
    left = _schema(db_path)
    assert "videos_search_insert" not in left and "ix_videos_name" not in left
    health = db_health(db_path)
    assert health["integrity"] == ["ok"] and not health["duplicates"], health["integrity"]
    ((indexed,),) = _read(db_path, "SELECT COUNT(*) FROM videos")
    assert 0 < indexed < FILES

    # The next start finishes the load, and its sync indexes the rest.
    server = make_server([library], data_dir=data_dir, watch=False, env=env)
    server.start()
    _wait(lambda: not _read(db_path, "SELECT 1 FROM bulk_loads"), "the bulk load finished")
    assert _schema(db_path) == before
    dropped = [sql for name, sql in before.items() if name.startswith("ix_") and name not in KEPT_INDEXES]
    assert sorted(restore["indexes"]) == sorted(dropped)
    assert _names(server, new_name) == [new_name]

    def written() -> bool:
        current = server.data(WRITING_DONE)["currentSync"]
        return current is None or current["progress"]["phase"] in ("PROBING", "THUMBNAILS", "DONE")

    _wait(written, "the sync's writes")
    assert _names(server, "clip 59999") == ["clip 59999.mp4"]
    server.kill()

    assert index_paths(db_path) == disk_tree(library)
    assert _schema(db_path) == before
    health = db_health(db_path)
    assert health["integrity"] == ["ok"] and not health["duplicates"], health["integrity"]
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        # FTS5's own check of the search table against the videos (raises if they differ).
        conn.execute("INSERT INTO videos_search (videos_search, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("SELECT COUNT(*) FROM videos_search WHERE videos_search MATCH '\"clip\"'").fetchone() == (
            FILES,
        )
