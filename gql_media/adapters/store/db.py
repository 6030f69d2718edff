"""The connection to the index database, through `databases`, for SQLite and PostgreSQL.

Bulk work goes through the raw driver connection inside a `databases` transaction: `databases`
compiles and runs ``execute_many`` row by row (28 s per 100k rows against 0.13 s raw). SQL is
written once with ``?`` placeholders and rewritten to ``$n`` for asyncpg.

SQLite rules: WAL (set once, it is persistent), foreign keys and a busy timeout on every
connection (`databases` opens one per task), and one writer at a time in this process.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import asyncpg
from databases import Database, DatabaseURL
from databases.backends.sqlite import SQLiteBackend, SQLitePool

from gql_media.core.ports import StoreUnavailable

logger = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]

SQLITE_CONNECTION_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -32000",
)
SQLITE_BUSY_TIMEOUT_S = 30.0
# Idle SQLite reader connections kept for reuse: `databases` opens a connection (a thread and
# its pragmas, ~1.7 ms of CPU) per task, i.e. per read of a request or a DataLoader batch.
SQLITE_IDLE_READERS = 4

# Set inside ``Db.writing()``: a read there must use the transaction's own connection.
_in_write = contextvars.ContextVar("gql_media_db_in_write", default=False)


class StatementCount:
    """The statements sent inside one ``Db.counting()`` block (by its task and the tasks it starts)."""

    def __init__(self) -> None:
        self.value = 0


_counting: contextvars.ContextVar[StatementCount | None] = contextvars.ContextVar("gql_media_db_counting", default=None)


class _PragmaSQLitePool(SQLitePool):
    """Applies the per-connection pragmas to every connection `databases` opens, and closes them all.

    `databases` never closes SQLite connections on disconnect; one left open by a cancelled task
    keeps aiosqlite's (non-daemon) thread alive and the process from exiting.
    """

    def __init__(self, url: DatabaseURL, **options: Any) -> None:
        super().__init__(url, **options)
        self._open: set[aiosqlite.Connection] = set()

    async def acquire(self) -> aiosqlite.Connection:
        connection = await super().acquire()
        self._open.add(connection)
        try:
            for pragma in SQLITE_CONNECTION_PRAGMAS:
                await connection.execute(pragma)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: aiosqlite.Connection) -> None:
        self._open.discard(connection)
        await super().release(connection)

    async def close_all(self) -> None:
        while self._open:
            connection = self._open.pop()
            try:
                await connection.close()
            except Exception:  # already broken: its thread is gone either way
                logger.debug("closing a leftover SQLite connection failed", exc_info=True)


class PragmaSQLiteBackend(SQLiteBackend):
    def __init__(self, database_url: DatabaseURL | str, **options: Any) -> None:
        super().__init__(database_url, **options)
        self._pragma_pool = _PragmaSQLitePool(self._database_url, **self._options)
        self._pool = self._pragma_pool

    async def disconnect(self) -> None:
        await super().disconnect()
        await self._pragma_pool.close_all()


class _Database(Database):
    @property
    def pragma_pool(self) -> _PragmaSQLitePool | None:
        backend = getattr(self, "_backend", None)
        return backend._pragma_pool if isinstance(backend, PragmaSQLiteBackend) else None

    def _get_backend(self) -> str:
        if self.url.dialect == "sqlite":
            return f"{__name__}:PragmaSQLiteBackend"
        return super()._get_backend()


_PLACEHOLDER = re.compile(r"\?")


def to_dollar_params(sql: str) -> str:
    """Rewrite ``?`` placeholders to asyncpg's ``$1, $2, ...`` (our SQL has no literal '?')."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


