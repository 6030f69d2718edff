"""A write cancelled at any point of its transaction gives its connection back (both backends)."""

from __future__ import annotations

import asyncio

from gql_media.adapters.store.db import Db


async def test_a_write_cancelled_anywhere_gives_its_connection_back(database_url: str) -> None:
    """Cancelled after 0, 1, 2, ... turns of the loop: in its connection's acquire, its BEGIN, its
    statement, its COMMIT. On PostgreSQL one cancelled in its BEGIN kept its pooled connection (the job
    runner's stop cancels the job id it took ahead), and the pool's close at shutdown waited for it
    forever: the disconnect at the end returns only when every connection came back."""
    db = Db(database_url)
    await db.connect()
    try:
        async with db.writing() as conn:
            await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        cancelled = written = 0
        for turns in range(40):

            async def write(n: int) -> None:
                async with db.writing() as conn:
                    await conn.execute("INSERT INTO t (id) VALUES (?)", (n,))

            task = asyncio.create_task(write(turns))
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                written += 1
            except asyncio.CancelledError:
                cancelled += 1
        assert cancelled > 0
        async with db.writing() as conn:  # the write lock and a connection are free
            await conn.execute("INSERT INTO t (id) VALUES (-1)")
            rows = await conn.fetch("SELECT count(*) FROM t")
        # A write cancelled in its COMMIT may have committed: at least those that returned are there.
        assert written + 1 <= int(rows[0][0]) <= 40 + 1
    finally:
        await db.disconnect()
