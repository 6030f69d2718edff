"""The Subscription root, fed by the event bus.

Each subscription owns one bus subscription (a bounded queue the bus fills without waiting), so
a slow client only ever loses its own events: the bus keeps the newest progress, and turns a
library-change overflow into one RESYNC. The bus subscription is closed when the client goes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from gql_media.api.context import Access
from gql_media.api.errors import ApiError
from gql_media.api.ids import SYNC_JOB, from_global_id
from gql_media.api.loaders import event_loaders
from gql_media.api.paths import find_root, resolve_path
from gql_media.api.types import Info, LibraryChange, SyncProgress, WatcherStatus, described
from gql_media.core import models

_last_progress: tuple[models.SyncProgress, SyncProgress] | None = None


def progress_node(progress: models.SyncProgress) -> SyncProgress:
    """The GraphQL object of a progress event, built once for all its subscribers (the bus hands
    every subscriber the same event object)."""
    global _last_progress
    last = _last_progress
    if last is not None and last[0] is progress:
        return last[1]
    node = SyncProgress.from_model(progress)
    _last_progress = (progress, node)
    return node


def _within(path: str | None, under: str) -> bool:
    return path is not None and (under == "" or path == under or path.startswith(under + "/"))


def change_matches(change: models.LibraryChange, root_id: int | None, under: str | None) -> bool:
    """Whether a subscriber of ``root_id``/``under`` wants ``change`` (RESYNC: always)."""
    if change.kind is models.ChangeKind.RESYNC:
        return True
    if root_id is not None and change.root_id != root_id:
        return False
    if under is None or _within(change.path, under) or _within(change.old_path, under):
        return True
    # A summary of a subtree above ``under`` covers it too.
    return change.kind is models.ChangeKind.SUBTREE_CHANGED and change.path is not None and _within(under, change.path)


@strawberry.type
class Subscription:
    @described(
        "All jobs when jobId is null; for a given job: its current state first, and the stream ends after its "
        "terminal event.",
        strawberry.subscription,
    )
    async def sync_progress(
        self, info: Info, job_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SyncProgress, None]:
        context = info.context
        context.require(Access.WRITE)
        wanted = None if job_id is None else from_global_id(job_id, SYNC_JOB)[1]
        # Subscribe before reading the job's state, so no event falls between the two.
        subscription = context.services.bus.subscribe_progress()
        try:
            last_sequence = -1
            if wanted is not None:
                job = await context.services.runner.get(wanted)
                if job is None:
                    raise ApiError(f"no sync job with id {job_id!r}", "NOT_FOUND")
                last_sequence = job.progress.sequence
                yield SyncProgress.from_model(job.progress)
                if job.state.is_terminal:
                    return
            async for progress in subscription:
                if wanted is not None and (progress.job_id != wanted or progress.sequence <= last_sequence):
                    continue
                yield progress_node(progress)
                if wanted is not None and progress.state.is_terminal:
                    return
        finally:
            await subscription.aclose()

    @described(
        "One event per added/updated/removed/moved folder or video (a job changing more entries than the summary "
        "threshold: one SUBTREE_CHANGED per changed folder subtree instead); a RESYNC when events were lost.",
        strawberry.subscription,
    )
    async def library_changed(
        self, info: Info, root_path: str | None = None, under_path: str | None = None
    ) -> AsyncGenerator[LibraryChange, None]:
        context = info.context
        context.require(Access.WRITE)
        roots = context.services.roots
        root_id: int | None = None
        under: str | None = None
        if under_path is not None:
            root, under = resolve_path(roots, under_path, root_path)
            root_id = root.id
        elif root_path is not None:
            root_id = find_root(roots, root_path).id
        subscription = context.services.bus.subscribe_changes()
        try:
            async for change in subscription:
                if change_matches(change, root_id, under):
                    # Each event reads its entry afresh, not from an earlier event's cache, and
                    # once for all its subscribers.
                    context.loaders = event_loaders(context.reads, change)
                    yield LibraryChange.from_model(change)
        finally:
            await subscription.aclose()

    @described("The watcher's state now, then on every change.", strawberry.subscription)
    async def watcher_status(self, info: Info) -> AsyncGenerator[WatcherStatus, None]:
        context = info.context
        context.require(Access.WRITE)
        subscription = context.services.bus.subscribe_watcher()
        try:
            last = context.watcher.status()
            yield WatcherStatus.from_model(last)
            async for status in subscription:
                if status != last:
                    last = status
                    yield WatcherStatus.from_model(status)
        finally:
            await subscription.aclose()