class Db:
    """One database: connection lifecycle, the single writer, raw statements and their count."""

    def __init__(self, url: str) -> None:
        self.url = url
        scheme = DatabaseURL(url).dialect
        if scheme == "sqlite":
            self.dialect: Dialect = "sqlite"
            self.database: _Database = _Database(url, timeout=SQLITE_BUSY_TIMEOUT_S)
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self.database = _Database(url, min_size=1, max_size=10)
        else:
            raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")
        self._write_lock = asyncio.Lock()
        # How many statements were sent; tests read it to prove a page costs the same at any size.
        self.statements = 0
        self._sql_cache: dict[str, str] = {}
        self._idle_readers: list[aiosqlite.Connection] = []

    def _sent(self) -> None:
        self.statements += 1
        count = _counting.get()
        if count is not None:
            count.value += 1

    @contextmanager
    def counting(self) -> Iterator[StatementCount]:
        """Count the statements this context sends (tasks started inside it included).

        Unlike ``statements`` it leaves out background work (on PostgreSQL the cluster's leader
        polls ``job_requests``), so a test or bench measures exactly what a request costs.
        """
        count = StatementCount()
        token = _counting.set(count)
        try:
            yield count
        finally:
            _counting.reset(token)

    @property
    def sqlite_path(self) -> Path | None:
        if self.dialect != "sqlite":
            return None
        return Path(DatabaseURL(self.url).database)

    async def connect(self) -> None:
        path = self.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(_enable_wal, path)
        await self.database.connect()

    async def disconnect(self) -> None:
        self._idle_readers.clear()  # closed with every other connection of the pool
        await self.database.disconnect()

    def sql(self, sql: str) -> str:
        """The statement in this driver's placeholder style."""
        if self.dialect == "sqlite":
            return sql
        cached = self._sql_cache.get(sql)
        if cached is None:
            cached = self._sql_cache[sql] = to_dollar_params(sql)
        return cached

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[RawConnection]:
        """A raw connection for reads (SQLite WAL readers never wait for the writer).

        SQLite readers are reused (autocommit: no transaction outlives a statement); inside
        ``writing()`` the read goes through the transaction's connection, so it sees its writes.
        """
        pool = self.database.pragma_pool
        if pool is None or _in_write.get():
            async with self.database.connection() as connection:
                yield RawConnection(self, connection.raw_connection)
            return
        raw = self._idle_readers.pop() if self._idle_readers else await pool.acquire()
        reusable = False
        try:
            yield RawConnection(self, raw)
            reusable = True
        finally:
            if reusable and len(self._idle_readers) < SQLITE_IDLE_READERS and self.database.is_connected:
                self._idle_readers.append(raw)
            else:  # failed or cancelled mid-read, or enough idle ones: not reused
                await pool.release(raw)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[RawConnection]:
        """A raw connection inside one transaction, holding this process's write lock.

        Raises ``StoreUnavailable`` when the database cannot be written (read-only, full, gone).
        """
        try:
            async with self._write_lock, self.database.connection() as connection, connection.transaction():
                token = _in_write.set(True)
                try:
                    yield RawConnection(self, connection.raw_connection)
                finally:
                    _in_write.reset(token)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"the index database cannot be written: {unavailable_reason(exc)}") from exc


# Errors of the database itself (not of our SQL): told to the user, never taken for a bug.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.DiskFullError,
    asyncpg.exceptions.InsufficientPrivilegeError,
    ConnectionError,
)


def unavailable_reason(exc: BaseException) -> str:
    """The driver's words, without file names (they may be host paths)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _enable_wal(path: Path) -> None:
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


class RawConnection:
    """The driver's own connection (aiosqlite or asyncpg) behind one small API."""

    def __init__(self, db: Db, raw: Any) -> None:
        self._db = db
        self._raw = raw

    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self._db._sent()
        if self._db.dialect == "sqlite":
            rows = await self._raw.execute_fetchall(sql, tuple(params))
            return list(rows)
        records = await self._raw.fetch(self._db.sql(sql), *params)
        return [tuple(record) for record in records]

    async def fetch_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> None:
        self._db._sent()
        if self._db.dialect == "sqlite":
            await self._raw.execute(sql, tuple(params))
        else:
            await self._raw.execute(self._db.sql(sql), *params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [tuple(row) for row in rows]
        if not batch:
            return
        self._db._sent()
        if self._db.dialect == "sqlite":
            await self._raw.executemany(sql, batch)
        else:
            await self._raw.executemany(self._db.sql(sql), batch)
