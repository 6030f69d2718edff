"""``Query.hlsDownloads``: each HLS download folder's state, reason and segments (from core.downloads).

A download is never silent: one still arriving (WAITING), one complete but not merged (READY),
merged (MERGED) or refused/failed (FAILED) each shows here with why, so a UI can show "not
merged: <reason>" beside a Merge button (``mergeHls``).
"""

from __future__ import annotations

import strawberry

from gql_media.adapters.store.downloads import DownloadRow, SqlDownloadLog
from gql_media.api.context import Access, Context
from gql_media.core.downloads import DownloadState

__all__ = ["HlsDownload", "hls_downloads"]

strawberry.enum(
    DownloadState,
    name="HlsDownloadState",
    description=(
        "WAITING: segments still missing (the download is not finished); READY: complete, not merged yet;"
        " MERGED: merged into outputPath; FAILED: refused or the merge failed (see reason)."
    ),
)


@strawberry.type(description="An HLS download folder as the last sync (or mergeHls) found it.")
class HlsDownload:
    path: str = strawberry.field(description="The download folder, absolute.")
    root_path: str
    state: DownloadState
    reason: str | None = strawberry.field(description="Why it is not merged (WAITING, FAILED), in a user's words.")
    segments_present: int
    segments_expected: int
    playlist: str | None = strawberry.field(description="The playlist's file name in the folder.")
    output_path: str | None = strawberry.field(description="MERGED: the merged file (it may have moved since).")
    updated_at: float = strawberry.field(description="When this state was found (epoch seconds).")

    @classmethod
    def from_row(cls, row: DownloadRow) -> HlsDownload:
        status = row.status
        return cls(
            path=status.folder,
            root_path=row.root_path,
            state=status.state,
            reason=status.reason,
            segments_present=status.segments_present,
            segments_expected=status.segments_expected,
            playlist=status.playlist,
            output_path=status.output_path,
            updated_at=status.updated_at,
        )


async def hls_downloads(context: Context, state: DownloadState | None) -> list[HlsDownload]:
    """The resolver of ``Query.hlsDownloads``."""
    context.require(Access.READ)
    rows = await SqlDownloadLog(context.services.db).downloads(state)
    return [HlsDownload.from_row(row) for row in rows]
