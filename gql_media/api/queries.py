"""The Query root: the tree, the videos, the watcher and the sync jobs."""

from __future__ import annotations

import strawberry

from gql_media.adapters.store.reads import VideoQuery
from gql_media.api.context import Access
from gql_media.api.downloads import HlsDownload, hls_downloads
from gql_media.api.ids import FOLDER, SYNC_JOB, VIDEO, from_global_id
from gql_media.api.paging import page_size
from gql_media.api.paths import find_root, resolve_path
from gql_media.api.types import (
    Folder,
    Info,
    Node,
    SyncJob,
    Video,
    VideoConnection,
    VideoFilter,
    VideoOrder,
    WatcherStatus,
    described,
    video_connection,
)
from gql_media.core import models
from gql_media.core.downloads import DownloadState

DEFAULT_JOBS_PAGE = 20


def video_query(info: Info, filter: VideoFilter | None) -> VideoQuery:
    """The index query a VideoFilter means (its paths resolved against the roots)."""
    if filter is None:
        return VideoQuery()
    roots = info.context.services.roots
    root_id: int | None = None
    under_path: str | None = None
    if filter.under_path is not None:
        if filter.under_path.startswith("/") or filter.root_path is not None or len(roots) == 1:
            root, under_path = resolve_path(roots, filter.under_path, filter.root_path)
            root_id = root.id
        else:  # relative, several roots and none named: that path in every root
            under_path = resolve_path(roots[:1], filter.under_path)[1]
    elif filter.root_path is not None:
        root_id = find_root(roots, filter.root_path).id
    return VideoQuery(
        root_id=root_id,
        under_path=under_path,
        name_contains=filter.name_contains or None,
        min_duration_s=filter.min_duration_seconds,
        max_duration_s=filter.max_duration_seconds,
        status=filter.status,
    )


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        info.context.require(Access.READ)
        kind, row_id = from_global_id(id, FOLDER, VIDEO, SYNC_JOB)
        if kind == FOLDER:
            folder = await info.context.loaders.folder.load(row_id)
            return None if folder is None else Folder.from_row(folder)
        if kind == VIDEO:
            video = await info.context.loaders.video.load(row_id)
            return None if video is None else Video.from_row(video)
        job = await info.context.services.runner.get(row_id)
        return None if job is None else SyncJob.from_model(job)

    @strawberry.field
    async def roots(self, info: Info) -> list[Folder]:
        info.context.require(Access.READ)
        return [Folder.from_row(r) for r in await info.context.reads.root_folders()]

    @described("rootPath may be omitted when there is one root; path may also be absolute.")
    async def folder(self, info: Info, path: str, root_path: str | None = None) -> Folder | None:
        info.context.require(Access.READ)
        root, relative = resolve_path(info.context.services.roots, path, root_path)
        row = await info.context.reads.folder_by_path(root.id, relative)
        return None if row is None else Folder.from_row(row)

    @strawberry.field
    async def videos(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: VideoFilter | None = None,
        order_by: VideoOrder | None = None,
    ) -> VideoConnection:
        info.context.require(Access.READ)
        return await video_connection(info, video_query(info, filter), order_by, first, after)

    @strawberry.field
    def watcher(self, info: Info) -> WatcherStatus:
        info.context.require(Access.READ)
        return WatcherStatus.from_model(info.context.watcher.status())

    @described("Newest first; after is the id of the last job already seen.")
    async def sync_jobs(self, info: Info, first: int | None = None, after: str | None = None) -> list[SyncJob]:
        info.context.require(Access.READ)
        limit = page_size(DEFAULT_JOBS_PAGE if first is None else first)
        runner = info.context.services.runner
        if after is None:
            return [SyncJob.from_model(j) for j in await runner.list(limit, 0)]
        _, last_id = from_global_id(after, SYNC_JOB)
        # Jobs are numbered in creation order and listed newest first: read on past the last one seen.
        jobs: list[models.SyncJob] = []
        offset = 0
        while len(jobs) < limit:
            batch = await runner.list(limit, offset)
            if not batch:
                break
            jobs.extend(j for j in batch if j.id < last_id)
            offset += len(batch)
        return [SyncJob.from_model(j) for j in jobs[:limit]]

    @strawberry.field
    def current_sync(self, info: Info) -> SyncJob | None:
        info.context.require(Access.READ)
        job = info.context.services.runner.current()
        return None if job is None else SyncJob.from_model(job)

    @described("Every HLS download folder the syncs found: waiting, ready, merged or failed, and why.")
    async def hls_downloads(self, info: Info, state: DownloadState | None = None) -> list[HlsDownload]:
        return await hls_downloads(info.context, state)


__all__ = ["Query"]
