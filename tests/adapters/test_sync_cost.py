"""One file's sync searches its own folder and rows, whatever the size of the library (bench P3).

How long it takes is the bench's business (P3: 100k files vs 1k). Here every statement that the
sync of one added, renamed or removed file sends is planned by SQLite, which plans without
statistics: none may scan ``videos`` or ``folders``, or search them by ``root_id`` alone (a
whole root). A ``root_id = ?`` beside the folder's id once made the shallow read search the
root's depth-first index: 21 ms at 100k videos against 0.3 ms at 1k.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gql_media.adapters.store.db import AiosqliteConnection
from gql_media.core.models import JobState
from gql_media.services import Services
from tests.conftest import run_sync

# A plan step that reads a table whole, or every row of a root.
_GROWS_WITH_THE_LIBRARY = re.compile(r"^(SCAN (videos|folders)\b|SEARCH (videos|folders) .*\(root_id=\?\)$)")

Sent = list[tuple[str, tuple[Any, ...]]]


def _spy_on_statements(monkeypatch: pytest.MonkeyPatch, sent: Sent) -> None:
    """Note each statement (and its first row of parameters) on its way to aiosqlite; it still runs."""

    def noting(name: str) -> Callable[..., Awaitable[Any]]:
        send = getattr(AiosqliteConnection, name)

        async def note(self: AiosqliteConnection, sql: str, params: Any) -> Any:
            sent.append((sql, tuple(params[0]) if name == "_executemany" else tuple(params)))
            return await send(self, sql, params)

        return note

    for name in ("_fetch", "_execute", "_executemany"):
        monkeypatch.setattr(AiosqliteConnection, name, noting(name))


def _plan(db_path: Path, sql: str, params: tuple[Any, ...]) -> list[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        return [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


async def test_one_files_sync_reads_and_writes_only_its_folder(
    services: Services, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if services.db.dialect != "sqlite":
        pytest.skip("PostgreSQL plans by its statistics (gathered after a bulk load)")
    for number in range(4):
        folder = library / f"d{number}"
        folder.mkdir()
        for clip in range(5):
            (folder / f"clip {clip}.mp4").write_bytes(b"")
    await run_sync(services, library)
    folder = library / "d2"
    sent: Sent = []
    _spy_on_statements(monkeypatch, sent)

    (folder / "added.mp4").write_bytes(b"")
    added = await run_sync(services, folder, recursive=False)
    (folder / "added.mp4").rename(folder / "renamed.mp4")
    renamed = await run_sync(services, folder, recursive=False)
    (folder / "renamed.mp4").unlink()
    removed = await run_sync(services, folder, recursive=False)
    monkeypatch.undo()

    assert all(job.state is JobState.SUCCEEDED for job in (added, renamed, removed))
    assert (added.progress.added, renamed.progress.moved, removed.progress.removed) == (1, 1, 1)
    assert any("FROM videos" in sql for sql, _params in sent) and any("INTO videos" in sql for sql, _params in sent)
    db_path = services.db.sqlite_path
    assert db_path is not None
    growing = [
        (sql, step)
        for sql, params in sent
        for step in _plan(db_path, sql, params)
        if _GROWS_WITH_THE_LIBRARY.search(step)
    ]
    assert growing == []
