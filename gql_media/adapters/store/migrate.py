"""Brings the database schema up to date with Alembic at start-up; a second run is a no-op.

A database already at the head revision is the common case (every restart), and Alembic with
SQLAlchemy's asyncio engine and ORM behind it is a quarter of the server's imports (0.24 s of
1.2 s on a quiet machine, twice that loaded). So the stored revision is read first with plain
SQL through ``Db``, and the head is read from the revision files' own ``revision`` and
``down_revision`` lines; only a database behind (or ahead, or unreadable) goes through Alembic,
which then decides exactly as before.

On PostgreSQL every start also says when name search has no index: migration 0006 builds the
``pg_trgm`` index only on a server that has the extension (a contrib module: the ``pgserver`` wheel
the tests embed has none), and a search of 3 or more characters then reads every video's name.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from gql_media.adapters.store.db import Db

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|\'([^\']*)\'|None)\s*$', re.M)


def async_driver_url(url: str) -> str:
    """The SQLAlchemy URL of the same database through an asyncio driver."""
    for prefix, replacement in (
        ("sqlite:", "sqlite+aiosqlite:"),
        ("postgresql:", "postgresql+asyncpg:"),
        ("postgres:", "postgresql+asyncpg:"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


@cache
def head_revision() -> str | None:
    """The one head of the revision files, read as text (None when they do not name exactly one)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"):
        found = {match[1]: match[2] or match[3] or None for match in _REVISION_LINE.finditer(path.read_text())}
        revision = found.get("revision")
        if revision is None:
            return None  # a file this reader does not understand: let Alembic decide
        revisions.add(revision)
        parent = found.get("down_revision")
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def stored_revisions(url: str) -> list[str]:
    """The revisions recorded in the database's ``alembic_version`` table ([] for a database never migrated)."""
    db = Db(url)
    await db.connect()
    try:
        async with db.reading() as connection:
            rows = await connection.fetch("SELECT version_num FROM alembic_version")
    except (sqlite3.OperationalError, asyncpg.exceptions.UndefinedTableError):
        return []  # no such table: an empty database
    finally:
        await db.disconnect()
    return sorted(str(row[0]) for row in rows)


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, target: str) -> tuple[str | None, str | None]:
    from alembic import command
    from alembic.config import Config

    before = _current_revision(connection)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, target)
    return before, _current_revision(connection)


async def migrate(url: str, target: str = "head") -> bool:
    """Apply pending migrations (up to ``target``, a revision); returns whether any was applied."""
    wanted = head_revision() if target == "head" else target
    if wanted is not None and await stored_revisions(url) == [wanted]:
        await name_search_indexed(url)
        return False  # up to date: Alembic is never imported
    applied = await _migrate(url, target)
    await name_search_indexed(url)
    return applied


TRIGRAM_INDEX = "ix_videos_name_fold_trgm"
_TRIGRAM_INDEX_SQL = f"CREATE INDEX {TRIGRAM_INDEX} ON videos USING gin (name_fold gin_trgm_ops)"


async def name_search_indexed(url: str) -> bool:
    """Whether name search has its index (on SQLite always: FTS5 is built in); a warning says why not.

    On PostgreSQL without the ``pg_trgm`` index (migration 0006 left it out: the server had no such
    extension) the search stays right but reads every name; the warning, at every start, says how to
    build the index once the extension is there.
    """
    if not url.startswith(("postgresql:", "postgres:")):
        return True
    db = Db(url)
    await db.connect()
    try:
        async with db.reading() as connection:
            row = await connection.fetch_one(
                "SELECT to_regclass('videos') IS NOT NULL, to_regclass(?) IS NOT NULL,"
                " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm')",
                [TRIGRAM_INDEX],
            )
    finally:
        await db.disconnect()
    assert row is not None
    has_videos, indexed, available = (bool(value) for value in row)
    if indexed or not has_videos:
        return True  # an index not migrated yet (below 0006) is not missing
    build = f"CREATE EXTENSION IF NOT EXISTS pg_trgm; {_TRIGRAM_INDEX_SQL}"
    why = (
        "the pg_trgm index is missing (this server had no pg_trgm when the database was migrated)"
        if available
        else "this PostgreSQL has no pg_trgm extension (a contrib module: install it first)"
    )
    logger.warning("name search reads every video's name: %s; to build its index, run in the database: %s", why, build)
    return False


async def _migrate(url: str, target: str) -> bool:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(async_driver_url(url))
    try:
        async with engine.begin() as connection:
            before, after = await connection.run_sync(_upgrade, target)
    finally:
        await engine.dispose()
    if before != after:
        logger.info("database migrated from %s to %s", before or "empty", after)
    return before != after
