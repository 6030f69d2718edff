"""The connection to the index database, through `databases`, for SQLite and PostgreSQL.

`databases` opens, pools and closes connections and runs transactions; the statements then go
to the driver's own connection (``RawConnection``: aiosqlite or asyncpg), because `databases`
compiles and runs ``execute_many`` row by row (28 s per 100k rows against 0.13 s raw). SQL is
written once with ``?`` placeholders and rewritten to ``$n`` for asyncpg.

SQLite rules: WAL (set once, it is persistent), foreign keys and a busy timeout on every
connection, and one writer at a time in this process. `databases` has no public hook for
per-connection pragmas: ``sqlite_backend`` is the one module that reaches inside it.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import aiosqlite
import asyncpg
from databases import Database, DatabaseURL

from gql_media.adapters.store.sqlite_backend import SQLiteDatabase
from gql_media.core.ports import StoreUnavailable

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]

SQLITE_BUSY_TIMEOUT_S = 30.0
# The page size of a new SQLite index. A first index writes every row into the table and six
# indexes (two kept as rows go in, four built after them) and the search table, and then writes
# each page again into the WAL and the database: 16 KiB pages are a quarter as many pages, splits
# and WAL frames as SQLite's default 4 KiB. SQLite alone writing a first index of 100k videos
# (bench/sqlite_floor.py), alternating: 0.54-0.56 s with 4 KiB pages, 0.50-0.54 s with 16 KiB;
# P1 2.89 -> 2.79 the walk (medians of 5, alternating); a first scan of 1M files 9.7 -> 8.7-8.9 s.
# A page read for one row copies 16 KiB instead of 4, and a page cache of a given size fills four
# times sooner: readers keep smaller caches (``sqlite_backend.READER_CACHE_KIB``).
SQLITE_PAGE_BYTES = 16384
# SQLite reader connections, kept for reuse and never more at once (a read past them waits):
# `databases` opens a connection (a thread and its pragmas, ~1.7 ms of CPU) per task, i.e. per read
# of a request or a DataLoader batch; past the bound, under load, ones opened and closed at once.
SQLITE_READERS = 4

# Set inside ``Db.writing()`` to its connection: a read there must use the transaction's own connection.
_writer: contextvars.ContextVar[RawConnection | None] = contextvars.ContextVar("gql_media_db_writer", default=None)


class StatementCount:
    """The statements sent inside one ``Db.counting()`` block (by its task and the tasks it starts)."""

    def __init__(self) -> None:
        self.value = 0


_counting: contextvars.ContextVar[StatementCount | None] = contextvars.ContextVar("gql_media_db_counting", default=None)


_PLACEHOLDER = re.compile(r"\?")


def to_dollar_params(sql: str) -> str:
    """Rewrite ``?`` placeholders to asyncpg's ``$1, $2, ...`` (our SQL has no literal '?')."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


# The store sends a few hundred distinct statements (IN lists vary in length): rewrite each once.
_dollar_sql = functools.lru_cache(maxsize=2048)(to_dollar_params)


