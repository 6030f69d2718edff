"""How replicas reach each other: a ``Transport`` carries strings to every replica on one channel.

Two of them: Redis pub/sub (redis.asyncio) and PostgreSQL LISTEN/NOTIFY (asyncpg). A transport
only carries messages, at most ``max_message_chars`` each, and may lose some; what the messages
mean, how they are numbered and how a loss is noticed is ``broadcast.BroadcastBus``'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import asyncpg

from gql_media.adapters.pg_sessions import asyncpg_dsn, close_quietly

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["DEFAULT_CHANNEL", "PostgresTransport", "RedisTransport", "Transport", "transport_for"]

DEFAULT_CHANNEL = "gql_media_events"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes and more; JSON here is ASCII (ensure_ascii).
POSTGRES_MAX_MESSAGE_CHARS = 7000
REDIS_MAX_MESSAGE_CHARS = 256_000


class Transport(Protocol):
    """A broadcast channel: send strings to every replica, receive what the others sent."""

    max_message_chars: int

    async def send(self, payload: str) -> None:
        """Send one message; raises on a connection failure (the caller drops it and goes on)."""
        ...

    def receive(self) -> AsyncGenerator[str | None, None]:
        """Yields None once subscribed, then each message; raises when the connection is lost."""
        ...

    async def aclose(self) -> None: ...


class RedisTransport:
    """Redis pub/sub through redis' own asyncio client."""

    max_message_chars = REDIS_MAX_MESSAGE_CHARS

    def __init__(self, url: str, channel: str = DEFAULT_CHANNEL, *, connect_timeout_s: float = 5.0) -> None:
        # Imported for a redis:// URL only: 50 ms of every server's start-up otherwise.
        import redis.asyncio as aioredis

        self._channel = channel
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout_s, health_check_interval=10
        )

    async def send(self, payload: str) -> None:
        await self._client.publish(self._channel, payload)

    async def receive(self) -> AsyncGenerator[str | None, None]:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            yield None
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                data = message["data"]
                yield data.decode() if isinstance(data, bytes) else str(data)
        finally:
            # Through a typed name: redis-py before 8.2 left ``PubSub.aclose`` untyped, 8.2 types it,
            # and a ``type: ignore`` on the call is an error under one or the other.
            close_pubsub: Callable[[], Awaitable[None]] = pubsub.aclose
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close_pubsub(), timeout=2)

    async def aclose(self) -> None:
        await self._client.aclose()
        # The pool's connections, the pub/sub one included, are closed now rather than collected later.
        await self._client.connection_pool.disconnect()


class PostgresTransport:
    """PostgreSQL LISTEN/NOTIFY through asyncpg: one listening connection, one sending connection."""

    max_message_chars = POSTGRES_MAX_MESSAGE_CHARS

    def __init__(self, url: str, channel: str = DEFAULT_CHANNEL, *, inbox_size: int = 10_000) -> None:
        self._dsn = asyncpg_dsn(url)
        self._channel = channel
        self._inbox_size = inbox_size
        self._sender: asyncpg.Connection | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, payload: str) -> None:
        async with self._send_lock:
            if self._sender is None or self._sender.is_closed():
                self._sender = await asyncpg.connect(self._dsn, timeout=5)
            try:
                await self._sender.execute("SELECT pg_notify($1, $2)", self._channel, payload)
            except Exception:
                await self._close_sender()
                raise

    async def receive(self) -> AsyncGenerator[str | None, None]:
        # A full inbox drops the message; the sender's stream numbers tell the bus about the hole.
        inbox: asyncio.Queue[str] = asyncio.Queue(self._inbox_size)

        def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                inbox.put_nowait(payload)

        connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            await connection.add_listener(self._channel, on_notify)
            yield None
            while True:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that lands as the get() completes, and the receiver then never stops.
                try:
                    async with asyncio.timeout(1.0):
                        payload = await inbox.get()
                except TimeoutError:
                    if connection.is_closed():
                        raise ConnectionError("the LISTEN connection to PostgreSQL was closed") from None
                    continue
                yield payload
        finally:
            await close_quietly(connection)

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        await close_quietly(sender)

    async def aclose(self) -> None:
        await self._close_sender()


def transport_for(url: str, channel: str = DEFAULT_CHANNEL) -> Transport | None:
    """The transport of a broadcast URL; None for ``memory://`` (one process)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return None
    if scheme in ("redis", "rediss", "unix"):
        return RedisTransport(url, channel)
    if scheme in ("postgres", "postgresql"):
        return PostgresTransport(url, channel)
    raise ValueError(f"unsupported broadcast URL {url!r}: use memory://, redis://host:port or postgres://...")
