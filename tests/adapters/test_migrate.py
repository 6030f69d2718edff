"""The start-up's schema check: the revision read with plain SQL, Alembic only for a database behind its head."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from gql_media.adapters.store.migrate import MIGRATIONS_DIR, head_revision, migrate, stored_revisions


def test_the_head_read_from_the_files_is_alembics() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


async def test_a_database_is_migrated_once_then_found_at_head(database_url: str) -> None:
    assert await stored_revisions(database_url) == []
    assert await migrate(database_url) is True
    assert await stored_revisions(database_url) == [head_revision()]
    assert await migrate(database_url) is False


async def test_a_database_behind_its_head_is_migrated(database_url: str) -> None:
    assert await migrate(database_url, target="0006") is True
    assert await stored_revisions(database_url) == ["0006"]
    assert await migrate(database_url, target="0006") is False
    assert await migrate(database_url) is True
    assert await stored_revisions(database_url) == [head_revision()]
