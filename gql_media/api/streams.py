"""HTTP routes of playback: the HLS playlist and segments of a video, and its subtitles as WebVTT.

- ``/playback/{id}/index.m3u8``: the whole VOD playlist at once; every segment URL in it carries
  its own signature when a token protects the API (hls.js drops the playlist's query string).
- ``/playback/{id}/{n}.ts``: one MPEG-TS segment, made on demand in a media worker. A client
  that goes away stops the making (unless another viewer waits for it); no free transcode slot
  within ``transcode_wait_s`` is a 503 with Retry-After.
- ``/playback/{id}/hevc/index.m3u8``, ``.../hevc/init.mp4`` and ``.../hevc/{n}.m4s``: the HEVC
  stream (video copied, tagged hvc1) as fMP4, for clients that play HEVC: the same, plus the
  init segment that ``EXT-X-MAP`` names.

Segments are files from the cache: the same bytes for every request, with Range and ETag.
- ``/subtitles/{id}/{track}``: a sidecar or embedded subtitle track as WebVTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gql_media.adapters.store.reads import LibraryReads
from gql_media.api.context import ApiServices
from gql_media.api.ids import MAX_ROW_ID
from gql_media.api.playback import (
    init_resource,
    playlist_resource,
    segment_resource,
    source_file,
    subtitle_resource,
)
from gql_media.api.security import request_allowed, sign
from gql_media.core.playback import StreamVariant
from gql_media.core.ports import MediaError
from gql_media.core.streaming import PlaybackBusy, SourceFile, StreamingService
from gql_media.core.vod_plan import render_playlist
from gql_media.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["stream_routes"]

T = TypeVar("T")
_FORBIDDEN = "forbidden: a valid signature (exp, sig) or the API token is required"
_HLS_MIME = "application/vnd.apple.mpegurl"
_SEGMENT_MIME = {StreamVariant.MPEGTS: "video/mp2t", StreamVariant.HEVC: "video/mp4"}
_SEGMENT_CACHE_CONTROL = "private, max-age=3600"


class _ClientGone(Exception):
    """The client closed the connection while its response was being made."""


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; cancel it when the client disconnects first (nobody waits for it any more)."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(watch())
    try:
        done, _pending = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        watcher.cancel()
        raise
    watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise _ClientGone


def _version(source: SourceFile) -> str:
    """The file as the index knows it, in a segment's URL: its size and modification time."""
    return f"{source.size}-{source.mtime_ns}"


def _changed_since(request: Request, source: SourceFile) -> Response | None:
    """A 409 for a segment asked for by a playlist of the file as it was (its ``v``); None: it is the same file
    (or the URL names none: a playlist from before versions)."""
    version = request.query_params.get("v")
    if version is None or version == _version(source):
        return None
    return PlainTextResponse("cannot stream: the video changed since its playlist was made; ask again", status_code=409)


def _busy(busy: PlaybackBusy) -> Response:
    """No free transcode slot in time: 503, and when to ask again."""
    return PlainTextResponse(f"busy: {busy}", status_code=503, headers={"retry-after": str(busy.retry_after_s)})