class Db:
    """One database: connection lifecycle, the single writer, raw statements and their count."""

    def __init__(self, url: str) -> None:
        self.url = url
        scheme = DatabaseURL(url).dialect
        self._sqlite: SQLiteDatabase | None = None
        if scheme == "sqlite":
            self.dialect: Dialect = "sqlite"
            self._sqlite = SQLiteDatabase(url, readers=SQLITE_READERS, timeout=SQLITE_BUSY_TIMEOUT_S)
            self.database: Database = self._sqlite
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self.database = Database(url, min_size=1, max_size=10)
        else:
            raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")
        self._write_lock = asyncio.Lock()
        # How many statements were sent; tests read it to prove a page costs the same at any size.
        self.statements = 0

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
        await self.database.disconnect()

    def _raw(self, connection: Any) -> RawConnection:
        """The driver's connection that `databases` handed out (``Connection.raw_connection``), wrapped."""
        if self._sqlite is not None:
            return AiosqliteConnection(connection, self._sent)
        return AsyncpgConnection(connection, self._sent)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[RawConnection]:
        """A raw connection for reads (SQLite WAL readers never wait for the writer).

        SQLite readers are reused (autocommit: no transaction outlives a statement); inside
        ``writing()`` the read goes through the transaction's connection, so it sees its writes.
        """
        inside = _writer.get()
        if inside is not None:
            yield inside
            return
        if self._sqlite is not None:
            async with self._sqlite.reader() as raw:
                yield AiosqliteConnection(raw, self._sent)
            return
        async with self.database.connection() as connection:
            yield self._raw(connection.raw_connection)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[RawConnection]:
        """A raw connection inside one transaction, holding this process's write lock.

        Raises ``StoreUnavailable`` when the database cannot be written (read-only, full, gone).
        On SQLite the connection is kept for the next write (``SQLiteDatabase.write_transaction``).
        """
        try:
            async with self._write_lock, self._transaction() as raw:
                token = _writer.set(raw)
                try:
                    yield raw
                finally:
                    _writer.reset(token)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"the index database cannot be written: {unavailable_reason(exc)}") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[RawConnection]:
        if self._sqlite is not None:
            async with self._sqlite.write_transaction() as raw:
                yield AiosqliteConnection(raw, self._sent)
            return
        # asyncpg's own transaction, not `databases`': a task cancelled in its BEGIN (or COMMIT, ROLLBACK)
        # left `databases`' count of the connection's users one too high, so the connection was never
        # given back to the pool and the pool's close at shutdown waited for it forever (the job
        # runner's stop cancels the job id it took ahead). The pool rolls back what asyncpg's left open.
        async with self.database.connection() as connection:
            raw = connection.raw_connection
            async with raw.transaction():
                yield self._raw(raw)


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
        # A new database's pages (an existing one keeps its own: only a VACUUM, never run, would change them).
        connection.execute(f"PRAGMA page_size = {SQLITE_PAGE_BYTES}")
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


class RawConnection(Protocol):
    """The driver's own connection behind one small API: SQL with ``?`` placeholders, rows as tuples."""

    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    async def fetch_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...

    async def execute(self, sql: str, params: Params = ()) -> None: ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement for many rows (nothing is sent for none)."""
        ...


class _DriverConnection(abc.ABC):
    """What both drivers' ``RawConnection`` do alike: count each statement sent (``Db.counting``),
    take ``fetch_one`` from ``fetch``, and send nothing for no rows. A driver gives the three calls."""

    def __init__(self, sent: Callable[[], None]) -> None:
        self._sent = sent

    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self._sent()
        return await self._fetch(sql, tuple(params))

    async def fetch_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> None:
        self._sent()
        await self._execute(sql, tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [tuple(row) for row in rows]
        if batch:
            self._sent()
            await self._executemany(sql, batch)

    @abc.abstractmethod
    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    async def _execute(self, sql: str, params: tuple[Any, ...]) -> None: ...

    @abc.abstractmethod
    async def _executemany(self, sql: str, batch: list[tuple[Any, ...]]) -> None: ...


class AiosqliteConnection(_DriverConnection):
    """``RawConnection`` on aiosqlite, whose placeholder is ``?`` already."""

    def __init__(self, raw: aiosqlite.Connection, sent: Callable[[], None]) -> None:
        super().__init__(sent)
        self._raw = raw

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        # No row_factory: they are plain tuples already (copying 100k of them would cost).
        return cast(list[tuple[Any, ...]], list(await self._raw.execute_fetchall(sql, params)))

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        await self._raw.execute(sql, params)

    async def _executemany(self, sql: str, batch: list[tuple[Any, ...]]) -> None:
        await self._raw.executemany(sql, batch)


class AsyncpgConnection(_DriverConnection):
    """``RawConnection`` on asyncpg: ``?`` placeholders become ``$1, $2, ...``."""

    def __init__(self, raw: asyncpg.Connection, sent: Callable[[], None]) -> None:
        super().__init__(sent)
        self._raw = raw

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return [tuple(record) for record in await self._raw.fetch(_dollar_sql(sql), *params)]

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        await self._raw.execute(_dollar_sql(sql), *params)

    async def _executemany(self, sql: str, batch: list[tuple[Any, ...]]) -> None:
        await self._raw.executemany(_dollar_sql(sql), batch)
