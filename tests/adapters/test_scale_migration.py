"""Migrations 0006 to 0010 on an index of 100k videos: totals, search and keyset indexes built, the
tables keyed by SQLite's rowid, the videos placed by folder and name (their paths kept), progress logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.migrate import TRIGRAM_INDEX, migrate
from gql_media.adapters.store.reads import LibraryReads, VideoQuery, VideoSort

VIDEOS = 100_000
# What 0006 leaves (index: its columns): every order ends in the id, and the folders' depth-first
# keys (the videos' went in 0009).
KEYSET_INDEXES = {
    "ix_videos_size": "(size, id)",
    "ix_videos_mtime": "(mtime_ns, id)",
    "ix_videos_name": "(name, id)",
    "ix_videos_status": "(status, name, id)",
    "ix_videos_folder_name": "UNIQUE INDEX ix_videos_folder_name ON",  # (folder_id, name) since 0010
    "ix_folders_parent_name": "(parent_id, name, id)",
    "ix_videos_duration_key": ", id)",
    "ix_folders_depth_first": "(root_id, ",
}
GROUPS = 20
FOLDERS_PER_GROUP = 100


@pytest.fixture
async def old_index(database_url: str) -> AsyncIterator[Db]:
    """An index at revision 0005 (before issue 18) holding 100k videos in 2,000 folders of 20 groups."""
    db = Db(database_url)
    await db.connect()
    await migrate(database_url, target="0005")
    folders = [(1, 1, None, "", "library")]
    for group in range(GROUPS):
        group_id = 2 + group
        folders.append((group_id, 1, 1, f"g{group:02d}", f"g{group:02d}"))
        for leaf in range(FOLDERS_PER_GROUP):
            number = group * FOLDERS_PER_GROUP + leaf
            folders.append((1000 + number, 1, group_id, f"g{group:02d}/d{number:04d}", f"d{number:04d}"))
    leaves = [f for f in folders if f[0] >= 1000]
    async with db.writing() as conn:
        await conn.execute("INSERT INTO roots (id, path, created_at) VALUES (1, '/library', 0)")
        await conn.executemany(
            "INSERT INTO folders (id, root_id, parent_id, path, name, created_at) VALUES (?, ?, ?, ?, ?, 0)", folders
        )
        rows = []
        for number in range(VIDEOS):
            folder = leaves[number % len(leaves)]
            name = f"Clip {number:06d} ünïcode\ufffd.mp4"
            rows.append((number + 1, folder[0], f"{folder[3]}/{name}", name, name.casefold(), number % 1000))
        await conn.executemany(
            "INSERT INTO videos (id, root_id, folder_id, path, name, name_fold, size, mtime_ns, created_at)"
            " VALUES (?, 1, ?, ?, ?, ?, ?, 0, 0)",
            rows,
        )
    try:
        yield db
    finally:
        await db.disconnect()


async def test_migration_builds_totals_and_indexes_and_logs_progress(
    old_index: Db, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gql_media.migrations"):
        assert await migrate(database_url) is True
    progress = [r.getMessage() for r in caplog.records if r.name == "gql_media.migrations"]
    assert any("folder totals: 2021 of 2021 folders" in m for m in progress), progress
    assert any("name-search index" in m for m in progress)
    assert any("keyset and depth-first indexes built" in m for m in progress)

    reads = LibraryReads(old_index)
    per_leaf = VIDEOS // (GROUPS * FOLDERS_PER_GROUP)
    size_of_leaf = {1000 + n: sum(v % 1000 for v in range(n, VIDEOS, GROUPS * FOLDERS_PER_GROUP)) for n in range(2000)}
    direct = await reads.folder_stats([1, 2, 1000, 1999], recursive=False)
    assert [(s.video_count, s.total_size) for s in direct.values()] == [
        (0, 0),
        (0, 0),
        (per_leaf, size_of_leaf[1000]),
        (per_leaf, size_of_leaf[2999 - 1000]),
    ]
    tree = await reads.folder_stats([1, 2, 1000], recursive=True)
    assert (tree[1].video_count, tree[1].total_size) == (VIDEOS, sum(n % 1000 for n in range(VIDEOS)))
    group_leaves = range(1000, 1000 + FOLDERS_PER_GROUP)
    assert (tree[2].video_count, tree[2].total_size) == (
        per_leaf * FOLDERS_PER_GROUP,
        sum(size_of_leaf[f] for f in group_leaves),
    )
    # The search index holds the old rows (the query is long enough to go through it).
    found = await reads.video_page(VideoQuery(name_contains="CLIP 01234"), VideoSort(), None, 100)
    assert [row.id for row in found.rows] == [n + 1 for n in range(12340, 12350)]
    # Each video's path, made from its folder's since 0010, is the one it had.
    leaves = [1000 + n for n in range(GROUPS * FOLDERS_PER_GROUP)]
    for row in found.rows:
        number = row.id - 1
        leaf = leaves[number % len(leaves)] - 1000
        folder = f"g{leaf // FOLDERS_PER_GROUP:02d}/d{leaf:04d}"
        assert (row.path, row.folder_id) == (f"{folder}/Clip {number:06d} ünïcode\ufffd.mp4", 1000 + leaf)
    if old_index.dialect == "sqlite":
        # 0007 made the search table again without its token counts, and it matches the videos.
        assert any("name-search table rebuilt" in m for m in progress)
        async with old_index.writing() as conn:
            sql = await conn.fetch_one("SELECT sql FROM sqlite_master WHERE name = 'videos_search'")
            assert sql is not None and "columnsize=0" in str(sql[0])
            # 0009: the ids are the rowids (no index for the primary key), every row and reference kept.
            assert any("migration 0009: videos: 100000 rows copied" in m for m in progress), progress
            for table in ("folders", "videos"):
                sql = await conn.fetch_one("SELECT sql FROM sqlite_master WHERE name = ?", [table])
                assert sql is not None and "id INTEGER NOT NULL" in str(sql[0]), sql
            autoindexes = await conn.fetch(
                "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_%'"
                " AND tbl_name IN ('folders', 'videos')"
            )  # the folders' unique (root_id, path); no primary key's, no videos' (root_id, path) (0010)
            assert sorted(str(r[0]) for r in autoindexes) == ["sqlite_autoindex_folders_1"]
            assert any("migration 0010: videos: 100000 rows copied" in m for m in progress), progress
            assert await conn.fetch("PRAGMA foreign_key_check") == []
            assert await conn.fetch_one("SELECT COUNT(*) FROM videos WHERE rowid = id") == (VIDEOS,)
            await conn.execute("INSERT INTO videos_search (videos_search, rank) VALUES ('integrity-check', 1)")
    # The indexes themselves, as the database holds them.
    async with old_index.reading() as conn:
        if old_index.dialect == "sqlite":
            rows = await conn.fetch("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        else:
            rows = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
        has_trigrams = old_index.dialect == "postgresql" and bool(
            (await conn.fetch_one("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'") or [0])[0]
        )
    definitions = {str(r[0]): " ".join(str(r[1]).split()) for r in rows}
    for name, columns in KEYSET_INDEXES.items():
        assert columns in definitions.get(name, ""), (name, definitions.get(name))
    assert "ix_videos_duration" not in definitions
    assert "ix_videos_depth_first" not in definitions
    if has_trigrams:
        assert "gin_trgm_ops" in definitions[TRIGRAM_INDEX]
    assert await migrate(database_url) is False
