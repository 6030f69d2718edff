"""The media phases of a sync job (MERGING, PROBING, THUMBNAILS) and the media actions of the API.

Standard library only: the store and the media tool come in through ``ports.MediaStore`` and
``ports.MediaTool``, the running job through ``ports.RunningJob``.

Order in a job: ``MergeStep`` (``downloads``: turns HLS downloads into mp4s, has them indexed in
the same job and records each download's state), then ``ProbeStep`` (metadata of every added or
changed video), then ``ThumbnailStep``. A file's failure is recorded on the job (``add_error``)
and the job goes on; cancelling the job stops a phase between two files. Results are written in
small batches by the single writer and each video filled in is published as an UPDATED change
after its row is written. Empty files are decided first, all in one write (``ProbeStep``).

Thumbnail files, their keys and their clean-up are ``thumbnails``'s: a changed file gets a new
image (the old one deleted), a moved file keeps its own, a removed video's images are deleted. A
video without a thumbnail key (BROKEN, failed, not made yet) is shown with the placeholder image.

Memory stays a chunk of videos whatever the job's size: a job names its changed videos only while
they are few (``changed_videos.VideoIds``); past that, and for the catch-up of a root synced whole,
the steps read the store's PENDING / READY videos a page at a time, and the orphan sweep reads the
thumbnail folder a batch at a time. One module past 400 lines: the three steps and the API's actions
share the batching (``_work_in_batches``), the chunk size and the guarded writes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TypeVar

from gql_media.core.downloads import DownloadLog, MergeStep, merge_hls, record_merge
from gql_media.core.job_state import MAX_ERRORS_KEPT
from gql_media.core.models import (
    ChangeKind,
    EntryKind,
    LibraryChange,
    MediaInfo,
    MergeOutcome,
    Scope,
    SyncPhase,
    VideoFile,
    VideoStatus,
)
from gql_media.core.ports import EmptyVideos, MediaError, MediaStore, MediaTool, RunningJob, VideoCursor
from gql_media.core.sync.summary import topmost_subtrees
from gql_media.core.thumbnails import (
    ThumbnailSpec,
    remove_files,
    remove_files_written_before,
    remove_thumbnail_files,
    video_thumbnails,
)

logger = logging.getLogger(__name__)

__all__ = [
    "MediaWork",
    "MergeStep",
    "ProbeStep",
    "ThumbnailSpec",
    "ThumbnailStep",
    "merge_hls",
    "regenerate_thumbnail",
]

Row = TypeVar("Row")

_WRITE_BATCH = 64


def _full_root_ids(scopes: Sequence[Scope]) -> list[int]:
    """Roots this job synced whole: those get the catch-up of videos left unfinished before."""
    return sorted({scope.root_id for scope in scopes if scope.path == "" and scope.recursive})


def _catch_up_root_ids(job: RunningJob) -> list[int]:
    """Roots whose unfinished videos a step reads from the store, a page at a time: those synced whole,
    and every root of the job when it changed too many videos to keep their ids (``VideoIds.many``)."""
    if job.changed_video_ids.many:
        return sorted({scope.root_id for scope in job.scopes})
    return _full_root_ids(job.scopes)


def _change(video: VideoFile, job_id: int) -> LibraryChange:
    return LibraryChange(
        kind=ChangeKind.UPDATED,
        entry_kind=EntryKind.VIDEO,
        id=video.id,
        root_id=video.root_id,
        root_path=video.root_path,
        path=video.path,
        job_id=job_id,
    )


async def _work_in_batches(
    job: RunningJob,
    phase: SyncPhase,
    videos: Sequence[VideoFile],
    work: Callable[[VideoFile], Awaitable[Row | None]],
    write: Callable[[Sequence[Row]], Awaitable[object]],
    *,
    lanes: int,
    batch_size: int,
    done_before: int = 0,
    total: int | None = None,
) -> None:
    """Run ``work`` on every video, ``lanes`` at a time, and ``write`` the rows it gives ``batch_size`` at a time.

    Progress of ``phase`` is reported at the start and after each video; cancellation is checked
    before each. On an error every lane finishes the file in hand (no media call is abandoned
    mid-way), then the first error is raised. What was done is written in every case, also when
    cancelled. A step that goes through its videos a chunk at a time passes the chunks' overall
    ``total`` and the videos ``done_before`` this one, so its progress reads as one.
    """
    done = done_before
    total = len(videos) if total is None else total
    pending: list[Row] = []
    queue = iter(videos)
    await job.report(phase, done, total)

    async def flush() -> None:
        rows = pending[:]
        pending.clear()
        if rows:
            await write(rows)

    async def lane() -> None:
        nonlocal done
        for video in queue:
            job.check_cancelled()
            row = await work(video)
            if row is not None:
                pending.append(row)
                if len(pending) >= batch_size:
                    await flush()
            done += 1
            await job.report(phase, done, total, video.display_path)

    try:
        lanes_run = await asyncio.gather(
            *(lane() for _ in range(max(1, min(lanes, len(videos))))), return_exceptions=True
        )
        for result in lanes_run:
            if isinstance(result, BaseException):
                raise result
    finally:
        await flush()


# Videos read from the store at a time, by id or a page of a status (a first index queues a million).
_PROBE_CHUNK = 2_000
# Rows of a page of a status: the store makes a page's videos on the event loop, about 5 us each
# (2,000 of them were the loop's longest steps in bench P9, 10-18 ms at load 14).
_PAGE_ROWS = 500
# Changes published between two yields to the event loop.
_PUBLISH_YIELD_EVERY = 100
_EMPTY_REASON = "empty file"
# Folders whose topmost subtrees are found on the loop; past that, in a thread (as the sync engine does).
_SUBTREES_ON_LOOP = 1000


@dataclass(eq=False)
class ProbeStep:
    """PROBING: metadata of the videos the job added or changed, and the PENDING ones of a root synced
    whole or of every root of a job whose changes were too many to name (read by pages of the store).

    Empty files first, set-wise (``MediaStore.break_empty_videos``): an empty file is known without
    opening it, and a library of placeholders (bench P9: 10,000) took ~135 us of the server's CPU per
    file when each was read, written and published one by one beside the queries. They are published
    as the sync publishes what it wrote: one UPDATED each up to ``summary_threshold``, past it one
    SUBTREE_CHANGED per topmost folder holding them. Each is a failure of the job; the first
    ``MAX_ERRORS_KEPT`` are listed by path (a job keeps no more), the rest counted.
    """

    store: MediaStore
    media: MediaTool
    batch_size: int = _WRITE_BATCH
    summary_threshold: int = 2000

    async def __call__(self, job: RunningJob) -> None:
        ids = list(dict.fromkeys(job.changed_video_ids))  # none when they were many
        root_ids = _catch_up_root_ids(job)
        pending = await self.store.count_videos(root_ids, VideoStatus.PENDING)
        if not ids and not pending:
            return
        await job.report(SyncPhase.PROBING, 0, len(ids) + pending)
        done = 0
        empty = await self._break_empty(job, root_ids, ids)
        if empty.count:
            done = empty.count
            pending = await self.store.count_videos(root_ids, VideoStatus.PENDING)
            last = _display_path(empty.videos[-1][2], empty.videos[-1][3]) if empty.videos else None
            # The named ones among them are not probed again (a job naming its videos found them there).
            await job.report(SyncPhase.PROBING, done, max(done, len(ids)) + pending, last)

        async def probe(video: VideoFile) -> tuple[VideoFile, MediaInfo] | None:
            try:
                info = await self.media.probe(video.file_path)
            except MediaError as error:
                job.add_error(video.display_path, f"cannot be read: {error}")
                return None
            if info.status is VideoStatus.BROKEN:
                job.add_error(video.display_path, info.error or "cannot be decoded")
            return video, info

        async def write(rows: Sequence[tuple[VideoFile, MediaInfo]]) -> None:
            await _write_media_infos(self.store, rows, job)

        async def work(videos: Sequence[VideoFile], done: int, total: int) -> None:
            await _work_in_batches(job, SyncPhase.PROBING, videos, probe, write, lanes=self.media.workers,
                                   batch_size=self.batch_size, done_before=done, total=total)  # fmt: skip

        # A chunk of the videos in memory at a time: first those named by id, then the PENDING ones of
        # the caught-up roots by pages of the store's (a first index of a million files: all of them).
        caught_up = set(root_ids)
        for start in range(0, len(ids), _PROBE_CHUNK):
            # Not the empty ones (BROKEN above), nor those probed already.
            videos = await self.store.get_video_files(ids[start : start + _PROBE_CHUNK], needing="probe")
            # Those of a caught-up root come with its pages (still PENDING).
            videos = [video for video in videos if video.root_id not in caught_up]
            if videos:
                await work(videos, done, done + len(videos) + max(0, len(ids) - start - _PROBE_CHUNK) + pending)
            done += len(videos)
        total = done + pending
        after: VideoCursor | None = None
        while root_ids:
            videos, after = await self.store.videos_page(root_ids, VideoStatus.PENDING, after, _PAGE_ROWS)
            if not videos:
                break
            total = max(total, done + len(videos))
            await work(videos, done, total)
            done += len(videos)

    async def _break_empty(self, job: RunningJob, root_ids: Sequence[int], ids: Sequence[int]) -> EmptyVideos:
        """The empty files of the job (named or PENDING in ``root_ids``) BROKEN at once, their errors and events."""
        threshold = self.summary_threshold
        empty = await self.store.break_empty_videos(
            root_ids, ids, _EMPTY_REASON, listed=max(threshold, MAX_ERRORS_KEPT), folders_over=threshold
        )
        if not empty.count:
            return empty
        listed = empty.videos[:MAX_ERRORS_KEPT]
        for _id, _root_id, root_path, path in listed:
            job.add_error(_display_path(root_path, path), _EMPTY_REASON)
        job.count_failures(empty.count - len(listed))
        if empty.count <= threshold:
            changes = [
                LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, video_id, root_id, root_path, path, None, job.job_id)
                for video_id, root_id, root_path, path in empty.videos
            ]
        else:
            changes = await _subtrees_changed(job, empty.folders)
        await _publish(job, changes)
        return empty


async def _write_media_infos(store: MediaStore, rows: Sequence[tuple[VideoFile, MediaInfo]], job: RunningJob) -> None:
    written = set(await store.set_media_infos(rows))
    await _publish_written(job, [video for video, _info in rows if video.id in written])


async def _publish_written(job: RunningJob, videos: Sequence[VideoFile]) -> None:
    """One UPDATED per video."""
    await _publish(job, [_change(video, job.job_id) for video in videos])


async def _publish(job: RunningJob, changes: Sequence[LibraryChange]) -> None:
    """Yielding to the loop every ``_PUBLISH_YIELD_EVERY`` (a query waits no longer)."""
    for count, change in enumerate(changes, 1):
        await job.publish_change(change)
        if count % _PUBLISH_YIELD_EVERY == 0:
            await asyncio.sleep(0)


def _display_path(root_path: str, path: str) -> str:
    """``VideoFile.display_path`` of a row."""
    return os.path.join(root_path, path) if path else root_path


async def _subtrees_changed(job: RunningJob, folders: Sequence[tuple[int, int, str]]) -> list[LibraryChange]:
    """One SUBTREE_CHANGED per topmost one of ``folders`` ((id, root id, path): none of them is above another)."""
    kept = {(root_id, path): folder_id for folder_id, root_id, path in folders}
    roots = {root.id: root for root in job.roots}
    root_folders = {root_id: root.folder_id for root_id, root in roots.items()}
    if len(kept) > _SUBTREES_ON_LOOP:
        subtrees = await asyncio.to_thread(topmost_subtrees, set(kept), kept, root_folders)
    else:
        subtrees = topmost_subtrees(set(kept), kept, root_folders)
    root_paths = {root_id: root.path for root_id, root in roots.items()}
    kind, entry_kind, job_id = ChangeKind.SUBTREE_CHANGED, EntryKind.FOLDER, job.job_id
    return [
        LibraryChange(kind, entry_kind, folder_id, root_id, root_paths.get(root_id), path, None, job_id)
        for folder_id, root_id, path in subtrees
    ]


@dataclass(eq=False)
class ThumbnailStep:
    """THUMBNAILS: one image per READY video version; removed videos' images deleted."""

    store: MediaStore
    media: MediaTool
    spec: ThumbnailSpec
    batch_size: int = _WRITE_BATCH

    async def __call__(self, job: RunningJob) -> None:
        removed = job.removed_video_ids
        if removed and not removed.many:
            await asyncio.to_thread(remove_thumbnail_files, self.spec.directory, set(removed))
        changed = job.changed_video_ids
        root_ids = _full_root_ids(job.scopes)
        if root_ids or removed.many:
            # A whole-root sync also sweeps what an interrupted job left behind; the images of videos
            # removed in numbers too great to name are such orphans too.
            await self._remove_orphans()
        ids = list(dict.fromkeys(changed))  # none when they were many
        done = 0
        for start in range(0, len(ids), _PROBE_CHUNK):
            videos = await self.store.get_video_files(ids[start : start + _PROBE_CHUNK], needing="thumbnail")
            done = await self._draw(job, videos, done)
        if changed.many:
            # Which READY video changed is not known: any whose key is not its version's gets a new image,
            # and a BROKEN one forgets the image of an earlier version.
            every_root = sorted({scope.root_id for scope in job.scopes})
            async for videos in self._pages(every_root, VideoStatus.READY, None, stale_for=self.spec.suffix):
                done = await self._draw(job, videos, done)
            async for videos in self._pages(every_root, VideoStatus.BROKEN, True):
                done = await self._draw(job, videos, done)
        elif root_ids:
            named = set(ids)  # drawn above (or failed there: not twice)
            async for videos in self._pages(root_ids, VideoStatus.READY, False):
                done = await self._draw(job, [video for video in videos if video.id not in named], done)

    async def _remove_orphans(self) -> None:
        """Delete the images no video's key names, a batch of the folder at a time (by id: no set of every key).

        A job killed between removing a video's row and deleting its images, or between writing an
        image and recording its key, leaves such files; nothing else would ever delete them.
        """
        started_s = time.time()
        listing = video_thumbnails(self.spec.directory)
        removed = 0
        try:
            while batch := await asyncio.to_thread(lambda: list(itertools.islice(listing, _PROBE_CHUNK))):
                # Keys only: a VideoFile per image was ~5 us of the loop's each (10,000 images: 47 ms a sweep).
                keys = await self.store.thumbnail_keys(list(dict.fromkeys(video_id for video_id, _ in batch)))
                orphans = [self.spec.path_for(name) for video_id, name in batch if keys.get(video_id) != name]
                if orphans:
                    # Only an orphan's age is read (a stat per image was most of the listing's time).
                    removed += await asyncio.to_thread(remove_files_written_before, orphans, started_s)
        finally:
            listing.close()
        if removed:
            logger.info("removed %d orphan thumbnails", removed)

    async def _pages(
        self, root_ids: Sequence[int], status: VideoStatus, keyed: bool | None, *, stale_for: str | None = None
    ) -> AsyncIterator[list[VideoFile]]:
        after: VideoCursor | None = None
        while True:
            videos, after = await self.store.videos_page(
                root_ids, status, after, _PAGE_ROWS, keyed=keyed, stale_for=stale_for
            )
            if not videos:
                return
            yield videos

    async def _draw(self, job: RunningJob, videos: Sequence[VideoFile], done: int) -> int:
        """Thumbnails of those of ``videos`` whose key is not their version's; returns ``done`` plus those drawn."""
        # A BROKEN video shows the placeholder: forget a thumbnail of an earlier version.
        stale = [(v, None) for v in videos if v.status is VideoStatus.BROKEN and v.thumbnail_key]
        if stale:
            await _write_thumbnails(self.store, self.spec, stale, job)
        todo = [v for v in videos if v.status is VideoStatus.READY and not self.spec.is_current(v)]
        if not todo:
            return done

        async def make_thumbnail(video: VideoFile) -> tuple[VideoFile, str | None]:
            key = self.spec.key_for(video)
            try:
                await self.media.make_thumbnail(video.file_path, self.spec.path_for(key), self.spec.width_px)
            except MediaError as error:
                job.add_error(video.display_path, f"no thumbnail: {error}")
                return video, None
            return video, key

        async def write(rows: Sequence[tuple[VideoFile, str | None]]) -> None:
            await _write_thumbnails(self.store, self.spec, rows, job)

        await _work_in_batches(job, SyncPhase.THUMBNAILS, todo, make_thumbnail, write, lanes=self.media.workers,
                               batch_size=self.batch_size, done_before=done, total=done + len(todo))  # fmt: skip
        return done + len(todo)


