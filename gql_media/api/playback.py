"""``Video.playback`` and ``Video.subtitles``: how a browser plays a video, translated from core.streaming.

The URLs point at this server's routes (api/streams.py): the file itself for DIRECT, an HLS
playlist for REMUX and TRANSCODE (the MPEG-TS stream, or the HEVC one in fMP4 for a client that
plays HEVC), WebVTT for subtitles; all signed when a token protects the API.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from urllib.parse import quote

import strawberry

from gql_media.adapters.store.reads import VideoRow
from gql_media.api.context import Context
from gql_media.core.playback import PlaybackMethod, StreamVariant
from gql_media.core.streaming import SourceFile, StreamingService

__all__ = [
    "Playback",
    "Subtitle",
    "init_resource",
    "playback_of",
    "playlist_resource",
    "segment_resource",
    "source_file",
    "subtitle_resource",
    "subtitles_of",
    "video_file",
]

strawberry.enum(
    PlaybackMethod,
    name="PlaybackMethod",
    description="Every video plays in a browser: the file as it is, its streams in a new container, or re-encoded.",
)


@strawberry.type(description="How a browser plays a video.")
class Playback:
    method: PlaybackMethod
    url: str | None = strawberry.field(
        description="DIRECT: the file; REMUX/TRANSCODE: an HLS playlist; null when UNPLAYABLE."
    )
    mime_type: str | None = strawberry.field(description="e.g. video/mp4, video/webm, application/vnd.apple.mpegurl")
    reason: str | None = strawberry.field(description="Why not DIRECT, in a user's words.")


@strawberry.type(description="A subtitle track, served as WebVTT.")
class Subtitle:
    language: str | None
    label: str
    url: str


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def video_file(row: VideoRow) -> str | None:
    """The absolute path of a video's file when it really lies inside its root (symlinks resolved); blocking."""
    relative = os.fsdecode(row.path_bytes) if row.path_bytes is not None else row.path
    root = os.path.realpath(row.root_path)
    absolute = os.path.realpath(os.path.join(row.root_path, relative))
    return absolute if _inside(absolute, root) else None


def _resolve(row: VideoRow) -> SourceFile | None:
    """The row's file when it really lies inside its root, as ``SourceFile``."""
    absolute = video_file(row)
    if absolute is None:
        return None
    return SourceFile(row.id, absolute, row.size, row.mtime_ns, row.status, row.error)


async def source_file(row: VideoRow) -> SourceFile | None:
    """``SourceFile`` of an index row (blocking path resolution in a thread); None outside its root."""
    return await asyncio.to_thread(_resolve, row)


def _stream_folder(video_id: int, variant: StreamVariant) -> str:
    # The MPEG-TS stream keeps the URLs it always had; the HEVC one lives in a folder of its own.
    return f"playback/{video_id}" if variant is StreamVariant.MPEGTS else f"playback/{video_id}/{variant.value}"


def playlist_resource(video_id: int, variant: StreamVariant = StreamVariant.MPEGTS) -> str:
    return f"{_stream_folder(video_id, variant)}/index.m3u8"


def segment_resource(video_id: int, index: int, variant: StreamVariant = StreamVariant.MPEGTS) -> str:
    return f"{_stream_folder(video_id, variant)}/{index}{variant.segment_suffix}"


def init_resource(video_id: int, variant: StreamVariant) -> str:
    return f"{_stream_folder(video_id, variant)}/init.mp4"


def subtitle_resource(video_id: int, key: str) -> str:
    return f"subtitles/{video_id}/{quote(key, safe='')}"


def _service(context: Context) -> StreamingService | None:
    return context.services.playback


async def playback_of(context: Context, row: VideoRow, direct_codecs: Sequence[str] | None) -> Playback:
    """The ``Playback`` of one video for a client playing ``direct_codecs`` too."""
    service = _service(context)
    source = await source_file(row)
    if service is None or source is None:
        reason = "playback is not available on this server" if service is None else "the file is outside its library"
        return Playback(method=PlaybackMethod.UNPLAYABLE, url=None, mime_type=None, reason=reason)
    decision = await service.decide(source, direct_codecs)
    url: str | None = None
    if decision.method is PlaybackMethod.DIRECT:
        url = context.signed_url(f"media/{row.id}")
    elif decision.method is not PlaybackMethod.UNPLAYABLE:
        url = context.signed_url(playlist_resource(row.id, decision.variant or StreamVariant.MPEGTS))
    return Playback(method=decision.method, url=url, mime_type=decision.mime_type, reason=decision.reason)


async def subtitles_of(context: Context, row: VideoRow) -> list[Subtitle]:
    """Sidecar and embedded text subtitle tracks of one video."""
    service = _service(context)
    source = await source_file(row)
    if service is None or source is None:
        return []
    return [
        Subtitle(
            language=track.language, label=track.label, url=context.signed_url(subtitle_resource(row.id, track.key))
        )
        for track in await service.subtitles(source)
    ]
