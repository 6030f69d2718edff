"""Name search on a random corpus of real files, named by random bytes (issue 18's first test).

The names are made of ASCII, non-ASCII UTF-8 (case pairs whose folding changes length: ß/ẞ, İ/ı)
and bytes that are not UTF-8 at all (a lone ``\\xff``, a cut multi-byte sequence, an encoded
surrogate), written to disk as such, indexed by the real scanner and sync (which gives a non-UTF-8
name its valid-Unicode form, ``\\ufffd`` for each bad byte), then searched. Every search equals the
plain ``LIKE`` over the folded names and Python's own ``casefold`` substring test, on both backends:

- SQLite: through the FTS5 trigram table (and the dense path, which walks the order with ``LIKE``);
- PostgreSQL: through the ``pg_trgm`` GIN index, forced (sequential scans off in the database, and
  the plan checked), while the plain ``LIKE`` it is compared with runs with every index scan off.
  A server without the extension (the embedded test server) has no index to test: skipped, saying so.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from gql_media.adapters.store import reads as reads_module
from gql_media.adapters.store.db import Db
from gql_media.adapters.store.migrate import TRIGRAM_INDEX
from gql_media.adapters.store.reads import LibraryReads, VideoQuery, VideoSort
from gql_media.core.scanner import is_video_name
from gql_media.services import Services
from tests.conftest import run_sync

# Pieces of a name, as bytes: ASCII (LIKE's own wildcards and escape included), UTF-8 of letters
# whose case folding is not one to one, and byte sequences that are not UTF-8.
PIECES = [
    b"a", b"b", b"c", b"x", b"Z", b"A", b" ", b"-", b".", b"%", b"_", b"\\", b"'", b'"', b"0", b"1", b"7",
    *(text.encode() for text in ("Ü", "ü", "ß", "ẞ", "é", "É", "日本", "語", "İ", "ı", "ﬁ", "Σ", "ς")),
    b"\xff", b"\xfe", b"\xe9", b"\xc3", b"\xe6\x97", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\x80\x80",
]  # fmt: skip
QUERY_PIECES = ["a", "b", "x", "Z", " ", ".", "%", "_", "\\", "'", "ü", "SS", "ß", "ẞ", "É", "日本", "İ", "ı", "fi",
                "Σ", "ς", "\ufffd", "\ufffd\ufffd", "1", "7", "mp4"]  # fmt: skip
VIDEOS = 400


def _name(rng: random.Random, number: int) -> bytes:
    stem = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))
    return stem + str(number).encode() + rng.choice([b".mp4", b".MKV", b".webm"])


def _write_corpus(library: Path, rng: random.Random) -> tuple[int, int]:
    """``VIDEOS`` files in a few folders (some named by bad bytes too): how many of them the index
    takes (not the dotfiles) and how many of those are named by bytes that are not UTF-8."""
    root = os.fsencode(library)
    folders = [b"plain", b"caf\xe9", b"\xff\xfe", "Überordner".encode(), b"deep/\xc3er"]
    for folder in folders:
        os.makedirs(root + b"/" + folder)
    videos = not_utf8 = 0
    for number in range(VIDEOS):
        name = _name(rng, number)
        if is_video_name(os.fsdecode(name)):
            videos += 1
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                not_utf8 += 1
        with open(root + b"/" + rng.choice(folders) + b"/" + name, "wb") as handle:
            handle.write(b"v")
    return videos, not_utf8


async def _forced_index_db(database_url: str) -> Db:
    """A ``Db`` whose PostgreSQL connections plan no sequential scan: the search must use its index."""
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET enable_seqscan = off')
    finally:
        await admin.close()
    db = Db(database_url)
    await db.connect()
    return db


async def _plain_like_ids(database_url: str, db: Db, pattern: str) -> set[int]:
    """The ids whose folded name is ``LIKE`` the pattern, read without any index."""
    if db.dialect == "sqlite":
        async with db.reading() as conn:
            rows = await conn.fetch("SELECT id FROM videos WHERE name_fold LIKE ? ESCAPE '\\'", [pattern])
        return {int(r[0]) for r in rows}
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_seqscan = on")
        rows = await connection.fetch("SELECT id FROM videos WHERE name_fold LIKE $1 ESCAPE '\\'", pattern)
        return {int(r[0]) for r in rows}
    finally:
        await connection.close()


async def _postgres_search_uses_the_index(db: Db, pattern: str) -> bool:
    async with db.reading() as conn:
        plan = await conn.fetch("EXPLAIN SELECT id FROM videos WHERE name_fold LIKE ? ESCAPE '\\'", [pattern])
    return any(TRIGRAM_INDEX in str(r[0]) for r in plan)


@pytest.mark.parametrize("dense_rows", [reads_module.SEARCH_DENSE_ROWS, 5])
async def test_search_equals_plain_like_on_real_files_named_by_random_bytes(
    services: Services, library: Path, database_url: str, dense_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads_module, "SEARCH_DENSE_ROWS", dense_rows)
    rng = random.Random(1818)
    videos, not_utf8 = _write_corpus(library, rng)
    await run_sync(services, library)
    db = services.db
    if db.dialect == "postgresql":
        async with db.reading() as conn:
            row = await conn.fetch_one("SELECT to_regclass(?) IS NOT NULL", [TRIGRAM_INDEX])
        if not (row is not None and row[0]):
            pytest.skip("this PostgreSQL has no pg_trgm extension: its search is the plain LIKE itself")
        db = await _forced_index_db(database_url)
    try:
        async with db.reading() as conn:
            named = {int(r[0]): str(r[1]) for r in await conn.fetch("SELECT id, name FROM videos")}
        assert len(named) == videos > VIDEOS * 9 // 10
        # The corpus holds what it says: names from bytes that are not UTF-8, shown with U+FFFD.
        assert not_utf8 > videos // 4
        assert sum("\ufffd" in name for name in named.values()) == not_utf8
        reads = LibraryReads(db)
        names = list(named.values())
        queries = ["ss", "SS", "ẞ", "\ufffd", "%", "_", "\\", "ı", "İ", "ﬁ", "fi", "σ", "ς", "日本", ".mkv", "mp4"]
        queries += [name[start : start + size] for name in rng.sample(names, 40) for start, size in ((0, 3), (2, 5))]
        queries += ["".join(rng.choice(QUERY_PIECES) for _ in range(rng.randint(1, 4))) for _ in range(60)]
        indexed_on_postgres = 0
        for text in dict.fromkeys(q for q in queries if q):
            pattern = reads_module._like_pattern(text)
            plain = await _plain_like_ids(database_url, db, pattern)
            # The plain LIKE is right: Python's own folded substring test finds the same.
            assert plain == {i for i, name in named.items() if text.casefold() in name.casefold()}, text
            page = await reads.video_page(VideoQuery(name_contains=text), VideoSort(), None, VIDEOS + 1)
            assert {row.id for row in page.rows} == plain, text
            assert not page.has_next
            assert await reads.count_videos(VideoQuery(name_contains=text)) == len(plain), text
            if db.dialect == "postgresql" and len(text.casefold()) >= reads_module.SEARCH_INDEX_MIN_CHARS:
                indexed_on_postgres += await _postgres_search_uses_the_index(db, pattern)
        if db.dialect == "postgresql":
            assert indexed_on_postgres > 50  # the comparisons above went through the GIN index
    finally:
        if db is not services.db:
            await db.disconnect()