class StreamRoutes:
    """The endpoints; ``services`` returns the running services (per request)."""

    def __init__(self, settings: Settings, services: Callable[[], ApiServices]) -> None:
        self._settings = settings
        self._services = services

    def _versioned_query(self, resource: str, version: str) -> str:
        signed = self._signed_query(resource)
        return f"{signed}&v={version}" if signed else f"?v={version}"

    def _signed_query(self, resource: str) -> str:
        token = self._settings.api_token
        if token is None:
            return ""
        expires_at, signature = sign(token, resource, self._settings.signed_url_ttl_s)
        return f"?exp={expires_at}&sig={signature}"

    async def _source(self, request: Request, video_id: int, resource: str) -> tuple[StreamingService, SourceFile]:
        """The service and the video's file; refused (Starlette answers the ``HTTPException`` as plain text)
        without access to ``resource``, without playback or without such a video."""
        if not request_allowed(self._settings.api_token, resource, request.headers, request.query_params):
            raise HTTPException(403, _FORBIDDEN)
        service = self._services().playback
        if service is None:
            raise HTTPException(404, "playback is not available on this server")
        if not 0 <= video_id <= MAX_ROW_ID:
            raise HTTPException(404, "not found")
        row = (await LibraryReads(self._services().db).videos_by_ids([video_id])).get(video_id)
        source = None if row is None else await source_file(row)
        if source is None:
            raise HTTPException(404, "not found")
        return service, source

    async def playlist(self, request: Request, variant: StreamVariant) -> Response:
        video_id: int = request.path_params["video_id"]
        service, source = await self._source(request, video_id, playlist_resource(video_id, variant))
        try:
            _method, segments = await service.plan(source, variant)
        except MediaError as error:
            return PlainTextResponse(f"cannot stream: {error}", status_code=409)
        # Each segment's URL names the file as it is (``v``): a browser's cache never mixes two files'
        # segments, and a player still on this playlist after the file changes is told so (409).
        version = _version(source)
        init_url = None
        if variant.fragmented_mp4:
            init_url = f"init.mp4{self._versioned_query(init_resource(video_id, variant), version)}"
        text = render_playlist(
            segments,
            lambda index: (
                f"{index}{variant.segment_suffix}"
                f"{self._versioned_query(segment_resource(video_id, index, variant), version)}"
            ),
            init_url,
        )
        return Response(text, media_type=_HLS_MIME, headers={"cache-control": "private, no-cache"})

    async def segment(self, request: Request, variant: StreamVariant) -> Response:
        video_id: int = request.path_params["video_id"]
        index: int = request.path_params["index"]
        service, source = await self._source(request, video_id, segment_resource(video_id, index, variant))
        if (changed := _changed_since(request, source)) is not None:
            return changed
        return await self._file(request, service.segment(source, index, variant), _SEGMENT_MIME[variant])

    async def init_segment(self, request: Request, variant: StreamVariant) -> Response:
        video_id: int = request.path_params["video_id"]
        service, source = await self._source(request, video_id, init_resource(video_id, variant))
        if (changed := _changed_since(request, source)) is not None:
            return changed
        return await self._file(request, service.init_segment(source, variant), "video/mp4")

    async def _file(self, request: Request, making: Awaitable[Path], media_type: str) -> Response:
        """A made file (segment or init) from the cache, with Range; the making stops if the client leaves."""
        try:
            path = await _unless_disconnected(request, making)
        except _ClientGone:
            return Response(status_code=499)
        except IndexError:
            return PlainTextResponse("no such segment", status_code=404)
        except PlaybackBusy as busy:
            return _busy(busy)
        except MediaError as error:
            return PlainTextResponse(f"cannot stream: {error}", status_code=409)
        return FileResponse(path, media_type=media_type, headers={"cache-control": _SEGMENT_CACHE_CONTROL})

    async def subtitle(self, request: Request) -> Response:
        video_id: int = request.path_params["video_id"]
        key: str = request.path_params["track"]
        service, source = await self._source(request, video_id, subtitle_resource(video_id, key))
        try:
            vtt = await service.subtitle_vtt(source, key)
        except LookupError:
            return PlainTextResponse("no such subtitle track", status_code=404)
        except PlaybackBusy as busy:
            return _busy(busy)
        except (MediaError, OSError) as error:
            return PlainTextResponse(f"cannot read the subtitles: {error}", status_code=409)
        return Response(vtt, media_type="text/vtt; charset=utf-8", headers={"cache-control": "private, no-cache"})


def _serving(
    variant: StreamVariant, handler: Callable[[Request, StreamVariant], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of one stream's route."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, variant)

    return endpoint


def stream_routes(settings: Settings, services: Callable[[], ApiServices]) -> list[BaseRoute]:
    """The playback routes, for ``http.routes``."""
    endpoints = StreamRoutes(settings, services)
    ts, hevc = StreamVariant.MPEGTS, StreamVariant.HEVC
    folder = f"/playback/{{video_id:int}}/{hevc.value}"
    return [
        Route("/playback/{video_id:int}/index.m3u8", _serving(ts, endpoints.playlist), methods=["GET", "HEAD"]),
        Route("/playback/{video_id:int}/{index:int}.ts", _serving(ts, endpoints.segment), methods=["GET", "HEAD"]),
        Route(f"{folder}/index.m3u8", _serving(hevc, endpoints.playlist), methods=["GET", "HEAD"]),
        Route(f"{folder}/init.mp4", _serving(hevc, endpoints.init_segment), methods=["GET", "HEAD"]),
        Route(f"{folder}/{{index:int}}.m4s", _serving(hevc, endpoints.segment), methods=["GET", "HEAD"]),
        Route("/subtitles/{video_id:int}/{track:path}", endpoints.subtitle, methods=["GET", "HEAD"]),
    ]
