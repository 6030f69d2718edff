"""A server's memory stays flat under a long-lived subscription (issue 20).

graphql-core 3.3's per-event executor is a shallow copy of the subscription's executor: it shared
the subscription's subfield memo, which keeps every event's field lists alive until the
subscription ends (a few KB per event for the web UI's subscription). A real uvicorn server, a
real websocket subscriber and a few thousand events: what the Python heap still holds of the last
2,000 events' allocations, after a warm-up, must stay far below what one event's field lists
cost times their number.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from gql_media.api.ids import VIDEO, from_global_id
from gql_media.core.models import ChangeKind, EntryKind, JobState, LibraryChange, SyncPhase, SyncProgress
from tests.api.conftest import Api, serve
from tests.api.test_live import TRANSPORT_WS, open_ws, receive, start, wait_for_subscribers

# What the web UI subscribes to (frontend-example/src/queries.ts), and its progress panel.
CHANGES = """subscription {
  libraryChanged {
    sequence kind id path oldPath rootPath jobId
    entry { __typename ... on Video { id name size status folder { path } } ... on Folder { id name path } }
  }
}"""
PROGRESS = "subscription { syncProgress { jobId sequence state phase done total added updated removed moved failed } }"

WARM_UP_EVENTS = 500
MEASURED_EVENTS = 2000
BATCH = 100  # below a subscriber's queue size: no RESYNC
# Unfixed, the shared memo kept about 7 KB per event for these two subscriptions (14.5 MB over the
# measured 2,000 events); fixed, about 50 KB in all stays (noise). The bound is far from both.
MAX_GROWTH_BYTES = 1_000_000


@dataclass
class Received:
    """What a subscriber got: how many events, and the last one (keeping them all would grow the heap)."""

    count: int = 0
    last: Any = None


async def _collect(ws: ClientConnection, received: dict[str, Received]) -> None:
    while True:
        message = await receive(ws)
        assert message["type"] == "next", message
        seen = received[message["id"]]
        seen.count += 1
        seen.last = message["payload"]["data"]


async def _publish(api: Api, video_ids: list[int], first: int, count: int) -> None:
    bus = api.services.bus
    for number in range(first, first + count):
        video_id = video_ids[number % len(video_ids)]
        change = LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, video_id, None, None, f"v{number}.mp4")
        await bus.publish_change(change)
        progress = SyncProgress(job_id=1, sequence=number, state=JobState.RUNNING, phase=SyncPhase.SCANNING)
        await bus.publish_progress(progress)


async def _run_events(api: Api, video_ids: list[int], received: dict[str, Received], first: int, count: int) -> None:
    for batch_start in range(first, first + count, BATCH):
        await _publish(api, video_ids, batch_start, BATCH)
        expected = batch_start + BATCH
        while received["changes"].count < expected or received["progress"].count < expected:
            await asyncio.sleep(0.005)


@pytest.mark.slow
async def test_memory_stays_flat_over_thousands_of_subscription_events(api: Api) -> None:
    page = await api.data("{ videos(first: 100) { edges { node { id } } } }")
    ids = [from_global_id(edge["node"]["id"], VIDEO)[1] for edge in page["videos"]["edges"]]
    assert ids
    received = {"changes": Received(), "progress": Received()}
    async with serve(api.app) as url:
        ws = await open_ws(url, TRANSPORT_WS)
        collector: asyncio.Task[None] | None = None
        try:
            before = api.services.bus.subscriber_count  # type: ignore[attr-defined]
            await start(ws, TRANSPORT_WS, "changes", CHANGES, {})
            await start(ws, TRANSPORT_WS, "progress", PROGRESS, {})
            await wait_for_subscribers(api, before + 2)
            collector = asyncio.create_task(_collect(ws, received))
            await _run_events(api, ids, received, 0, WARM_UP_EVENTS)
            gc.collect()
            tracemalloc.start()
            try:
                await _run_events(api, ids, received, WARM_UP_EVENTS, MEASURED_EVENTS)
                gc.collect()
                growth_bytes = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
        finally:
            if collector is not None:
                collector.cancel()
                await asyncio.gather(collector, return_exceptions=True)
            await ws.close()
    total = WARM_UP_EVENTS + MEASURED_EVENTS
    assert received["changes"].count == received["progress"].count == total
    last = received["changes"].last["libraryChanged"]
    assert last["kind"] == "UPDATED" and last["entry"]["__typename"] == "Video"
    assert received["progress"].last["syncProgress"]["sequence"] == total - 1
    print(f"heap growth over the last {MEASURED_EVENTS} events: {growth_bytes:,} bytes")
    assert growth_bytes < MAX_GROWTH_BYTES, f"{growth_bytes:,} bytes kept over {MEASURED_EVENTS} events"
