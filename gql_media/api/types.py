"""The GraphQL object types. They translate index rows and core values; they hold no SQL.

Scalar fields are plain attributes filled when a node is built (a resolver per scalar field
would cost about as much again per object); relations go through the request's DataLoaders.
Paging (cursors, keyset keys, page sizes) is ``api/paging.py``'s.

Why one module past 400 lines: Folder, Video, the tree union, the connections and LibraryChange
name each other in annotations that Strawberry resolves in this module's namespace. The job and
watcher types (SyncProgress, SyncJob, WatcherStatus, MergeResult) could leave for a module of
their own once mutations.py imports them from there.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, NewType, TypeVar, cast

import strawberry

from gql_media.adapters.store.reads import (
    FolderRow,
    VideoOrderKey,
    VideoQuery,
    VideoRow,
    VideoSort,
)
from gql_media.api.context import Context
from gql_media.api.errors import ApiError
from gql_media.api.execution import prefetched
from gql_media.api.ids import FOLDER, SYNC_JOB, VIDEO, to_global_id
from gql_media.api.paging import (
    PageInfo,
    descendant_cursor,
    descendant_key,
    entry_cursor,
    entry_key,
    page_info,
    page_size,
    selects,
    video_cursor,
    video_key,
)
from gql_media.api.playback import Playback, Subtitle, playback_of, subtitles_of
from gql_media.core import models

F = TypeVar("F", bound=Callable[..., Any])


def described(description: str, kind: Callable[..., Any] = strawberry.field) -> Callable[[F], F]:
    """``@described("...")`` for a field with a resolver, keeping the resolver's type for mypy.

    ``kind`` is ``strawberry.field``, ``strawberry.mutation`` or ``strawberry.subscription``.
    """

    def wrap(resolver: F) -> F:
        return cast(F, kind(description=description)(resolver))

    return wrap


def prefetched_field(attribute: str) -> Callable[[F], F]:
    """A field with a resolver whose value the object may hold already in ``attribute`` (``execution.prefetched``)."""

    def wrap(resolver: F) -> F:
        return cast(F, strawberry.field(metadata=prefetched(attribute))(resolver))

    return wrap


Long = NewType("Long", int)
"""64-bit integers (sizes, byte counts, sequences) as JSON numbers."""

Info = strawberry.Info[Context, None]

strawberry.enum(models.VideoStatus, name="VideoStatus")
VideoStatus = models.VideoStatus
strawberry.enum(models.SyncMode, name="SyncMode")
SyncMode = models.SyncMode
strawberry.enum(models.SyncTrigger, name="SyncTrigger")
SyncTrigger = models.SyncTrigger
strawberry.enum(models.JobState, name="JobState")
JobState = models.JobState
strawberry.enum(models.SyncPhase, name="SyncPhase")
SyncPhase = models.SyncPhase
strawberry.enum(models.WatchMode, name="WatchMode")
WatchMode = models.WatchMode
strawberry.enum(
    models.ChangeKind,
    name="ChangeKind",
    description="RESYNC: this subscriber missed events (it was too slow, or the server restarted); "
    "refetch what is shown. ROOT_ADDED, ROOT_REMOVED: a library folder added or removed at run time "
    "(id: its root folder; the removed root's videos come as REMOVED first). SUBTREE_CHANGED: one job added, "
    "removed or moved more entries than the server's summary threshold (GQL_MEDIA_SYNC_SUMMARY_THRESHOLD): "
    "instead of one event per entry, one per changed folder subtree (id, path: the folder's); refetch that "
    "folder and what is shown under it.",
)
ChangeKind = models.ChangeKind


# The store's sort keys, by the API's name for them.
strawberry.enum(VideoOrderKey, name="VideoOrderField")
VideoOrderField = VideoOrderKey


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class VideoOrder:
    field: VideoOrderField
    direction: OrderDirection = OrderDirection.ASC

    def to_sort(self) -> VideoSort:
        return VideoSort(key=self.field, descending=self.direction is OrderDirection.DESC)


@strawberry.input
class VideoFilter:
    name_contains: str | None = strawberry.field(default=None, description="Case-insensitive.")
    under_path: str | None = strawberry.field(
        default=None, description="Only videos below this folder: relative to rootPath (or the only root), or absolute."
    )
    min_duration_seconds: float | None = None
    max_duration_seconds: float | None = None
    status: VideoStatus | None = None
    root_path: str | None = strawberry.field(default=None, description="Only videos of this library root.")


def _time_ns(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e9, UTC)


def _time_s(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type(description="A folder under a library root; a root is itself a Folder whose parent is null.")
class Folder(Node):
    id: strawberry.ID
    name: str
    path: str
    root_path: str = strawberry.field(description="Absolute path of the library root it belongs to.")
    modified_at: datetime | None
    row: strawberry.Private[FolderRow]

    @classmethod
    def from_row(cls, row: FolderRow) -> Folder:
        return cls(
            id=to_global_id(FOLDER, row.id),
            name=row.name,
            path=row.path,
            root_path=row.root_path,
            modified_at=_time_ns(row.mtime_ns) if row.mtime_ns else None,
            row=row,
        )

    @strawberry.field
    async def parent(self, info: Info) -> Folder | None:
        if self.row.parent_id is None:
            return None
        row = await info.context.loaders.folder.load(self.row.parent_id)
        return None if row is None else Folder.from_row(row)

    @described("Direct sub-folders, by name.")
    async def folders(self, info: Info) -> list[Folder]:
        return [Folder.from_row(r) for r in await info.context.loaders.child_folders.load(self.row.id)]

    @described("Direct videos.")
    async def videos(
        self, info: Info, first: int | None = None, after: str | None = None, order_by: VideoOrder | None = None
    ) -> VideoConnection:
        return await video_connection(info, VideoQuery(folder_id=self.row.id), order_by, first, after)

    @described("Direct children: folders first, then videos, each by name.")
    async def entries(self, info: Info, first: int | None = None, after: str | None = None) -> TreeEntryConnection:
        limit = page_size(first)
        key = entry_key(after)
        reads = info.context.reads
        page = await reads.entries_page(self.row.id, key, limit)
        parent_id = self.id
        # An edge's cursor is encoded only when asked for (pageInfo's two are encoded anyway).
        cursors = any(selects(field.selections, ("edges", "cursor")) for field in info.selected_fields)
        edges = []
        for row in page.rows:
            edges.append(
                TreeEntryEdge(
                    cursor=entry_cursor(row) if cursors else "",
                    node=Folder.from_row(row) if isinstance(row, FolderRow) else Video.from_row(row, self),
                    parent_id=parent_id,
                )
            )
        folder_id = self.row.id
        rows = page.rows
        return TreeEntryConnection(
            edges=edges,
            page_info=page_info([entry_cursor(rows[0]), entry_cursor(rows[-1])] if rows else [], page.has_next, after),
            count=lambda: reads.count_entries(folder_id),
        )

    @described(
        "The whole subtree, depth-first, flat: each folder, then its videos by name, then its sub-folders'"
        " subtrees by name; clients rebuild it with each edge's parentId."
    )
    async def descendants(self, info: Info, first: int | None = None, after: str | None = None) -> TreeEntryConnection:
        limit = page_size(first)
        key = descendant_key(self.row.id, after)
        reads = info.context.reads
        # The page's rows come whole from its two reads, not through the loaders: those would make
        # a future and a callback per key (500 of each here) and two more statements.
        page = await reads.descendants_page(self.row, key, limit)
        # An edge's cursor is encoded only when asked for (pageInfo's two are encoded anyway).
        cursors = any(selects(field.selections, ("edges", "cursor")) for field in info.selected_fields)
        # Videos come 50 or so to a folder: each parent's id is encoded once.
        parent_ids: dict[int, strawberry.ID] = {}
        edges = []
        for row in page.rows:
            parent = row.parent_id if isinstance(row, FolderRow) else row.folder_id
            parent_id = None
            if parent is not None:
                parent_id = parent_ids.get(parent)
                if parent_id is None:
                    parent_id = parent_ids[parent] = to_global_id(FOLDER, parent)
            cursor = descendant_cursor(self.row.id, row) if cursors else ""
            edges.append(TreeEntryEdge(cursor=cursor, node=entry_node(row), parent_id=parent_id))
        rows = page.rows
        folder = self.row
        ends = [descendant_cursor(folder.id, rows[0]), descendant_cursor(folder.id, rows[-1])] if rows else []
        return TreeEntryConnection(
            edges=edges,
            page_info=page_info(ends, page.has_next, after),
            count=lambda: reads.count_descendants(folder),
        )

    @strawberry.field
    async def video_count(self, info: Info, recursive: bool = False) -> int:
        loader = info.context.loaders.subtree_stats if recursive else info.context.loaders.direct_stats
        return (await loader.load(self.row.id)).video_count

    @strawberry.field
    async def total_size(self, info: Info, recursive: bool = True) -> Long:
        loader = info.context.loaders.subtree_stats if recursive else info.context.loaders.direct_stats
        return Long((await loader.load(self.row.id)).total_size)


@strawberry.type
class Video(Node):
    id: strawberry.ID = strawberry.field(description="Stable across renames and moves detected by sync.")
    name: str
    path: str
    root_path: str
    size: Long
    modified_at: datetime
    created_at: datetime = strawberry.field(description="When first indexed.")
    duration_seconds: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    container: str | None
    status: VideoStatus
    error: str | None = strawberry.field(description="Why probing or thumbnailing failed, if it did.")
    row: strawberry.Private[VideoRow]
    # The folder's node when the caller already has it (a page prefetches the folders of its
    # videos at once), so ``folder`` resolves without an await per video.
    folder_node: strawberry.Private[Folder | None] = None

    @classmethod
    def from_row(cls, row: VideoRow, folder: Folder | None = None) -> Video:
        return cls(
            id=to_global_id(VIDEO, row.id),
            name=row.name,
            path=row.path,
            root_path=row.root_path,
            size=Long(row.size),
            modified_at=_time_ns(row.mtime_ns),
            created_at=_time_s(row.created_at),
            duration_seconds=row.duration_s,
            width=row.width,
            height=row.height,
            video_codec=row.video_codec,
            audio_codec=row.audio_codec,
            container=row.container,
            status=row.status,
            error=row.error,
            row=row,
            folder_node=folder,
        )

    # With the fast paths, completed straight from ``folder_node`` when it is set (api/execution.py).
    @prefetched_field("folder_node")
    def folder(self, info: Info) -> Folder:
        # Synchronous when prefetched: graphql-core then needs no coroutine, task or gather per video.
        if self.folder_node is not None:
            return self.folder_node
        return cast(Folder, self._load_folder(info))

    async def _load_folder(self, info: Info) -> Folder:
        row = await info.context.loaders.folder.load(self.row.folder_id)
        if row is None:
            raise ApiError("the video's folder was removed", "NOT_FOUND")
        return Folder.from_row(row)

    @described("HTTP URL of a JPEG thumbnail; a placeholder image when none could be made.")
    def thumbnail_url(self, info: Info) -> str | None:
        return info.context.signed_url(f"thumbnails/{self.row.id}", self.row.thumbnail_key)

    @described("HTTP URL supporting Range requests (seeking).")
    def stream_url(self, info: Info) -> str:
        return info.context.signed_url(f"media/{self.row.id}")

    @described("How a browser plays it; directCodecs: what the client says it can play itself.")
    async def playback(self, info: Info, direct_codecs: list[str] | None = None) -> Playback:
        return await playback_of(info.context, self.row, direct_codecs)

    @described("Sidecar (movie.srt, movie.en.srt) and embedded text subtitles, served as WebVTT.")
    async def subtitles(self, info: Info) -> list[Subtitle]:
        return await subtitles_of(info.context, self.row)


TreeEntry = Annotated[Folder | Video, strawberry.union("TreeEntry")]


def entry_node(row: FolderRow | VideoRow) -> Folder | Video:
    return Folder.from_row(row) if isinstance(row, FolderRow) else Video.from_row(row)


@strawberry.type
class TreeEntryEdge:
    cursor: str
    node: TreeEntry
    parent_id: strawberry.ID | None


@strawberry.type
class TreeEntryConnection:
    edges: list[TreeEntryEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.count()


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.count()


async def video_connection(
    info: Info, query: VideoQuery, order_by: VideoOrder | None, first: int | None, after: str | None
) -> VideoConnection:
    """A page of videos; the cursor carries the sort key, so it only fits the same order."""
    limit = page_size(first)
    sort = order_by.to_sort() if order_by else VideoSort()
    key = video_key(sort, after)
    reads, loaders = info.context.reads, info.context.loaders
    # ``selected_fields`` holds this field itself (once per alias): look below it.
    selected = info.selected_fields
    # The folders of the whole page read with it, each built once, when they are asked for: each
    # video's ``folder`` is then a plain lookup instead of an await on the loader.
    folders: dict[int, Folder] = {}
    if any(selects(field.selections, ("edges", "node", "folder")) for field in selected):
        page, found = await reads.video_page_with_folders(query, sort, key, limit)
        loaders.know_folders(found)
        folders = {folder_id: Folder.from_row(row) for folder_id, row in found.items()}
    else:
        page = await reads.video_page(query, sort, key, limit)
    rows = page.rows
    # A video of this page asked again by id (``node``) is served from these rows, not read again.
    loaders.know_videos(rows)
    # An edge's cursor is encoded only when asked for (pageInfo's two are encoded anyway).
    cursors = any(selects(field.selections, ("edges", "cursor")) for field in selected)
    edges = [
        VideoEdge(cursor=video_cursor(sort, r) if cursors else "", node=Video.from_row(r, folders.get(r.folder_id)))
        for r in rows
    ]
    ends = [video_cursor(sort, rows[0]), video_cursor(sort, rows[-1])] if rows else []
    return VideoConnection(
        edges=edges,
        page_info=page_info(ends, page.has_next, after),
        count=lambda: reads.count_videos(query),
    )


@strawberry.type
class SyncError:
    path: str
    message: str


@strawberry.type
class SyncProgress:
    sequence: Long = strawberry.field(description="Grows with every progress event of this job.")
    job_id: strawberry.ID
    state: JobState
    phase: SyncPhase
    done: int
    total: int | None = strawberry.field(description="Null while not yet known.")
    current_path: str | None
    added: int
    updated: int
    removed: int
    moved: int
    failed: int
    elapsed_seconds: float

    @classmethod
    def from_model(cls, progress: models.SyncProgress) -> SyncProgress:
        return cls(
            sequence=Long(progress.sequence),
            job_id=to_global_id(SYNC_JOB, progress.job_id),
            state=progress.state,
            phase=progress.phase,
            done=progress.done,
            total=progress.total,
            current_path=progress.current_path,
            added=progress.added,
            updated=progress.updated,
            removed=progress.removed,
            moved=progress.moved,
            failed=progress.failed,
            elapsed_seconds=progress.elapsed_s,
        )


@strawberry.type
class SyncJob(Node):
    id: strawberry.ID
    mode: SyncMode
    trigger: SyncTrigger
    paths: list[str] = strawberry.field(
        description="Absolute folders this job covers (a whole root, or the subtrees an event touched)."
    )
    state: JobState
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: SyncProgress
    errors: list[SyncError]

    @classmethod
    def from_model(cls, job: models.SyncJob) -> SyncJob:
        return cls(
            id=to_global_id(SYNC_JOB, job.id),
            mode=job.mode,
            trigger=job.trigger,
            paths=list(job.paths),
            state=job.state,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            progress=SyncProgress.from_model(job.progress),
            errors=[SyncError(path=e.path, message=e.message) for e in job.errors],
        )


@strawberry.type
class WatcherStatus:
    enabled: bool
    mode: WatchMode = strawberry.field(
        description="POLLING for filesystems without change notification (NFS, SMB) or when asked."
    )
    error: str | None = strawberry.field(description="Why watching failed or degraded; null when healthy.")
    roots: list[str]
    pending_paths: int = strawberry.field(description="Changed paths waiting for the debouncer to settle.")
    settle_ms: int
    last_event_at: datetime | None
    last_sync_at: datetime | None
    leader: str | None = strawberry.field(
        default=None,
        description="The instance that runs the watcher and the jobs (the elected leader); null with SQLite.",
    )

    @classmethod
    def from_model(cls, status: models.WatcherStatus) -> WatcherStatus:
        return cls(
            enabled=status.enabled,
            mode=status.mode,
            error=status.error,
            roots=list(status.roots),
            pending_paths=status.pending_paths,
            settle_ms=status.settle_ms,
            last_event_at=status.last_event_at,
            last_sync_at=status.last_sync_at,
            leader=status.leader,
        )


@strawberry.type
class LibraryChange:
    sequence: Long = strawberry.field(
        description="Grows by one per change published by this server; a gap means events were missed."
    )
    kind: ChangeKind
    id: strawberry.ID | None = strawberry.field(description="Of the folder or video; null only for RESYNC.")
    path: str | None
    old_path: str | None = strawberry.field(description="For MOVED.")
    root_path: str | None
    job_id: strawberry.ID | None
    change: strawberry.Private[models.LibraryChange]

    @classmethod
    def from_model(cls, change: models.LibraryChange) -> LibraryChange:
        kind = FOLDER if change.entry_kind is models.EntryKind.FOLDER else VIDEO
        return cls(
            sequence=Long(change.sequence),
            kind=change.kind,
            id=None if change.id is None or change.kind is models.ChangeKind.RESYNC else to_global_id(kind, change.id),
            path=change.path,
            old_path=change.old_path,
            root_path=change.root_path,
            job_id=None if change.job_id is None else to_global_id(SYNC_JOB, change.job_id),
            change=change,
        )

    @described("Null for REMOVED (and when the entry is gone already); read when asked for.")
    async def entry(self, info: Info) -> TreeEntry | None:
        change = self.change
        gone = (models.ChangeKind.REMOVED, models.ChangeKind.ROOT_REMOVED, models.ChangeKind.RESYNC)
        if change.kind in gone or change.id is None:
            return None
        if change.entry_kind is models.EntryKind.FOLDER:
            folder = await info.context.loaders.folder.load(change.id)
            return None if folder is None else Folder.from_row(folder)
        video = await info.context.loaders.video.load(change.id)
        return None if video is None else Video.from_row(video)


@strawberry.type
class MergeResult:
    playlist_path: str
    output_path: str | None
    ok: bool
    source_deleted: bool
    error: str | None

    @classmethod
    def from_model(cls, outcome: models.MergeOutcome) -> MergeResult:
        return cls(
            playlist_path=outcome.playlist_path,
            output_path=outcome.output_path,
            ok=outcome.ok,
            source_deleted=outcome.source_deleted,
            error=outcome.error,
        )
