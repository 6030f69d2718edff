"""The library roots added at run time (``roots.origin``): the ``core.ports.RootStore`` port.

Roots from the command line or the environment are written by ``IndexStore.ensure_roots`` at
every start (origin CONFIG). Roots added through the API are stored here with origin API and
loaded back at the next start; removing one forgets its whole index in one transaction.
"""

from __future__ import annotations

import os
import time

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.index import take_ids
from gql_media.adapters.store.tables import VIDEOS_IN_FOLDERS, video_path
from gql_media.core.models import Root

__all__ = ["SqlRootStore"]

CONFIG = "CONFIG"
API = "API"


class SqlRootStore:
    """Implements ``ports.RootStore`` on a ``Db``."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def added_roots(self) -> list[Root]:
        """The roots added through the API, oldest first."""
        async with self.db.reading() as conn:
            rows = await conn.fetch(
                "SELECT r.id, r.path, f.id FROM roots r JOIN folders f ON f.root_id = r.id AND f.path = ''"
                " WHERE r.origin = ? ORDER BY r.id",
                (API,),
            )
        return [Root(id=int(r[0]), path=str(r[1]), folder_id=int(r[2])) for r in rows]

    async def add_root(self, path: str) -> Root:
        """Store ``path`` as a root added at run time; a row left by an earlier root of that path is reused."""
        async with self.db.writing() as conn:
            row = await conn.fetch_one(
                "SELECT r.id, f.id FROM roots r JOIN folders f ON f.root_id = r.id AND f.path = '' WHERE r.path = ?",
                (path,),
            )
            if row is not None:
                await conn.execute("UPDATE roots SET origin = ? WHERE id = ?", (API, row[0]))
                return Root(id=int(row[0]), path=path, folder_id=int(row[1]))
            root_id = await take_ids(conn, "roots", 1)
            folder_id = await take_ids(conn, "folders", 1)
            now = time.time()
            await conn.execute(
                "INSERT INTO roots (id, path, created_at, origin) VALUES (?, ?, ?, ?)", (root_id, path, now, API)
            )
            await conn.execute(
                "INSERT INTO folders (id, root_id, parent_id, path, name, created_at) VALUES (?, ?, NULL, '', ?, ?)",
                (folder_id, root_id, os.path.basename(path.rstrip("/")) or path, now),
            )
        return Root(id=root_id, path=path, folder_id=folder_id)

    async def remove_root(self, root_id: int) -> list[tuple[int, str]]:
        """Forget a root and its whole index (folders, videos, download states); returns its videos' ids and paths."""
        async with self.db.writing() as conn:
            videos = await conn.fetch(
                f"SELECT v.id, {video_path()} FROM {VIDEOS_IN_FOLDERS} WHERE v.root_id = ? ORDER BY v.id",
                (root_id,),
            )
            await conn.execute("DELETE FROM videos WHERE root_id = ?", (root_id,))
            await conn.execute("DELETE FROM hls_downloads WHERE root_id = ?", (root_id,))
            await conn.execute("DELETE FROM folders WHERE root_id = ?", (root_id,))
            await conn.execute("DELETE FROM roots WHERE id = ?", (root_id,))
        return [(int(v[0]), str(v[1])) for v in videos]
