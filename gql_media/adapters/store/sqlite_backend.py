"""The one module that reaches inside `databases`' SQLite backend: why, and what guards it.

`databases` has no public hook for three things the SQLite index needs:

- PRAGMAs on every connection (foreign keys, synchronous, ...): it opens a new aiosqlite
  connection for each task and has no on-connect callback;
- closing connections on disconnect: it never closes SQLite connections, and one that a
  cancelled task left open keeps aiosqlite's (non-daemon) thread alive, so the process cannot exit;
- reader connections, at most a few, kept idle for the next read, in any task: a new one costs a
  thread and its pragmas (about 1.7 ms of CPU) per read of a request or a DataLoader batch;
- the writer's connection kept between write transactions (``write_transaction``), for the same
  reason: a one-file sync writes 7 times (its job row 4 of them).

So ``SQLiteDatabase`` picks its own backend through ``Database.SUPPORTED_BACKENDS`` (and finds
it again as ``Database._backend``), and that backend swaps ``SQLiteBackend._pool`` for a pool
that applies the pragmas and remembers every connection it opened, built from the backend's
``_database_url`` and ``_options``. Those names are private in `databases` 0.9, hence the upper
pin in pyproject.toml; and
``tests/adapters/test_sqlite_backend.py`` fails, naming this module, when an upgrade moves them.
Everything else (connections, transactions, the driver's own connection for bulk work) goes
through `databases`' public surface (``gql_media.adapters.store.db``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from databases import Database, DatabaseURL
from databases.backends.sqlite import SQLiteBackend, SQLitePool

__all__ = ["SQLITE_CONNECTION_PRAGMAS", "SQLiteDatabase"]

logger = logging.getLogger(__name__)

# What the WAL file is cut back to when the writer starts it again from its beginning (the first
# commit after a checkpoint that copied all of it). Without a limit SQLite keeps the file at its
# largest until the last connection closes: a first index of 1M files (a reader checkpointing
# during the bulk load, the writer never finding it all copied) left a WAL of 223 MB for the
# server's whole life. 16 MB is four times what the writer's own checkpoints (every 1,000 pages)
# let it grow to.
WAL_SIZE_LIMIT_BYTES = 16 * 2**20
# A reader's page cache (the writer keeps ``SQLITE_CONNECTION_PRAGMAS``' 32 MB). Reads are short
# statements on indexes, and a page a reader does not hold comes from the OS's cache of the file;
# with 16 KiB pages (``db.SQLITE_PAGE_BYTES``) four readers' caches of 32 MB filled within the
# start-up sync of a million files, and the server's peak RSS went from 243 to 316 MB (goal 300).
# At 8 MB each: 251 MB, and every query of bench P15 as fast (the slowest 8.2 ms either way).
READER_CACHE_KIB = 8000

SQLITE_CONNECTION_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -32000",
    f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}",
)


class _PragmaPool(SQLitePool):
    """Applies the pragmas to every connection it opens, and closes them all at the end."""

    def __init__(self, url: DatabaseURL, **options: Any) -> None:
        super().__init__(url, **options)
        self.open: set[aiosqlite.Connection] = set()

    async def acquire(self) -> aiosqlite.Connection:
        connection = await super().acquire()
        self.open.add(connection)
        try:
            for pragma in SQLITE_CONNECTION_PRAGMAS:
                await connection.execute(pragma)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: aiosqlite.Connection) -> None:
        if connection not in self.open:
            return  # ``close_all`` took it (a disconnect): closing it twice at once never ends
        self.open.discard(connection)
        await super().release(connection)

    async def close_all(self) -> None:
        while self.open:
            connection = self.open.pop()
            try:
                await connection.close()
            except Exception:  # already broken: its thread is gone either way
                logger.debug("closing a leftover SQLite connection failed", exc_info=True)


class _PragmaBackend(SQLiteBackend):
    def __init__(self, database_url: DatabaseURL | str, **options: Any) -> None:
        super().__init__(database_url, **options)
        self.pragma_pool = _PragmaPool(self._database_url, **self._options)
        self._pool = self.pragma_pool

    async def disconnect(self) -> None:
        await super().disconnect()
        await self.pragma_pool.close_all()


class SQLiteDatabase(Database):
    """`databases.Database` on SQLite: the pragmas on every connection, a few readers, all closed on disconnect.

    Args:
        url: an ``sqlite:///`` URL (options go in ``options``: in the URL they become part of the file name).
        readers: most reader connections open at once (kept open between reads); a read past them
            waits for one to be free.
        options: aiosqlite's (``timeout=``).
    """

    # Database declares it a plain dict attribute; here too, or mypy refuses the override.
    SUPPORTED_BACKENDS = {**Database.SUPPORTED_BACKENDS, "sqlite": f"{__name__}:_PragmaBackend"}  # noqa: RUF012

    def __init__(self, url: str, *, readers: int = 4, **options: Any) -> None:
        super().__init__(url, **options)
        backend = self._backend
        if not isinstance(backend, _PragmaBackend):
            raise RuntimeError(f"databases did not pick the SQLite backend of {__name__}: see its docstring")
        self._pragma_pool = backend.pragma_pool
        if readers < 1:
            raise ValueError("an SQLite database needs at least one reader connection")
        self._idle_readers: list[aiosqlite.Connection] = []
        self.readers = readers
        self._reader_slots = asyncio.Semaphore(readers)
        self._idle_writer: aiosqlite.Connection | None = None
        self._file = self.url.database

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection for reads, taken from the idle ones (or opened) and kept for the next read.

        At most ``readers`` are open: a read past them waits for one, rather than opening (and, at
        its end, closing) one more. Under load (the soak's 20 query clients and 50 subscribers) the
        extra ones came and went many times a second (the server's threads swung between 16 and 34,
        now a flat 16), each paying its thread, pragmas, schema and a cold page cache. More than a
        few at once buys no throughput on a 2-core machine: reads are short statements, and the
        event loop and the GIL are shared.

        SQLite connections are in autocommit mode, so no transaction outlives a statement; one that
        failed or was cancelled mid-read is closed rather than kept.
        """
        async with self._reader_slots:
            connection = self._idle_readers.pop() if self._idle_readers else await self._new_reader()
            reusable = False
            try:
                yield connection
                reusable = True
            finally:
                if reusable and self._keeps(connection):
                    self._idle_readers.append(connection)
                else:
                    await self._pragma_pool.release(connection)

    async def _new_reader(self) -> aiosqlite.Connection:
        connection = await self._pragma_pool.acquire()
        try:
            await connection.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
        except BaseException:
            await self._pragma_pool.release(connection)
            raise
        return connection

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection inside one transaction (BEGIN; COMMIT, or ROLLBACK on an error), kept for the next.

        The caller holds the process's write lock, so one idle connection serves every write. A new
        one per transaction (`databases`' way) cost a thread, its pragmas and a cold page cache: a
        one-row write took 1.1 ms of CPU, 0.25 ms on a kept connection (bench P3's one-file sync
        makes 7). Only a connection whose transaction committed is kept; after an error it is closed.

        A kept connection writes through the file it opened, so it would not see the database
        become read-only by its path (a read-only mount, a permission change); the kept one is
        therefore reused only while the path is still writable, else a new one is opened and
        SQLite says why it cannot write, as it did when every transaction had its own connection.
        """
        connection = self._idle_writer
        self._idle_writer = None
        if connection is not None and not self._path_writable():
            await self._pragma_pool.release(connection)
            connection = None
        if connection is None:
            connection = await self._pragma_pool.acquire()
        clean = False
        try:
            await connection.execute("BEGIN")
            try:
                yield connection
            except BaseException:
                # Rolled back or not, the connection is closed below: the error may be the
                # connection's own (opened read-only, its file gone), which the next one must not inherit.
                try:
                    await connection.execute("ROLLBACK")
                except Exception:  # a broken connection: the block's own error goes on
                    logger.debug("rolling back a write transaction failed", exc_info=True)
                raise
            await connection.execute("COMMIT")
            clean = True
        finally:
            if clean and self._idle_writer is None and self._keeps(connection):
                self._idle_writer = connection
            else:
                await self._pragma_pool.release(connection)

    def _keeps(self, connection: aiosqlite.Connection) -> bool:
        """Whether a connection handed out may be kept for the next read or write: only one the pool
        still holds open. A disconnect closes every connection, those in use too (``close_all``); a
        read or write that ends after it (during it, or after a connect again) must not keep its
        closed connection, where the next read or write would find it ("Connection closed")."""
        return self.is_connected and connection in self._pragma_pool.open

    def _path_writable(self) -> bool:
        # One access(2) call (microseconds) per write transaction; an in-memory database has no path.
        if not self._file or self._file == ":memory:" or self._file.startswith("file:"):
            return True
        return os.access(self._file, os.W_OK)

    async def connect(self) -> None:
        # A semaphore belongs to the event loop it first waited in: a new one for each connect.
        self._reader_slots = asyncio.Semaphore(self.readers)
        await super().connect()

    async def disconnect(self) -> None:
        self._idle_readers.clear()  # closed with every other connection the pool opened
        self._idle_writer = None
        await super().disconnect()
