"""Migrations 0009 and 0010 down and up again: every video keeps its id, folder, name and path.

0010 drops ``videos.path`` (a video's place is its folder and its name); its downgrade adds the
column back, filled from the folders, and an upgrade after it must find the table as that left it.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.migrate import MIGRATIONS_DIR, async_driver_url, migrate
from gql_media.adapters.store.reads import LibraryReads
from tests.video_sql import VIDEOS

_FOLDERS = [(1, None, "", "lib"), (2, 1, "a", "a"), (3, 2, "a/b c", "b c"), (4, 1, "é", "é")]
_VIDEOS = [(1, 1, "top.mp4"), (2, 2, "x.mp4"), (3, 3, "deep.mkv"), (4, 3, "x.mp4"), (5, 4, "ü.webm")]
_PATHS = {1: "top.mp4", 2: "a/x.mp4", 3: "a/b c/deep.mkv", 4: "a/b c/x.mp4", 5: "é/ü.webm"}


def _downgrade(connection: Connection, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.downgrade(config, target)


async def _down_to(url: str, target: str) -> None:
    engine = create_async_engine(async_driver_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, target)
    finally:
        await engine.dispose()


async def test_the_lean_migrations_go_down_and_up_keeping_every_video(database_url: str) -> None:
    await migrate(database_url)
    db = Db(database_url)
    await db.connect()
    try:
        async with db.writing() as conn:
            await conn.execute("INSERT INTO roots (id, path, created_at) VALUES (1, '/lib', 0)")
            await conn.executemany(
                "INSERT INTO folders (id, root_id, parent_id, path, name, created_at) VALUES (?, 1, ?, ?, ?, 0)",
                _FOLDERS,
            )
            await conn.executemany(
                "INSERT INTO videos (id, root_id, folder_id, name, name_fold, size, mtime_ns, created_at)"
                " VALUES (?, 1, ?, ?, ?, 1, 0, 0)",
                [(video_id, folder_id, name, name.casefold()) for video_id, folder_id, name in _VIDEOS],
            )
        await db.disconnect()
        await _down_to(database_url, "0008")
        await db.connect()
        async with db.reading() as conn:  # the path column is back, filled from the folders
            rows = await conn.fetch("SELECT id, path FROM videos ORDER BY id")
        assert {int(r[0]): str(r[1]) for r in rows} == _PATHS
        await db.disconnect()

        assert await migrate(database_url) is True
        await db.connect()
        async with db.reading() as conn:
            rows = await conn.fetch(f"SELECT id, folder_id, name, path FROM {VIDEOS} ORDER BY id")
        assert [(int(r[0]), int(r[1]), str(r[2])) for r in rows] == _VIDEOS
        assert {int(r[0]): str(r[3]) for r in rows} == _PATHS
        videos = await LibraryReads(db).videos_by_ids(_PATHS)
        assert {video_id: row.path for video_id, row in videos.items()} == _PATHS
        # The key on place is (folder_id, name) again: the same name in another folder is fine, not twice in one.
        async with db.writing() as conn:
            await conn.execute(
                "INSERT INTO videos (id, root_id, folder_id, name, name_fold, size, mtime_ns, created_at)"
                " VALUES (6, 1, 4, 'x.mp4', 'x.mp4', 1, 0, 0)"
            )
        duplicate_refused = False
        try:
            async with db.writing() as conn:
                await conn.execute(
                    "INSERT INTO videos (id, root_id, folder_id, name, name_fold, size, mtime_ns, created_at)"
                    " VALUES (7, 1, 4, 'x.mp4', 'x.mp4', 1, 0, 0)"
                )
        except Exception as error:  # sqlite3.IntegrityError or asyncpg's UniqueViolationError
            duplicate_refused = "unique" in str(error).lower()
        assert duplicate_refused
    finally:
        await db.disconnect()