async def _write_thumbnails(
    store: MediaStore, spec: ThumbnailSpec, rows: Sequence[tuple[VideoFile, str | None]], job: RunningJob | None
) -> list[int]:
    """Write keys; delete the replaced images, and the new ones whose video changed meanwhile."""
    written = set(await store.set_thumbnails(rows))
    garbage: list[str] = []
    for video, key in rows:
        if video.id in written:
            if video.thumbnail_key and video.thumbnail_key != key:
                garbage.append(spec.path_for(video.thumbnail_key))
        elif key is not None:
            garbage.append(spec.path_for(key))
    if garbage:
        await asyncio.to_thread(remove_files, garbage)
    if job is not None:
        for video, _key in rows:
            if video.id in written:
                await job.publish_change(_change(video, job.job_id))
    return sorted(written)


async def regenerate_thumbnail(video_id: int, store: MediaStore, media: MediaTool, spec: ThumbnailSpec) -> str | None:
    """Redo one video's thumbnail now; returns its new key (None: the placeholder is shown).

    A PENDING video is probed first. The new key differs from the old one (browsers refetch).

    Raises:
        LookupError: no such video.
        MediaError: the image could not be made (the key is cleared: placeholder).
    """
    video = await store.get_video_file(video_id)
    if video is None:
        raise LookupError(f"no video {video_id}")
    if video.status is VideoStatus.PENDING:
        info = await media.probe(video.file_path)
        await store.set_media_infos([(video, info)])
        video = await store.get_video_file(video_id)
        if video is None:
            raise LookupError(f"no video {video_id}")
    if video.status is not VideoStatus.READY:
        await _write_thumbnails(store, spec, [(video, None)], None)
        return None
    key = spec.key_for(video, regeneration=time.time_ns())
    try:
        await media.make_thumbnail(video.file_path, spec.path_for(key), spec.width_px)
    except MediaError:
        await _write_thumbnails(store, spec, [(video, None)], None)
        raise
    written = await _write_thumbnails(store, spec, [(video, key)], None)
    return key if written else None


