"""The in-memory event bus: bounded queues, RESYNC for slow change subscribers, newest progress kept."""

from __future__ import annotations

import asyncio

from gql_media.adapters.bus import MemoryBus
from gql_media.core.models import ChangeKind, JobState, LibraryChange, SyncPhase, SyncProgress
from tests.changes import video_added


async def test_slow_subscriber_gets_resync_while_a_fast_one_misses_nothing() -> None:
    bus = MemoryBus(queue_size=10, change_queue_size=10)
    fast = bus.subscribe_changes()
    slow = bus.subscribe_changes()
    received: list[LibraryChange] = []

    async def read_fast() -> None:
        async for item in fast:
            received.append(item)
            if len(received) == 50:
                return

    reader = asyncio.create_task(read_fast())
    for n in range(50):
        await bus.publish_change(video_added(f"v{n}.mp4", n))
        await asyncio.sleep(0)  # the fast reader keeps up; the slow one never reads
    await asyncio.wait_for(reader, 5)

    assert [c.sequence for c in received] == list(range(1, 51))
    slow_items = []
    async for item in slow:
        slow_items.append(item)
        if item.sequence == 50:
            break
    assert ChangeKind.RESYNC in {c.kind for c in slow_items}
    assert len(slow_items) <= 10
    await fast.aclose()
    await slow.aclose()
    assert bus.subscriber_count == 0


async def test_progress_subscriber_keeps_the_newest() -> None:
    bus = MemoryBus(queue_size=3)
    events = bus.subscribe_progress()
    for n in range(1, 11):
        state = JobState.SUCCEEDED if n == 10 else JobState.RUNNING
        await bus.publish_progress(SyncProgress(job_id=1, sequence=n, state=state, phase=SyncPhase.WRITING))
    seen = []
    async for event in events:
        seen.append(event.sequence)
        if event.state.is_terminal:
            break
    assert seen == [8, 9, 10]
    await events.aclose()


async def test_publishing_never_waits_for_subscribers() -> None:
    bus = MemoryBus(queue_size=5, change_queue_size=5)
    subscriptions = [bus.subscribe_changes() for _ in range(100)]
    for n in range(1000):
        await bus.publish_change(video_added(f"v{n}.mp4", n))
    assert bus.sequence == 1000
    for sub in subscriptions:
        await sub.aclose()
