"""Brings the database schema up to date with Alembic at start-up; a second run is a no-op.

A database already at the head revision is the common case (every restart), and Alembic with
SQLAlchemy's asyncio engine and ORM behind it is a quarter of the server's imports (0.24 s of
1.2 s on a quiet machine, twice that loaded). So the stored revision is read first with plain
SQL through ``Db``, and the head is read from the revision files' own ``revision`` and
``down_revision`` lines; only a database behind (or ahead, or unreadable) goes through Alembic,
which then decides exactly as before.
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
        return False  # up to date: Alembic is never imported
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