@dataclass(eq=False)
class MediaWork:
    """Everything media for the app to wire: the job steps and the API's actions, sharing one setup.

    Args:
        store: the media fields of the index (``SqlMediaStore``).
        media: the media tool (``PyAvMediaTool``).
        thumbnails: where thumbnails go and their width/format.
        auto_merge: settings.hls_auto_merge.
        delete_source: settings.hls_delete_source (the default of ``merge_hls``).
        downloads: where each HLS download's state is recorded (``SqlDownloadLog``); None: nowhere.
        summary_threshold: settings.sync_summary_threshold (past it, probing publishes summaries).
    """

    store: MediaStore
    media: MediaTool
    thumbnails: ThumbnailSpec
    _: KW_ONLY
    auto_merge: bool = True
    delete_source: bool = False
    downloads: DownloadLog | None = None
    summary_threshold: int = 2000

    def steps(self) -> list[MergeStep | ProbeStep | ThumbnailStep]:
        """The steps to run after every job's index writes, in order."""
        return [
            MergeStep(self.media, self.auto_merge, self.delete_source, self.downloads),
            ProbeStep(self.store, self.media, summary_threshold=self.summary_threshold),
            ThumbnailStep(self.store, self.media, self.thumbnails),
        ]

    async def merge_hls(self, path: str, delete_source: bool | None = None) -> MergeOutcome:
        """``mergeHls(path, deleteSource)``; then sync the output's folder to index it.

        The download's state is recorded as the merge left it.
        """
        outcome = await merge_hls(path, self.delete_source if delete_source is None else delete_source, self.media)
        if self.downloads is not None:
            await record_merge(self.downloads, path, outcome)
        return outcome

    async def regenerate_thumbnail(self, video_id: int) -> str | None:
        """``regenerateThumbnail(id)``: the new key, or None when the placeholder is shown (reason logged).

        Raises ``LookupError`` for an unknown id; a media failure is not raised (the API re-reads the row).
        """
        try:
            return await regenerate_thumbnail(video_id, self.store, self.media, self.thumbnails)
        except MediaError as error:
            logger.warning("no thumbnail for video %s: %s", video_id, error)
            return None

    def thumbnail_file(self, key: str | None) -> str | None:
        """The image file of a thumbnail key, or None (serve the placeholder) for no key or a bad one."""
        if key is None:
            return None
        try:
            return self.thumbnails.path_for(key)
        except ValueError:
            return None
