"""Leader election with a PostgreSQL advisory lock, held by a dedicated connection.

The replica whose connection holds the session lock is the leader: the only one running the
watcher, the job runner and the media workers. The lock lives exactly as long as that session,
so a leader that dies (even by SIGKILL) frees it at once and a follower, which tries every
``poll_s``, takes over. The leader checks its connection every ``poll_s`` and steps down when it
cannot reach the database within ``check_timeout_s``; the server itself drops a silent client
after its TCP keepalives fail (about ``KEEPALIVE`` seconds), which is later, so two leaders never
overlap while the network is merely slow.

SQLite has no election: one process does everything (``gql_media.services`` does not use this).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from gql_media.adapters.pg_sessions import asyncpg_dsn, close_quietly

__all__ = ["LEADER_LOCK_KEY", "STARTUP_LOCK_KEY", "PgLeaderElection", "advisory_lock"]

logger = logging.getLogger(__name__)

# Advisory lock keys are per database, so two libraries in two databases never collide.
LEADER_LOCK_KEY = 0x67716C6D_6C656164  # "gqlmlead"
STARTUP_LOCK_KEY = 0x67716C6D_73747274  # "gqlmstrt": migrations and root rows, one replica at a time
# The server closes the leader's session ~9 s after its host goes silent (idle 5 s + 2 probes x 2 s).
_KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "2"}


@contextlib.asynccontextmanager
async def advisory_lock(url: str, key: int = STARTUP_LOCK_KEY, *, timeout_s: float = 120.0) -> AsyncIterator[None]:
    """Hold a session advisory lock while the block runs (replicas starting together take turns)."""
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await connection.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
        await connection.execute("SELECT pg_advisory_lock($1)", key)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await connection.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await connection.close(timeout=5)


Callback = Callable[[], Awaitable[None]]


class PgLeaderElection:
    """Competes for the leader lock; calls ``on_elected`` when it wins and ``on_lost`` when it loses it.

    Args:
        url: the PostgreSQL database (``postgresql://...``).
        instance: this replica's name, written to ``cluster_leader`` while it leads.
        on_elected: awaited once each time this replica becomes the leader.
        on_lost: awaited when the lock's connection failed (the leader work must stop).
        poll_s: how often a follower tries the lock and the leader checks its connection.
        check_timeout_s: a leader whose check takes longer steps down.
    """

    def __init__(
        self,
        url: str,
        instance: str,
        *,
        on_elected: Callback,
        on_lost: Callback,
        poll_s: float = 1.0,
        check_timeout_s: float = 3.0,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self.instance = instance
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._poll_s = poll_s
        self._check_timeout_s = check_timeout_s
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        # Who leads, as last read from ``cluster_leader`` (this instance while it leads).
        self.leader: str | None = None
        self.elected_at_monotonic: float | None = None

    async def try_to_lead(self) -> bool:
        """One attempt at the lock; on success ``on_elected`` has run when this returns."""
        if self.is_leader:
            return True
        connection = await self._connect()
        won = await asyncio.wait_for(
            connection.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY), timeout=self._check_timeout_s
        )
        if not won:
            row = await connection.fetchrow("SELECT instance FROM cluster_leader WHERE id = 1")
            self.leader = None if row is None else str(row["instance"])
            return False
        await connection.execute(
            "INSERT INTO cluster_leader (id, instance, elected_at) VALUES (1, $1, $2)"
            " ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, elected_at = excluded.elected_at",
            self.instance,
            time.time(),
        )
        self.is_leader = True
        self.leader = self.instance
        self.elected_at_monotonic = time.monotonic()
        logger.info("leader election: %s leads", self.instance)
        await self._on_elected()
        return True

    def start(self) -> None:
        """Keep competing (follower) or checking the lock (leader) in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gql-media-leader-election")

    async def aclose(self) -> None:
        """Stop competing and release the lock (by closing its session)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._close()
        self.is_leader = False

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._dsn, timeout=10, server_settings=_KEEPALIVE)
        return self._connection

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        await close_quietly(connection)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                if self.is_leader:
                    await self._check()
                else:
                    await self.try_to_lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._close()
                if self.is_leader:
                    logger.error("leader election: lost the lock's connection (%s); stepping down", exc)
                    await self._step_down()
                else:
                    logger.warning("leader election: cannot reach the database (%s)", exc)

    async def _check(self) -> None:
        connection = self._connection
        if connection is None or connection.is_closed():
            raise ConnectionError("the lock's connection is closed")
        await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=self._check_timeout_s)

    async def _step_down(self) -> None:
        self.is_leader = False
        self.leader = None
        self.elected_at_monotonic = None
        try:
            await self._on_lost()
        except Exception:
            logger.exception("leader election: stopping the leader's work failed")
