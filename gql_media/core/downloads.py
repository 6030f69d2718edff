"""HLS downloads in a sync job and on demand: merged, or their state and reason recorded (never silent).

Standard library only: the media tool and the store come in through ``ports`` (``MediaTool``, ``DownloadLog``).

Each sync job's ``MergeStep`` (MERGING, before probing) looks at every HLS download folder under
the job's scopes (``hls.list_hls_downloads``: a variant folder stands for its master's download)
and gives each a ``DownloadStatus``:
- ``WAITING``: segments (or a master's variants) still missing, the download is not finished;
  the reason names the first missing file.
- ``READY``: complete and not merged yet (automatic merging is off): the user may merge it.
- ``MERGED``: merged (now, or earlier: the marker matches the playlist); ``output_path`` says where.
- ``FAILED``: refused (encrypted without its key, SAMPLE-AES, a segment outside the folder...) or
  the merge failed (a corrupt segment, a full disk); the reason says which.
Complete downloads are merged (``settings.hls_auto_merge``) and the merged files indexed in the
same job. The statuses are written to the store (``DownloadLog``), replacing what an earlier
job said about the same folders; the API lists them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gql_media.core.hls import (
    MERGE_DURATION_TOLERANCE_S,
    HlsError,
    HlsIncomplete,
    downloads_among,
    find_playlist,
    list_hls_downloads,
    merged_output,
    parse_playlist,
    remove_source,
)
from gql_media.core.hls_layout import read_playlist, resolve_uri
from gql_media.core.m3u8 import MasterPlaylist
from gql_media.core.models import (
    DownloadState,
    DownloadStatus,
    MergeOutcome,
    Root,
    Scope,
    SyncPhase,
    SyncTarget,
    VideoStatus,
)
from gql_media.core.ports import DownloadLog, MediaError, MediaTool, RunningJob

logger = logging.getLogger(__name__)

__all__ = [
    "DownloadLog",
    "DownloadState",
    "DownloadStatus",
    "MergeStep",
    "inspect_download",
    "merge_hls",
    "record_merge",
]


def _counts(playlist_path: str) -> tuple[int, int]:
    """(present, expected) segments of a media playlist, best effort (a master: the first variant's)."""
    try:
        playlist = read_playlist(playlist_path)
        folder = os.path.dirname(playlist_path)
        if isinstance(playlist, MasterPlaylist):
            if not playlist.variants:
                return 0, 0
            return _counts(resolve_uri(playlist.variants[0].uri, folder, folder))
        paths = [resolve_uri(segment.uri, folder, folder) for segment in playlist.segments]
    except (HlsError, OSError):
        return 0, 0
    return sum(1 for path in paths if os.path.isfile(path)), len(paths)


def inspect_download(folder: str) -> DownloadStatus | None:
    """The state of the download in ``folder`` as its files are now (blocking); None when it is none."""
    playlist_path = find_playlist(folder)
    if playlist_path is None:
        return None
    name = os.path.basename(playlist_path)
    now = time.time()
    output = merged_output(playlist_path)
    try:
        playlist = parse_playlist(playlist_path)
    except HlsIncomplete as error:
        return DownloadStatus(folder, DownloadState.WAITING, str(error), error.present, error.expected, name, None, now)
    except (HlsError, OSError) as error:
        if output is not None:  # merged, then a file went: it stays merged
            present, expected = _counts(playlist_path)
            return DownloadStatus(folder, DownloadState.MERGED, None, present, expected, name, output, now)
        reason = str(error) if isinstance(error, HlsError) else (error.strerror or str(error))
        present, expected = _counts(playlist_path)
        return DownloadStatus(folder, DownloadState.FAILED, reason, present, expected, name, None, now)
    count = playlist.segment_count
    state = DownloadState.MERGED if output is not None else DownloadState.READY
    return DownloadStatus(folder, state, None, count, count, name, output, now)


def _after_merge(status: DownloadStatus, outcome: MergeOutcome) -> DownloadStatus:
    now = time.time()
    if outcome.ok:
        return replace(
            status, state=DownloadState.MERGED, reason=outcome.error, output_path=outcome.output_path, updated_at=now
        )
    return replace(status, state=DownloadState.FAILED, reason=outcome.error, updated_at=now)


@dataclass(eq=False)
class MergeStep:
    """MERGING: HLS downloads under the job's scopes become mp4s beside them, indexed in the same job.

    Args:
        media: the media tool that merges.
        auto_merge: settings.hls_auto_merge (off: downloads are only looked at and recorded).
        delete_source: settings.hls_delete_source.
        log: where statuses are recorded; None records nothing.
    """

    media: MediaTool
    auto_merge: bool = True
    delete_source: bool = False
    log: DownloadLog | None = None

    async def __call__(self, job: RunningJob) -> None:
        if not self.auto_merge and self.log is None:
            return
        roots = {root.id: root for root in job.roots}
        scopes: list[tuple[str, bool]] = []
        for scope in job.scopes:
            top = _scope_path(roots.get(scope.root_id), scope)
            if top is not None:
                scopes.append((top, scope.recursive))
        # A recursive scope the job walked: only the folders its walk found naming a playlist are
        # looked at (a second walk of 100k files took as long as half the sync's own).
        walked = [job.playlist_folders_under(top) if recursive else None for top, recursive in scopes]
        statuses = await asyncio.to_thread(_inspect_all, scopes, walked)
        todo = [s for s in statuses if s.state is DownloadState.READY] if self.auto_merge else []
        if todo:
            statuses = await self._merge(job, statuses, todo)
        if self.log is not None:
            await self.log.record(statuses, scopes)

    async def _merge(
        self, job: RunningJob, statuses: list[DownloadStatus], todo: list[DownloadStatus]
    ) -> list[DownloadStatus]:
        await job.report(SyncPhase.MERGING, 0, len(todo))
        targets: list[SyncTarget] = []
        done_statuses: dict[str, DownloadStatus] = {}
        try:
            for done, status in enumerate(todo, start=1):
                job.check_cancelled()
                folder = status.folder
                outcome = await merge_hls(folder, self.delete_source, self.media)
                done_statuses[folder] = _after_merge(status, outcome)
                if outcome.ok:
                    targets.append(SyncTarget(path=os.path.dirname(folder.rstrip(os.sep)), recursive=False))
                    if outcome.error:
                        job.add_error(folder, outcome.error)
                else:
                    job.add_error(folder, f"HLS merge failed: {outcome.error}")
                await job.report(SyncPhase.MERGING, done, len(todo), folder)
        finally:
            if targets:
                await job.sync_targets(list(dict.fromkeys(targets)))
        return [done_statuses.get(s.folder, s) for s in statuses]


async def record_merge(log: DownloadLog, path: str, outcome: MergeOutcome) -> None:
    """Record the state of the download at ``path`` (its folder or playlist) after an asked-for merge."""
    folder = path if not path.lower().endswith(".m3u8") else os.path.dirname(path)
    status = await asyncio.to_thread(inspect_download, folder)
    if status is None:
        if not outcome.ok or outcome.output_path is None:
            return  # no download here (a wrong path): nothing to say about it
        # Merged and its source deleted: the folder is gone, its download merged.
        status = DownloadStatus(folder, DownloadState.MERGED, outcome.error, output_path=outcome.output_path)
    elif outcome.ok or status.state is not DownloadState.WAITING:
        status = _after_merge(status, outcome)
    await log.record([status])


def _inspect_all(scopes: Sequence[tuple[str, bool]], walked: Sequence[list[str] | None]) -> list[DownloadStatus]:
    """The statuses of the downloads under ``scopes``; ``walked``: each scope's folders naming a playlist, as
    the job's walk found them (None: looked for on disk)."""
    statuses: dict[str, DownloadStatus] = {}
    for (top, recursive), candidates in zip(scopes, walked, strict=True):
        found = list_hls_downloads([top], recursive) if candidates is None else downloads_among(candidates)
        for folder in found:
            if folder not in statuses and (status := inspect_download(folder)) is not None:
                statuses[folder] = status
    return list(statuses.values())


def _scope_path(root: Root | None, scope: Scope) -> str | None:
    if root is None:
        return None
    return os.path.join(root.path, scope.path) if scope.path else root.path


async def merge_hls(path: str, delete_source: bool, media: MediaTool) -> MergeOutcome:
    """Merge the HLS download at ``path`` (its folder or its .m3u8) into ``<folder>.mp4`` beside it.

    Already merged (marker) and the output still there and sound: no second merge, that output
    is returned (and the source removed if asked). The source is removed only after a verified
    merge, only when ``delete_source``, and only if it holds nothing but the download.
    Never raises for a media reason: ``MergeOutcome.ok`` and ``error`` say what happened.
    """
    playlist_path = await asyncio.to_thread(_playlist_of, path)
    if playlist_path is None:
        return MergeOutcome(
            path, None, ok=False, source_deleted=False, error="no HLS playlist with local segments here"
        )
    try:
        playlist = await asyncio.to_thread(parse_playlist, playlist_path)
    except HlsError as error:
        return MergeOutcome(playlist_path, None, ok=False, source_deleted=False, error=str(error))
    except OSError as error:
        return MergeOutcome(playlist_path, None, ok=False, source_deleted=False, error=error.strerror or str(error))
    output = await _sound_previous_output(playlist_path, playlist.duration_s, media)
    if output is None:
        try:
            output = await media.merge_hls(playlist)
        except MediaError as error:
            return MergeOutcome(playlist_path, None, ok=False, source_deleted=False, error=str(error))
        logger.info("merged %s into %s", playlist.folder, output)
    note = None
    if delete_source:
        note = await asyncio.to_thread(remove_source, playlist)
    return MergeOutcome(playlist_path, output, ok=True, source_deleted=delete_source and note is None, error=note)


def _playlist_of(path: str) -> str | None:
    if path.lower().endswith(".m3u8") and os.path.isfile(path):
        return path
    return find_playlist(path) if os.path.isdir(path) else None


async def _sound_previous_output(playlist_path: str, duration_s: float, media: MediaTool) -> str | None:
    """The output of an earlier merge when it still exists and still matches the playlist."""
    previous = await asyncio.to_thread(merged_output, playlist_path)
    if previous is None or not await asyncio.to_thread(os.path.isfile, previous):
        return None
    try:
        info = await media.probe(previous)
    except MediaError:
        return None
    if info.status is not VideoStatus.READY or info.duration_s is None:
        return None
    if abs(info.duration_s - duration_s) > MERGE_DURATION_TOLERANCE_S:
        return None
    return previous
