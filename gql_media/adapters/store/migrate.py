"""Brings the database schema up to date with Alembic at start-up; a second run is a no-op."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


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


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, target: str) -> tuple[str | None, str | None]:
    before = _current_revision(connection)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, target)
    return before, _current_revision(connection)


async def migrate(url: str, target: str = "head") -> bool:
    """Apply pending migrations (up to ``target``, a revision); returns whether any was applied."""
    engine = create_async_engine(async_driver_url(url))
    try:
        async with engine.begin() as connection:
            before, after = await connection.run_sync(_upgrade, target)
    finally:
        await engine.dispose()
    if before != after:
        logger.info("database migrated from %s to %s", before or "empty", after)
    return before != after
