"""`databases`' SQLite internals that gql_media/adapters/store/sqlite_backend.py relies on.

When one of these fails after upgrading `databases`, that module (and its pin in pyproject.toml)
must follow the new version: read its docstring.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import databases
import pytest
from databases import Database

from gql_media.adapters.store.db import Db, RawConnection
from gql_media.adapters.store.sqlite_backend import READER_CACHE_KIB, SQLITE_CONNECTION_PRAGMAS, SQLiteDatabase

UPGRADE = (
    f"databases {databases.__version__} changed its SQLite backend: update gql_media/adapters/store/sqlite_backend.py"
)


def _aiosqlite_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()}


async def test_every_connection_databases_opens_gets_the_pragmas(tmp_path: Path) -> None:
    database = SQLiteDatabase(f"sqlite:///{tmp_path / 'index.db'}", timeout=30)
    await database.connect()
    try:
        # The public path: databases' own per-task connection, then the driver's connection.
        async with database.connection() as connection:
            raw = connection.raw_connection
            foreign_keys = await raw.execute_fetchall("PRAGMA foreign_keys")
            synchronous = await raw.execute_fetchall("PRAGMA synchronous")
        assert list(foreign_keys) == [(1,)], UPGRADE
        assert list(synchronous) == [(1,)], UPGRADE  # NORMAL
        async with database.reader() as reader:
            assert list(await reader.execute_fetchall("PRAGMA foreign_keys")) == [(1,)], UPGRADE
            # A reader's page cache is smaller than the writer's (``READER_CACHE_KIB``).
            assert list(await reader.execute_fetchall("PRAGMA cache_size")) == [(-READER_CACHE_KIB,)]
        async with database.write_transaction() as writer:
            assert list(await writer.execute_fetchall("PRAGMA cache_size")) == [(-32000,)]
    finally:
        await database.disconnect()
    assert "PRAGMA foreign_keys = ON" in SQLITE_CONNECTION_PRAGMAS


async def test_disconnect_closes_what_a_cancelled_task_left_open(tmp_path: Path) -> None:
    before = _aiosqlite_threads()
    database = SQLiteDatabase(f"sqlite:///{tmp_path / 'index.db'}", timeout=30)
    await database.connect()
    entered = asyncio.Event()

    async def hold() -> None:
        # As a task cancelled between acquiring and releasing its connection leaves it.
        connection = database.connection()
        await connection.__aenter__()
        entered.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await entered.wait()
    async with database.reader():
        pass
    assert len(_aiosqlite_threads() - before) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await database.disconnect()
    for thread in _aiosqlite_threads() - before:
        thread.join(timeout=10)
    # Left alive, aiosqlite's non-daemon threads would keep the process from exiting.
    assert not _aiosqlite_threads() - before, UPGRADE


async def test_plain_databases_has_no_such_hook(tmp_path: Path) -> None:
    """The reason the module exists: plain `databases` neither applies pragmas nor closes what is left open.

    If this fails, `databases` gained the hooks: drop the module and use them.
    """
    before = _aiosqlite_threads()
    database = Database(f"sqlite:///{tmp_path / 'index.db'}", timeout=30)
    await database.connect()
    connection = database.connection()
    await connection.__aenter__()
    assert list(await connection.raw_connection.execute_fetchall("PRAGMA foreign_keys")) == [(0,)]
    await database.disconnect()
    leftover = _aiosqlite_threads() - before
    assert leftover
    await connection.raw_connection.close()  # what the module does on disconnect
    for thread in leftover:
        thread.join(timeout=10)


async def test_the_store_reads_and_writes_through_it(tmp_path: Path) -> None:
    db = Db(f"sqlite:///{tmp_path / 'index.db'}")
    await db.connect()
    try:
        async with db.writing() as conn:
            await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES t (id))")
            await conn.executemany("INSERT INTO t (id, parent) VALUES (?, ?)", [(1, None), (2, 1)])
            # A read inside the write sees it (the transaction's own connection).
            async with db.reading() as inside:
                assert await inside.fetch("SELECT id FROM t ORDER BY id") == [(1,), (2,)]
        async with db.reading() as conn:
            assert await conn.fetch_one("SELECT count(*) FROM t") == (2,)
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            async with db.writing() as conn:
                await conn.execute("INSERT INTO t (id, parent) VALUES (3, 99)")
    finally:
        await db.disconnect()


async def test_writes_keep_one_connection_and_a_write_that_fails_or_is_cancelled_leaves_nothing(
    tmp_path: Path,
) -> None:
    """The writer's connection is kept between writes (a new one cost more than a one-row write: bench P3).

    Only after a commit: a write that fails or is cancelled closes it, since the error may be the
    connection's own (opened while the database was read-only), which the next write must not inherit.
    """
    before = _aiosqlite_threads()
    db = Db(f"sqlite:///{tmp_path / 'index.db'}")
    await db.connect()
    try:
        async with db.writing() as conn:
            await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            # A connection's own table: the next write sees it only on the same connection.
            await conn.execute("CREATE TEMP TABLE kept (id INTEGER)")
        async with db.writing() as conn:
            await conn.execute("INSERT INTO kept (id) VALUES (1)")
            await conn.execute("INSERT INTO t (id) VALUES (1)")
            assert await conn.fetch("PRAGMA foreign_keys") == [(1,)]

        with pytest.raises(sqlite3.IntegrityError):
            async with db.writing() as conn:
                await conn.execute("INSERT INTO t (id) VALUES (2)")
                await conn.execute("INSERT INTO t (id) VALUES (1)")
        entered = asyncio.Event()

        async def cancelled_write() -> None:
            async with db.writing() as conn:
                await conn.execute("INSERT INTO t (id) VALUES (3)")
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(cancelled_write())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async with db.writing() as conn:  # rolled back both times; a write that failed closed its connection
            assert await conn.fetch("SELECT name FROM sqlite_temp_master WHERE name = 'kept'") == []
            await conn.execute("INSERT INTO t (id) VALUES (4)")
        async with db.reading() as conn:
            assert await conn.fetch("SELECT id FROM t ORDER BY id") == [(1,), (4,)]
    finally:
        await db.disconnect()
    left = {t for t in _aiosqlite_threads() - before if not t.name.startswith("asyncio_")}  # not the loop's pool
    for thread in left:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in left), "the kept writer was not closed on disconnect"


async def test_readers_stay_bounded_under_many_concurrent_reads(tmp_path: Path) -> None:
    """No more reader connections (nor their threads) than ``readers``, however many reads wait at once.

    Past the bound a read waits for a free reader; before, each opened one more connection (a thread,
    its pragmas, a cold page cache) and closed it after: under the soak's load the server's threads
    swung between 16 and 34 and its RSS kept the memory they churned through.
    """
    before = _aiosqlite_threads()
    database = SQLiteDatabase(f"sqlite:///{tmp_path / 'index.db'}", readers=2, timeout=30)
    await database.connect()
    inside = 0
    most_inside = 0
    release = asyncio.Event()
    two_inside = asyncio.Event()
    opened: set[int] = set()

    async def read(n: int) -> int:
        nonlocal inside, most_inside
        async with database.reader() as connection:
            inside += 1
            most_inside = max(most_inside, inside)
            opened.add(id(connection))
            if inside == 2:
                two_inside.set()
            await release.wait()
            rows = list(await connection.execute_fetchall("SELECT ?", (n,)))
            inside -= 1
        return int(rows[0][0])

    try:
        tasks = [asyncio.create_task(read(n)) for n in range(20)]
        await two_inside.wait()
        for _ in range(10):  # the other 18 had every chance to open a connection of their own
            await asyncio.sleep(0)
        assert inside == 2
        assert len(_aiosqlite_threads() - before) == 2
        release.set()
        assert sorted(await asyncio.gather(*tasks)) == list(range(20))
        assert most_inside == 2
        assert len(opened) == 2  # the two were kept and served the 18 that waited
    finally:
        await database.disconnect()
    for thread in _aiosqlite_threads() - before:
        thread.join(timeout=10)
    assert not _aiosqlite_threads() - before


async def test_a_read_or_write_that_ends_across_a_disconnect_leaves_no_closed_connection(tmp_path: Path) -> None:
    """A disconnect closes the connections in use too; a read or write that ends after it keeps none of them.

    Kept, the next read or write after a connect again got it and failed ("Connection closed"): a test
    that reconnects (new pragmas) while the services' start-up check of the folder totals read.
    """
    db = Db(f"sqlite:///{tmp_path / 'index.db'}")
    await db.connect()
    try:
        async with db.writing() as conn:
            await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        inside = asyncio.Event()
        leave = asyncio.Event()

        async def hold(opened: AbstractAsyncContextManager[RawConnection], sql: str) -> None:
            """Run ``sql`` on the connection ``opened`` gives, and keep it until ``leave`` is set."""
            async with opened as conn:
                await conn.execute(sql)
                inside.set()
                await leave.wait()

        reading = asyncio.create_task(hold(db.reading(), "SELECT id FROM t"))
        await inside.wait()
        await db.disconnect()  # closes the reader the task holds
        await db.connect()
        leave.set()
        await reading  # ends after the connect: its reader is closed, not kept
        async with db.reading() as conn:
            assert await conn.fetch("SELECT count(*) FROM t") == [(0,)]

        inside.clear()
        leave.clear()

        writing = asyncio.create_task(hold(db.writing(), "INSERT INTO t (id) VALUES (1)"))
        await inside.wait()
        leave.set()
        await asyncio.sleep(0)  # the write's COMMIT is sent: the disconnect's close of its connection comes after
        await db.disconnect()
        await writing  # its COMMIT ended while the disconnect closed its connection: not kept
        await db.connect()
        async with db.writing() as conn:
            await conn.execute("INSERT INTO t (id) VALUES (2)")
        async with db.reading() as conn:
            assert await conn.fetch("SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    finally:
        await db.disconnect()


def test_a_database_needs_a_reader() -> None:
    with pytest.raises(ValueError, match="at least one reader"):
        SQLiteDatabase("sqlite:///unused.db", readers=0)
