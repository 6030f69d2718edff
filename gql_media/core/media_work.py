"""The media phases of a sync job (MERGING, PROBING, THUMBNAILS) and the media actions of the API.

Standard library only: the store and the media tool come in through ``ports.MediaStore`` and
``ports.MediaTool``, the running job through ``ports.RunningJob``.

Order in a job: ``MergeStep`` (``downloads``: turns HLS downloads into mp4s, has them indexed in
the same job and records each download's state), then ``ProbeStep`` (metadata of every added or
changed video), then ``ThumbnailStep``. A file's failure is recorded on the job (``add_error``)
and the job goes on; cancelling the job stops a phase between two files. Results are written in
small batches by the single writer and each video filled in is published as an UPDATED change
after its row is written.

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
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TypeVar

from gql_media.core.downloads import DownloadLog, MergeStep, merge_hls, record_merge
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
from gql_media.core.ports import MediaError, MediaStore, MediaTool, RunningJob, VideoCursor
from gql_media.core.thumbnails import ThumbnailSpec, remove_files, remove_thumbnail_files, video_thumbnails

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
# Empty files' results per write (they need no worker): a write transaction per 64 of them was
# most of the PROBING phase of a library of placeholders (bench P9: 10,000 of them).
_EMPTY_WRITE_BATCH = 500
# Changes published between two yields to the event loop.
_PUBLISH_YIELD_EVERY = 100
_EMPTY_REASON = "empty file"
_EMPTY_FILE = MediaInfo(status=VideoStatus.BROKEN, error=_EMPTY_REASON)


@dataclass(eq=False)
class ProbeStep:
    """PROBING: metadata of the videos the job added or changed, and the PENDING ones of a root synced
    whole or of every root of a job whose changes were too many to name (read by pages of the store)."""

    store: MediaStore
    media: MediaTool
    batch_size: int = _WRITE_BATCH

    async def __call__(self, job: RunningJob) -> None:
        ids = list(dict.fromkeys(job.changed_video_ids))  # none when they were many
        root_ids = _catch_up_root_ids(job)
        pending = await self.store.count_videos(root_ids, VideoStatus.PENDING)
        if not ids and not pending:
            return

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
            # An empty file is known without opening it: no worker round trip (a library of
            # placeholders would otherwise queue one per file), nor a write per worker batch. If it
            # grew meanwhile, the sync that sees the new size probes it again.
            empty = [video for video in videos if video.size == 0]
            if empty:
                await job.report(SyncPhase.PROBING, done, total)
            for first in range(0, len(empty), _EMPTY_WRITE_BATCH):
                job.check_cancelled()
                rows = [(video, _EMPTY_FILE) for video in empty[first : first + _EMPTY_WRITE_BATCH]]
                for video, _info in rows:
                    job.add_error(video.display_path, _EMPTY_REASON)
                await write(rows)
                done += len(rows)
                await job.report(SyncPhase.PROBING, done, total, rows[-1][0].display_path)
            probed = [video for video in videos if video.size != 0]
            if probed:
                await _work_in_batches(job, SyncPhase.PROBING, probed, probe, write, lanes=self.media.workers,
                                       batch_size=self.batch_size, done_before=done, total=total)  # fmt: skip

        # A chunk of the videos in memory at a time: first those named by id, then the PENDING ones of
        # the caught-up roots by pages of the store's (a first index of a million files: all of them).
        done = 0
        caught_up = set(root_ids)
        for start in range(0, len(ids), _PROBE_CHUNK):
            videos = await self.store.get_video_files(ids[start : start + _PROBE_CHUNK])
            # Those of a caught-up root come with its pages (still PENDING) or are probed already.
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


async def _write_media_infos(store: MediaStore, rows: Sequence[tuple[VideoFile, MediaInfo]], job: RunningJob) -> None:
    written = set(await store.set_media_infos(rows))
    await _publish_written(job, [video for video, _info in rows if video.id in written])


async def _publish_written(job: RunningJob, videos: Sequence[VideoFile]) -> None:
    """One UPDATED per video, yielding to the loop every ``_PUBLISH_YIELD_EVERY`` (a query waits no longer)."""
    for count, video in enumerate(videos, 1):
        await job.publish_change(_change(video, job.job_id))
        if count % _PUBLISH_YIELD_EVERY == 0:
            await asyncio.sleep(0)


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
            done = await self._draw(job, await self.store.get_video_files(ids[start : start + _PROBE_CHUNK]), done)
        if changed.many:
            # Which READY video changed is not known: any whose key is not its version's gets a new image,
            # and a BROKEN one forgets the image of an earlier version.
            every_root = sorted({scope.root_id for scope in job.scopes})
            async for videos in self._pages(every_root, VideoStatus.READY, None):
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
        listing = video_thumbnails(self.spec.directory, time.time())
        removed = 0
        try:
            while batch := await asyncio.to_thread(lambda: list(itertools.islice(listing, _PROBE_CHUNK))):
                videos = await self.store.get_video_files(list(dict.fromkeys(video_id for video_id, _ in batch)))
                keys = {video.id: video.thumbnail_key for video in videos}
                orphans = [self.spec.path_for(name) for video_id, name in batch if keys.get(video_id) != name]
                if orphans:
                    await asyncio.to_thread(remove_files, orphans)
                    removed += len(orphans)
        finally:
            listing.close()
        if removed:
            logger.info("removed %d orphan thumbnails", removed)

    async def _pages(
        self, root_ids: Sequence[int], status: VideoStatus, keyed: bool | None
    ) -> AsyncIterator[list[VideoFile]]:
        after: VideoCursor | None = None
        while True:
            videos, after = await self.store.videos_page(root_ids, status, after, _PAGE_ROWS, keyed=keyed)
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
    """

    store: MediaStore
    media: MediaTool
    thumbnails: ThumbnailSpec
    _: KW_ONLY
    auto_merge: bool = True
    delete_source: bool = False
    downloads: DownloadLog | None = None

    def steps(self) -> list[MergeStep | ProbeStep | ThumbnailStep]:
        """The steps to run after every job's index writes, in order."""
        return [
            MergeStep(self.media, self.auto_merge, self.delete_source, self.downloads),
            ProbeStep(self.store, self.media),
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
