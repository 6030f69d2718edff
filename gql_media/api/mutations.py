"""The Mutation root: sync jobs, the watcher, thumbnails and HLS merging."""

from __future__ import annotations

import contextlib
import logging
import posixpath
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import strawberry

from gql_media.api.context import Access, Context
from gql_media.api.errors import ApiError
from gql_media.api.ids import SYNC_JOB, VIDEO, from_global_id
from gql_media.api.paths import resolve_path
from gql_media.api.ports import Media
from gql_media.api.types import (
    Folder,
    Info,
    MergeResult,
    SyncJob,
    SyncMode,
    Video,
    WatcherStatus,
    described,
)
from gql_media.core import models
from gql_media.core.roots import ADD_REFUSALS, REMOVE_REFUSALS, RefusalCode, RootRefused, describe_refusals

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _absolute(context: Context, path: str) -> str:
    """``path`` resolved under its library root, as an absolute path (``resolve_path`` refuses others)."""
    root, relative = resolve_path(context.services.roots, path)
    return posixpath.join(root.path, relative) if relative else root.path


@contextlib.contextmanager
def _refusals_as_errors() -> Iterator[None]:
    """A root command's refusal as the API error of the same code."""
    try:
        yield
    except RootRefused as refused:
        raise ApiError(str(refused), refused.code) from None


def _root_mutation(action: str, refusals: Sequence[RefusalCode]) -> Callable[[F], F]:
    """A root command's mutation, described by ``action`` and the codes it is refused with (``core.roots``')."""
    return described(f"{action} Refused with a code: {describe_refusals(refusals)}.", strawberry.mutation)


def _media(context: Context, operation: str) -> Media:
    """The media service, or a clear error while that service is not there."""
    media = context.media
    if media is None:
        raise ApiError(f"{operation} is not available on this server (the media service is not set up)", "UNAVAILABLE")
    return media


@strawberry.type
class Mutation:
    @described("Returns the running job instead of starting a second one.", strawberry.mutation)
    async def sync_library(
        self, info: Info, mode: SyncMode = models.SyncMode.INCREMENTAL, path: str | None = None
    ) -> SyncJob:
        context = info.context
        context.require(Access.WRITE)
        targets: tuple[models.SyncTarget, ...] = ()
        if path is not None:
            targets = (models.SyncTarget(path=_absolute(context, path)),)
        request = models.SyncRequest(mode=mode, trigger=models.SyncTrigger.MANUAL, targets=targets)
        return SyncJob.from_model(await context.services.runner.submit(request))

    @strawberry.mutation
    async def cancel_sync(self, info: Info, id: strawberry.ID) -> SyncJob | None:
        info.context.require(Access.WRITE)
        _, job_id = from_global_id(id, SYNC_JOB)
        job = await info.context.services.runner.cancel(job_id)
        return None if job is None else SyncJob.from_model(job)

    @strawberry.mutation
    async def start_watcher(self, info: Info) -> WatcherStatus:
        info.context.require(Access.WRITE)
        return WatcherStatus.from_model(await info.context.watcher.start())

    @strawberry.mutation
    async def stop_watcher(self, info: Info) -> WatcherStatus:
        info.context.require(Access.WRITE)
        return WatcherStatus.from_model(await info.context.watcher.stop())

    @strawberry.mutation
    async def regenerate_thumbnail(self, info: Info, id: strawberry.ID) -> Video:
        context = info.context
        context.require(Access.WRITE)
        _, video_id = from_global_id(id, VIDEO)
        if video_id not in await context.reads.videos_by_ids([video_id]):
            raise ApiError(f"no video with id {id!r}", "NOT_FOUND")
        media = _media(context, "regenerate_thumbnail")
        try:
            await media.regenerate_thumbnail(video_id)
        except LookupError:
            raise ApiError(f"no video with id {id!r}", "NOT_FOUND") from None
        # Read again: the thumbnail's status and error changed.
        row = (await context.reads.videos_by_ids([video_id])).get(video_id)
        if row is None:
            raise ApiError(f"video {id!r} was removed meanwhile", "NOT_FOUND")
        return Video.from_row(row)

    @strawberry.mutation
    async def merge_hls(self, info: Info, path: str, delete_source: bool = False) -> MergeResult:
        context = info.context
        context.require(Access.WRITE)
        outcome = await _media(context, "merge_hls").merge_hls(_absolute(context, path), delete_source)
        return MergeResult.from_model(outcome)

    @_root_mutation("Adds a library folder: indexed and watched at once, remembered across restarts.", ADD_REFUSALS)
    async def add_root(self, info: Info, path: str) -> Folder:
        context = info.context
        context.require(Access.WRITE)
        with _refusals_as_errors():
            root = await context.services.library_roots.add(path)
        row = await context.reads.folders_by_ids([root.folder_id])
        folder = row.get(root.folder_id)
        if folder is None:
            raise ApiError(f"the library root {root.path} was removed meanwhile", "NOT_FOUND")
        return Folder.from_row(folder)

    @_root_mutation(
        "Forgets a library folder added at run time: its index, thumbnails and transcode cache; its files are "
        "never touched.",
        REMOVE_REFUSALS,
    )
    async def remove_root(self, info: Info, path: str) -> bool:
        context = info.context
        context.require(Access.WRITE)
        with _refusals_as_errors():
            await context.services.library_roots.remove(path)
        return True
