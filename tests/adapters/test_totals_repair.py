"""Folder totals written behind the store's back are counted again (adapters/store/recount.py).

The scale bench gives a scanned index its probed sizes with a plain UPDATE; without a check the
next sync, setting the sizes back to the disk's, took every folder's totals below zero.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gql_media.adapters.store.recount import _check_sql, repair_totals
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import run_sync, write
from tests.video_sql import VIDEOS


def _tree(library: Path) -> None:
    for name in ("a/one.mp4", "a/two.mp4", "a/deep/three.mkv", "b/four.webm", "five.mp4"):
        write(library / name, b"12345")


async def _totals(services: Services) -> dict[str, tuple[int, int, int, int]]:
    async with services.db.reading() as conn:
        rows = await conn.fetch("SELECT path, video_count, total_size, tree_video_count, tree_total_size FROM folders")
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


async def _change_sizes_behind_the_store(services: Services) -> None:
    async with services.db.writing() as conn:
        await conn.execute("UPDATE videos SET size = size * 1000 + id")


async def test_totals_changed_behind_the_store_are_counted_again(services: Services, library: Path) -> None:
    _tree(library)
    await run_sync(services, library)
    assert await repair_totals(services.db) is False  # kept by the store: nothing to do
    kept = await _totals(services)
    assert kept[""] == (1, 5, 5, 25) and kept["a"] == (2, 10, 3, 15)
    await _change_sizes_behind_the_store(services)
    assert await repair_totals(services.db) is True
    async with services.db.reading() as conn:
        sizes = {str(r[0]): int(r[1]) for r in await conn.fetch(f"SELECT path, size FROM {VIDEOS}")}
    recounted = await _totals(services)
    assert recounted[""][3] == sum(sizes.values())
    direct_a = sizes["a/one.mp4"] + sizes["a/two.mp4"]
    assert recounted["a"] == (2, direct_a, 3, direct_a + sizes["a/deep/three.mkv"])
    assert await repair_totals(services.db) is False
    # The next sync sets the sizes back to the disk's: the totals follow, none below zero.
    await run_sync(services, library)
    assert await _totals(services) == kept


async def test_a_writer_starting_repairs_the_totals_beside_start_up(settings: Settings, library: Path) -> None:
    _tree(library)
    async with open_services(settings, media=False) as services:
        await run_sync(services, library)
        kept = await _totals(services)
        await _change_sizes_behind_the_store(services)
    async with open_services(settings, media=False) as services:
        # The check holds the one write lock from its first step: this waits for it.
        async with services.db.writing():
            pass
        await run_sync(services, library)
        assert await _totals(services) == kept


def test_the_check_sums_every_root_in_one_scan_without_a_sorter() -> None:
    """The check's sums per root: one pass over the videos, no GROUP BY. Grouped by root_id (which no
    index leads with since migration 0010), SQLite sorted every video in memory: +45 MB of the server's
    RSS at start-up with a million videos (bench --scale 1000000)."""
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE videos (id INTEGER PRIMARY KEY, root_id BIGINT, size BIGINT)")
        db.executemany("INSERT INTO videos VALUES (?, ?, ?)", [(i, 1 + i % 3, i) for i in range(1, 100)])
        sql = _check_sql([1, 2, 3])
        plan = " | ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert plan == "SCAN videos", plan
        row = db.execute(sql).fetchone()
        assert row == tuple(
            value
            for root in (1, 2, 3)
            for value in (
                sum(1 for i in range(1, 100) if 1 + i % 3 == root),
                sum(i for i in range(1, 100) if 1 + i % 3 == root),
            )
        )
