"""Wiring of playback: the worker pool, the segment cache and the streaming service of one replica."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gql_media.adapters.media.transcode import PyAvSegmentWorkers
from gql_media.core.ports import EventBus
from gql_media.core.segment_cache import SegmentCache
from gql_media.core.streaming import PlaybackSettings, StreamingService
from gql_media.settings import Settings

__all__ = ["open_playback", "playback_settings"]


def playback_settings(settings: Settings) -> PlaybackSettings:
    """The streaming limits of ``settings``."""
    return PlaybackSettings(
        transcode_enabled=settings.transcode,
        max_height_px=settings.transcode_max_height,
        preset=settings.transcode_preset,
        slots=settings.transcode_workers,
        wait_s=settings.transcode_wait_s,
        abandoned_grace_s=settings.transcode_abandoned_grace_s,
    )


@contextlib.asynccontextmanager
async def open_playback(settings: Settings, bus: EventBus) -> AsyncIterator[StreamingService]:
    """A running ``StreamingService`` following ``bus``'s changes; its workers start with the first segment."""
    # One worker more than segment slots: a probe or a subtitle never waits behind a transcode.
    workers = PyAvSegmentWorkers(settings.transcode_workers + 1, settings.media_timeout_s)
    cache = SegmentCache(settings.transcode_cache_dir, settings.transcode_cache_mb * 1024 * 1024)
    service = StreamingService(workers, cache, playback_settings(settings))
    await service.start()
    changes = bus.subscribe_changes()
    follower = asyncio.create_task(service.follow_changes(aiter(changes)))
    try:
        yield service
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await changes.aclose()
        await service.aclose()
        await workers.aclose()
