"""The event bus across replicas, over a ``transports.Transport`` (Redis pub/sub or PostgreSQL LISTEN/NOTIFY).

Every replica keeps the in-process semantics of ``MemoryBus`` for its own subscribers (bounded
queues, RESYNC on overflow, newest progress kept) and also sends what it publishes to a broadcast
channel; what other replicas sent is delivered to local subscribers as if published here.

Only the leader publishes library changes, so the leader's counter is the change ``sequence``;
followers adopt the highest sequence they saw, so a follower that takes over continues it.

Nothing is lost silently. Each replica numbers everything it sends (one stream number per event,
heartbeats included); a receiver that sees a hole in a sender's numbers, or whose connection to
the broadcast dropped, gives its change subscribers one RESYNC (they refetch). A publisher never
waits for the network: events go to a bounded outbox that one task drains in batches; an event
the outbox cannot take still uses its stream number, so receivers notice the loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any

from gql_media.adapters.bus import DEFAULT_QUEUE_SIZE, MemoryBus
from gql_media.adapters.codecs import (
    decode_change,
    decode_progress,
    decode_watcher,
    encode_change,
    encode_progress,
    encode_watcher,
)
from gql_media.adapters.transports import DEFAULT_CHANNEL, Transport, transport_for
from gql_media.core.models import LibraryChange, SyncProgress, WatcherStatus
from gql_media.core.ports import EventBus

__all__ = ["BroadcastBus", "open_bus"]

logger = logging.getLogger(__name__)

MAX_SOURCES_TRACKED = 256


class BroadcastBus(MemoryBus):
    """Implements ``ports.EventBus`` for several replicas over a ``Transport``.

    Args:
        transport: the broadcast channel (Redis or PostgreSQL).
        instance: a name for logs; the bus adds a random suffix so a restarted process is a new source.
        queue_size: each local subscriber's bound.
        outbox_size: most events waiting to be sent; more are dropped (receivers RESYNC).
        heartbeat_s: an idle bus sends a heartbeat this often, so a lost message is noticed soon.
        retry_delay_s: first delay before reconnecting (doubles up to 10 s).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        instance: str = "gql-media",
        queue_size: int = DEFAULT_QUEUE_SIZE,
        outbox_size: int = 10_000,
        heartbeat_s: float = 2.0,
        retry_delay_s: float = 0.5,
    ) -> None:
        super().__init__(queue_size)
        self.transport = transport
        self.source = f"{instance}/{uuid.uuid4().hex[:8]}"
        # Counters for logs and tests.
        self.gaps = 0
        self.dropped = 0
        self.reconnects = 0
        self._outbox_size = outbox_size
        self._heartbeat_s = heartbeat_s
        self._retry_delay_s = retry_delay_s
        self._stream = 0
        self._outbox: deque[tuple[int, str, Any]] = deque()
        self._outbox_ready = asyncio.Event()
        self._last_sent = time.monotonic()
        self._last_seen: OrderedDict[str, int] = OrderedDict()
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self, connect_timeout_s: float = 5.0) -> None:
        """Start sending and receiving; waits (up to ``connect_timeout_s``) for the first subscription."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._receive_forever(), name="gql-media-broadcast-receive"),
            asyncio.create_task(self._send_forever(), name="gql-media-broadcast-send"),
        ]
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=connect_timeout_s)
        except TimeoutError:
            logger.warning("broadcast: not connected after %.0f s; retrying in the background", connect_timeout_s)

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a shutdown never hangs on a transport that does not answer.
            _done, pending = await asyncio.wait(tasks, timeout=10)
            if pending:
                logger.warning("broadcast: %d task(s) did not stop within 10 s", len(pending))
        await self.transport.aclose()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ------------------------------------------------------------------ publishing

    async def publish_change(self, change: LibraryChange) -> LibraryChange:
        sequenced = await super().publish_change(change)
        self._enqueue("c", encode_change(sequenced))
        return sequenced

    async def publish_progress(self, progress: SyncProgress) -> None:
        await super().publish_progress(progress)
        self._enqueue("p", encode_progress(progress))

    async def publish_watcher(self, status: WatcherStatus) -> None:
        await super().publish_watcher(status)
        self._enqueue("w", encode_watcher(status))

    def _enqueue(self, kind: str, data: Any) -> None:
        self._stream += 1
        if len(self._outbox) >= self._outbox_size:
            # Its stream number is used all the same: receivers see the hole and RESYNC.
            self.dropped += 1
            return
        self._outbox.append((self._stream, kind, data))
        self._outbox_ready.set()

    def _next_message(self) -> str:
        limit = self.transport.max_message_chars - 100
        events: list[Any] = []
        size = 0
        while self._outbox:
            encoded = json.dumps(self._outbox[0], separators=(",", ":"))
            if events and size + len(encoded) + 1 > limit:
                break
            self._outbox.popleft()
            if len(encoded) > limit:
                # Too big for one message (a very long path): dropped, and the hole says so.
                self.dropped += 1
                continue
            events.append(encoded)
            size += len(encoded) + 1
        return '{"s":' + json.dumps(self.source) + ',"e":[' + ",".join(events) + "]}" if events else ""

    async def _send_forever(self) -> None:
        delay_s = self._retry_delay_s
        while True:
            try:
                async with asyncio.timeout(self._heartbeat_s):  # not wait_for: see transports.PostgresTransport.receive
                    await self._outbox_ready.wait()
            except TimeoutError:
                self._enqueue("h", None)
            self._outbox_ready.clear()
            while self._outbox:
                message = self._next_message()
                if not message:
                    continue
                try:
                    await self.transport.send(message)
                    delay_s = self._retry_delay_s
                except Exception as exc:
                    # The message is lost; its stream numbers make receivers RESYNC.
                    logger.warning("broadcast: sending failed (%s); retrying in %.1f s", exc, delay_s)
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, 10.0)

    # ------------------------------------------------------------------ receiving

    async def _receive_forever(self) -> None:
        delay_s = self._retry_delay_s
        subscribed_before = False
        while True:
            try:
                # aclosing: a cancelled receiver closes its connection now, not when collected.
                async with contextlib.aclosing(self.transport.receive()) as payloads:
                    async for payload in payloads:
                        if payload is None:
                            if subscribed_before:
                                # Whatever was sent while we were away is gone: subscribers refetch.
                                self.reconnects += 1
                                logger.info("broadcast: reconnected")
                                self._gap()
                            subscribed_before = True
                            delay_s = self._retry_delay_s
                            self._connected.set()
                            continue
                        self._handle(payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("broadcast: connection lost (%s); reconnecting in %.1f s", exc, delay_s)
            self._connected.clear()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 10.0)

    def _handle(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            source = message["s"]
            events = message["e"]
        except (ValueError, KeyError, TypeError):
            logger.warning("broadcast: ignored a malformed message")
            return
        if source == self.source:
            return
        for number, kind, data in events:
            last = self._last_seen.get(source)
            if last is not None and number != last + 1:
                logger.info("broadcast: %d events from %s missed", number - last - 1, source)
                self._gap()
            self._last_seen[source] = number
            self._last_seen.move_to_end(source)
            if len(self._last_seen) > MAX_SOURCES_TRACKED:
                self._last_seen.popitem(last=False)
            try:
                self._dispatch(kind, data)
            except (ValueError, KeyError, TypeError, IndexError):
                logger.warning("broadcast: ignored a malformed %r event", kind)

    def _dispatch(self, kind: str, data: Any) -> None:
        if kind == "c":
            change = decode_change(data)
            # Adopt the leader's numbering: if this replica becomes the leader it goes on from here.
            self.sequence = max(self.sequence, change.sequence)
            self._deliver_change(change)
        elif kind == "p":
            self._deliver_progress(decode_progress(data))
        elif kind == "w":
            self._deliver_watcher(decode_watcher(data))

    def _gap(self) -> None:
        self.gaps += 1
        self._deliver_change(self._resync_change())


@contextlib.asynccontextmanager
async def open_bus(
    url: str, *, instance: str, channel: str = DEFAULT_CHANNEL, queue_size: int = DEFAULT_QUEUE_SIZE
) -> AsyncIterator[EventBus]:
    """The bus for ``broadcast_url``: a ``MemoryBus`` for ``memory://``, else a started ``BroadcastBus``."""
    transport = transport_for(url, channel)
    if transport is None:
        yield MemoryBus(queue_size)
        return
    bus = BroadcastBus(transport, instance=instance, queue_size=queue_size)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.aclose()
