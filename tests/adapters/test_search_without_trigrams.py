"""Name search on a PostgreSQL without ``pg_trgm`` (the embedded ``pgserver`` wheel ships no contrib module).

Migration 0006 leaves the trigram index out there; the search must still find exactly what a plain
``LIKE`` finds (it reads every name), and every start must say so with a warning that tells how to
build the index. Runs on the embedded server whatever the session's PostgreSQL is (the machine's
may have the extension).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import random
from collections.abc import Iterator

import asyncpg
import pytest

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.index import IndexStore
from gql_media.adapters.store.migrate import TRIGRAM_INDEX, migrate, name_search_indexed
from gql_media.adapters.store.reads import LibraryReads, VideoQuery, VideoSort
from tests.adapters.test_scale_reads import _fill
from tests.postgres import EmbeddedPostgres, requested_mode
from tests.postgres import database_url as url_of

pytestmark = pytest.mark.skipif(requested_mode() == "off", reason="GQL_MEDIA_TEST_POSTGRES=0")


@pytest.fixture(scope="module")
def server_without_trigrams() -> Iterator[EmbeddedPostgres]:
    if importlib.util.find_spec("pgserver") is None:
        pytest.skip("no pgserver wheel here (`make venv` installs it)")
    server = EmbeddedPostgres()
    server.start()
    try:
        available = asyncio.run(_fetch(server.admin_url, "SELECT name FROM pg_available_extensions ORDER BY name"))
        if "pg_trgm" in available:
            pytest.skip("this pgserver wheel ships pg_trgm: the search is indexed there")
        yield server
    finally:
        server.stop()


async def _fetch(url: str, sql: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [str(row[0]) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


async def test_search_without_the_extension_is_a_plain_like_and_every_start_says_so(
    server_without_trigrams: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    admin = server_without_trigrams.admin_url
    await _fetch(admin, "CREATE DATABASE no_trigrams TEMPLATE template0 ENCODING 'UTF8'")
    url = url_of(admin, "no_trigrams")
    with caplog.at_level(logging.WARNING):
        await migrate(url)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no pg_trgm extension: name search stays a scan" in w for w in warnings)  # the migration's
    assert any("has no pg_trgm extension" in w and "CREATE INDEX" in w for w in warnings)  # the start's
    assert await _fetch(url, f"SELECT indexname FROM pg_indexes WHERE indexname = '{TRIGRAM_INDEX}'") == []
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert await migrate(url) is False  # a restart: nothing to migrate, and the same warning
    assert [r.getMessage() for r in caplog.records if "has no pg_trgm extension" in r.getMessage()]
    assert await name_search_indexed(url) is False

    db = Db(url)
    await db.connect()
    try:
        rng = random.Random(3)
        await _fill(IndexStore(db), rng, videos=300, folders=5)
        reads = LibraryReads(db)
        async with db.reading() as conn:
            names = [str(r[0]) for r in await conn.fetch("SELECT name FROM videos")]
        for text in ["mp4", ".MKV", "Üü", "%", "a"] + [rng.choice(names)[1:5] for _ in range(10)]:
            expected = {i for i, name in enumerate(names) if text.casefold() in name.casefold()}
            page = await reads.video_page(VideoQuery(name_contains=text), VideoSort(), None, 1000)
            assert sorted(row.name for row in page.rows) == sorted(names[i] for i in expected), text
    finally:
        await db.disconnect()


async def test_a_server_with_the_index_says_nothing(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The session's own backends: SQLite (FTS5), and a PostgreSQL with pg_trgm when it has it."""
    with caplog.at_level(logging.WARNING):
        await migrate(database_url)
    indexed = await name_search_indexed(database_url)
    if database_url.startswith("sqlite"):
        assert indexed
    assert indexed == (not any("name search reads every" in r.getMessage() for r in caplog.records))
