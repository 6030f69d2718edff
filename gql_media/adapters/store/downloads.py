"""The HLS downloads' states (table ``hls_downloads``): the ``core.downloads.DownloadLog`` port and its reads.

A row per download folder, keyed by its root and its path in that root ('' for the root itself).
A sync job replaces the rows of the scopes it looked at, so a folder that is no download any more
(merged and deleted, or removed by the user) loses its row at the next sync of its place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gql_media.adapters.store.db import Db, RawConnection
from gql_media.core.downloads import DownloadState, DownloadStatus

__all__ = ["DownloadRow", "SqlDownloadLog"]

_COLUMNS = "root_id, path, state, reason, segments_present, segments_expected, playlist, output_path, updated_at"


@dataclass(frozen=True, slots=True)
class DownloadRow:
    """One recorded download as the API shows it."""

    root_id: int
    root_path: str
    path: str  # in the root; '' for the root itself
    status: DownloadStatus


def _relative(roots: Sequence[tuple[int, str]], folder: str) -> tuple[int, str] | None:
    """(root id, path in that root) of an absolute folder; the deepest root holding it, None for none."""
    best: tuple[int, str] | None = None
    best_length = -1
    for root_id, root_path in roots:
        holds = folder == root_path or folder.startswith(root_path.rstrip(os.sep) + os.sep)
        if holds and len(root_path) > best_length:
            relative = os.path.relpath(folder, root_path).replace(os.sep, "/")
            best, best_length = (root_id, "" if relative == "." else relative), len(root_path)
    return best


def _covers(scope: str, recursive: bool, path: str) -> bool:
    """Whether a scope at ``scope`` (a path in the root) covers the download at ``path``."""
    if path == scope:
        return True
    inside = path.startswith(scope + "/") if scope else bool(path)
    if not inside:
        return False
    return recursive or "/" not in path[len(scope) + 1 if scope else 0 :]


class SqlDownloadLog:
    """Implements ``DownloadLog`` on a ``Db`` (SQLite or PostgreSQL), and lists the rows for the API."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def _roots(self, conn: RawConnection) -> list[tuple[int, str]]:
        return [(int(row[0]), str(row[1])) for row in await conn.fetch("SELECT id, path FROM roots")]

    async def record(self, statuses: Sequence[DownloadStatus], replacing: Sequence[tuple[str, bool]] = ()) -> None:
        async with self.db.writing() as conn:
            roots = await self._roots(conn)
            # A root holds a few downloads, not thousands: its rows are read and matched here.
            doomed: set[tuple[int, str]] = set()
            for folder, recursive in replacing:
                place = _relative(roots, folder)
                if place is not None:
                    rows = await conn.fetch("SELECT path FROM hls_downloads WHERE root_id = ?", (place[0],))
                    doomed |= {(place[0], str(r[0])) for r in rows if _covers(place[1], recursive, str(r[0]))}
            new_rows: list[tuple[Any, ...]] = []
            for status in statuses:
                place = _relative(roots, status.folder)
                if place is None:
                    continue
                doomed.add(place)
                new_rows.append(
                    (
                        *place,
                        status.state.value,
                        status.reason,
                        status.segments_present,
                        status.segments_expected,
                        status.playlist,
                        status.output_path,
                        status.updated_at,
                    )
                )
            await conn.executemany("DELETE FROM hls_downloads WHERE root_id = ? AND path = ?", sorted(doomed))
            await conn.executemany(
                f"INSERT INTO hls_downloads ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", new_rows
            )

    async def downloads(self, state: DownloadState | None = None) -> list[DownloadRow]:
        """Every recorded download (of one state), by root and path."""
        sql = (
            "SELECT d.root_id, r.path, d.path, d.state, d.reason, d.segments_present, d.segments_expected,"
            " d.playlist, d.output_path, d.updated_at FROM hls_downloads d JOIN roots r ON r.id = d.root_id"
        )
        params: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE d.state = ?"
            params = (state.value,)
        async with self.db.reading() as conn:
            rows = await conn.fetch(sql + " ORDER BY d.root_id, d.path", params)
        return [_row(row) for row in rows]


def _row(row: tuple[Any, ...]) -> DownloadRow:
    root_path, path = str(row[1]), str(row[2])
    status = DownloadStatus(
        folder=os.path.join(root_path, path) if path else root_path,
        state=DownloadState(row[3]),
        reason=row[4],
        segments_present=int(row[5]),
        segments_expected=int(row[6]),
        playlist=row[7],
        output_path=row[8],
        updated_at=float(row[9]),
    )
    return DownloadRow(root_id=int(row[0]), root_path=root_path, path=path, status=status)
