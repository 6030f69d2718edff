"""The videos' media fields (probe results, thumbnail keys): the ``core.ports.MediaStore`` port.

Every write is guarded by the file version it was made from (size, mtime_ns): a file that
changed while it was probed keeps its PENDING state and is probed again by the next job.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gql_media.adapters.store.db import Db, RawConnection
from gql_media.adapters.store.tables import VIDEOS_IN_FOLDERS, video_path
from gql_media.core.models import MediaInfo, VideoFile, VideoStatus
from gql_media.core.ports import EmptyVideos, VideoCursor, VideoNeed

__all__ = ["SqlMediaStore"]

# Ids per IN (...) list: far below SQLite's and asyncpg's parameter limits.
_CHUNK = 500
# Empty files marked BROKEN a transaction at a time (see ``break_empty_videos``).
_EMPTY_UPDATE_ROWS = 5000

_FILE_COLUMNS = f"v.id, v.root_id, r.path, {video_path()}, v.path_bytes, v.size, v.mtime_ns, v.status, v.thumbnail_key"
# A video's path is its folder's and its name (migration 0010).
_FROM = f" FROM {VIDEOS_IN_FOLDERS} JOIN roots r ON r.id = v.root_id"
_SELECT_FILES = f"SELECT {_FILE_COLUMNS}{_FROM}"
# A key that is not one of its video's version's (``ThumbnailSpec.is_current``: "<id>-<size>-<mtime_ns>",
# then the suffix or "-<regeneration>" and the suffix), in SQL both backends take.
_VERSION = "CAST(v.id AS TEXT) || '-' || CAST(v.size AS TEXT) || '-' || CAST(v.mtime_ns AS TEXT)"
_STALE_KEY = (
    f" AND (v.thumbnail_key IS NULL OR NOT (v.thumbnail_key = {_VERSION} || ?"
    f" OR (substr(v.thumbnail_key, 1, length({_VERSION}) + 1) = {_VERSION} || '-'"
    " AND substr(v.thumbnail_key, length(v.thumbnail_key) - ? + 1) = ?)))"
)
# What a step needs of its named videos (``get_video_files``): the statuses are constants of ours.
_NEEDING: dict[VideoNeed, str] = {
    "probe": f" AND v.status = '{VideoStatus.PENDING.value}' AND v.size <> 0",
    "thumbnail": f" AND (v.status = '{VideoStatus.READY.value}'"
    f" OR (v.status = '{VideoStatus.BROKEN.value}' AND v.thumbnail_key IS NOT NULL))",
}


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    unique = list(dict.fromkeys(int(i) for i in ids))
    return [unique[start : start + _CHUNK] for start in range(0, len(unique), _CHUNK)]


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _video_file(row: tuple[Any, ...]) -> VideoFile:
    root_path, path, path_bytes = str(row[2]), str(row[3]), row[4]
    file_path: str | bytes
    if path_bytes is not None:
        # A name that is not UTF-8: open it by its real bytes.
        file_path = os.path.join(os.fsencode(root_path), bytes(path_bytes))
    else:
        file_path = os.path.join(root_path, path)
    return VideoFile(
        id=int(row[0]),
        root_id=int(row[1]),
        root_path=root_path,
        path=path,
        file_path=file_path,
        size=int(row[5]),
        mtime_ns=int(row[6]),
        status=VideoStatus(row[7]),
        thumbnail_key=row[8],
    )


class SqlMediaStore:
    """Implements ``MediaStore`` on a ``Db`` (SQLite or PostgreSQL)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def get_video_files(self, ids: Sequence[int], *, needing: VideoNeed | None = None) -> list[VideoFile]:
        files: list[VideoFile] = []
        needed = "" if needing is None else _NEEDING[needing]
        async with self.db.reading() as conn:
            for chunk in _chunks(ids):
                rows = await conn.fetch(f"{_SELECT_FILES} WHERE v.id IN ({_placeholders(len(chunk))}){needed}", chunk)
                files.extend(_video_file(row) for row in rows)
        order = {video_id: n for n, video_id in enumerate(dict.fromkeys(ids))}
        files.sort(key=lambda f: order.get(f.id, 0))
        return files

    async def thumbnail_keys(self, ids: Sequence[int]) -> dict[int, str | None]:
        keys: dict[int, str | None] = {}
        async with self.db.reading() as conn:
            for chunk in _chunks(ids):
                rows = await conn.fetch(
                    f"SELECT id, thumbnail_key FROM videos WHERE id IN ({_placeholders(len(chunk))})", chunk
                )
                keys.update((int(row[0]), row[1]) for row in rows)
        return keys

    async def get_video_file(self, video_id: int) -> VideoFile | None:
        """One video's file for the API (thumbnail and stream routes) and regenerateThumbnail."""
        async with self.db.reading() as conn:
            row = await conn.fetch_one(f"{_SELECT_FILES} WHERE v.id = ?", (video_id,))
        return _video_file(row) if row is not None else None

    async def videos_page(
        self,
        root_ids: Sequence[int],
        status: VideoStatus,
        after: VideoCursor | None,
        limit: int,
        *,
        keyed: bool | None = None,
        stale_for: str | None = None,
    ) -> tuple[list[VideoFile], VideoCursor | None]:
        """A page in (name, id) order: a range of the (status, name, id) index, however many rows the
        status has (a first index leaves a million PENDING; ordered by id, each page sorted them all).

        ``stale_for``: the key's test is SQL, so a job that changed too many videos to name reads only
        the READY ones to draw, not a VideoFile per READY video of its roots (~5 us of the loop's each)."""
        if not root_ids:
            return [], None
        where = f"v.status = ? AND v.root_id IN ({_placeholders(len(root_ids))})"
        params: list[Any] = [status.value, *root_ids]
        if keyed is not None:
            where += " AND v.thumbnail_key IS NOT NULL" if keyed else " AND v.thumbnail_key IS NULL"
        if stale_for is not None:
            where += _STALE_KEY
            params += [stale_for, len(stale_for), stale_for]
        if after is not None:
            where += " AND (v.name, v.id) > (?, ?)"
            params += [after[0], after[1]]
        async with self.db.reading() as conn:
            rows = await conn.fetch(
                f"SELECT {_FILE_COLUMNS}, v.name{_FROM} WHERE {where} ORDER BY v.name, v.id LIMIT ?", [*params, limit]
            )
        if not rows:
            return [], None
        last = rows[-1]
        return [_video_file(row) for row in rows], (str(last[9]), int(last[0]))

    async def count_videos(self, root_ids: Sequence[int], status: VideoStatus) -> int:
        """A range of the status index (``+root_id``: SQLite took the root's index and read all its videos)."""
        if not root_ids:
            return 0
        async with self.db.reading() as conn:
            row = await conn.fetch_one(
                f"SELECT COUNT(*) FROM videos WHERE status = ? AND +root_id IN ({_placeholders(len(root_ids))})",
                [status.value, *root_ids],
            )
        return 0 if row is None else int(row[0])

    async def set_media_infos(self, rows: Sequence[tuple[VideoFile, MediaInfo]]) -> list[int]:
        if not rows:
            return []
        async with self.db.writing() as conn:
            await conn.executemany(
                "UPDATE videos SET status = ?, duration_s = ?, width = ?, height = ?, video_codec = ?,"
                " audio_codec = ?, container = ?, bitrate = ?, error = ? WHERE id = ? AND size = ? AND mtime_ns = ?",
                [
                    (str(info.status), info.duration_s, info.width, info.height, info.video_codec, info.audio_codec,
                     info.container, info.bitrate, info.error, video.id, video.size, video.mtime_ns)
                    for video, info in rows
                ],
            )  # fmt: skip
            return await _unchanged_ids(conn, [video for video, _ in rows])

    async def break_empty_videos(
        self, root_ids: Sequence[int], ids: Sequence[int], error: str, *, listed: int, folders_over: int
    ) -> EmptyVideos:
        """Up to four statements per part (the roots, then each chunk of the ids not in those roots): a
        count, the first rows, the folders when many, one UPDATE; no video is built in Python.

        The roots' part searches the PENDING range of the status index (``+``: no index on size or
        root): by root, SQLite read every video of the root (a million after a first index), by
        size every empty file, the BROKEN ones too."""
        roots = [int(root_id) for root_id in dict.fromkeys(root_ids)]
        # Each part's condition, "{v}" for the table's alias; the parts are disjoint (counted once each).
        parts: list[tuple[str, list[Any]]] = []
        if roots:
            parts.append((f"+{{v}}root_id IN ({_placeholders(len(roots))})", roots))
        not_in_roots = f" AND {{v}}root_id NOT IN ({_placeholders(len(roots))})" if roots else ""
        parts.extend(
            (f"{{v}}id IN ({_placeholders(len(chunk))}){not_in_roots}", [*chunk, *roots]) for chunk in _chunks(ids)
        )
        if not parts:
            return EmptyVideos(0, [], [])
        pending = VideoStatus.PENDING.value
        empty = "{v}status = ? AND +{v}size = 0 AND "
        updates: list[tuple[str, list[Any], int]] = []
        async with self.db.writing() as conn:
            counts: list[int] = []
            for where, params in parts:
                row = await conn.fetch_one(
                    "SELECT COUNT(*) FROM videos WHERE " + (empty + where).format(v=""), [pending, *params]
                )
                counts.append(0 if row is None else int(row[0]))
            count = sum(counts)
            videos: list[tuple[int, int, str, str]] = []
            folders: dict[int, tuple[int, int, str]] = {}
            for (where, params), found in zip(parts, counts, strict=True):
                if not found:
                    continue
                if len(videos) < listed:
                    rows = await conn.fetch(
                        f"SELECT v.id, v.root_id, r.path, {video_path()}{_FROM} WHERE {(empty + where).format(v='v.')}"
                        " ORDER BY v.name, v.id LIMIT ?",
                        [pending, *params, listed - len(videos)],
                    )
                    videos.extend((int(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows)
                selected = (empty + where).format(v="")
                if count > folders_over:
                    holding = f"SELECT folder_id FROM videos WHERE {selected}"
                    rows = await conn.fetch(
                        f"SELECT id, root_id, path FROM folders WHERE id IN ({holding})", [pending, *params]
                    )
                    folders.update((int(r[0]), (int(r[0]), int(r[1]), str(r[2]))) for r in rows)
                updates.append((selected, params, found))
        # The UPDATEs a bounded number of rows to a transaction: one UPDATE of a part's every row (250k
        # empty files of a million-file library) held the whole change in one transaction, and the
        # server's RSS at start-up rose from 214 to 321-328 MB (bench --scale 1000000, P16). Each
        # statement re-checks PENDING and empty, so a file that changed meanwhile is left for its sync.
        for selected, params, found in updates:
            for _ in range(-(-found // _EMPTY_UPDATE_ROWS)):
                async with self.db.writing() as conn:
                    await conn.execute(
                        "UPDATE videos SET status = ?, duration_s = NULL, width = NULL, height = NULL,"
                        " video_codec = NULL, audio_codec = NULL, container = NULL, bitrate = NULL, error = ?"
                        f" WHERE id IN (SELECT id FROM videos WHERE {selected} LIMIT ?)",
                        [VideoStatus.BROKEN.value, error, pending, *params, _EMPTY_UPDATE_ROWS],
                    )
        return EmptyVideos(count, videos, sorted(folders.values(), key=lambda folder: (folder[1], folder[2])))

    async def set_media_info(self, video: VideoFile, info: MediaInfo) -> bool:
        """Write one probe result; False when the file changed since ``video`` was read."""
        return bool(await self.set_media_infos([(video, info)]))

    async def set_thumbnails(self, rows: Sequence[tuple[VideoFile, str | None]]) -> list[int]:
        if not rows:
            return []
        async with self.db.writing() as conn:
            await conn.executemany(
                "UPDATE videos SET thumbnail_key = ? WHERE id = ? AND size = ? AND mtime_ns = ?",
                [(key, video.id, video.size, video.mtime_ns) for video, key in rows],
            )
            return await _unchanged_ids(conn, [video for video, _ in rows])

    async def set_thumbnail(self, video: VideoFile, key: str | None) -> bool:
        """Write one thumbnail key; False when the file changed since ``video`` was read."""
        return bool(await self.set_thumbnails([(video, key)]))


async def _unchanged_ids(conn: RawConnection, videos: Sequence[VideoFile]) -> list[int]:
    """Which of ``videos`` still have the size and mtime they were read with (so the guarded write applied)."""
    expected = {video.id: (video.size, video.mtime_ns) for video in videos}
    unchanged: list[int] = []
    for chunk in _chunks(list(expected)):
        found = await conn.fetch(
            f"SELECT id, size, mtime_ns FROM videos WHERE id IN ({_placeholders(len(chunk))})", chunk
        )
        unchanged.extend(int(r[0]) for r in found if expected.get(int(r[0])) == (int(r[1]), int(r[2])))
    return sorted(unchanged)
