"""Every HTTP and websocket route of the server: GraphQL, media, thumbnails, health, metrics, frontend.

URLs of files take ids, never paths: a file is served only when it is an indexed video (or
its thumbnail), found by id and checked to lie inside its root, so nothing else can ever leave.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage, ErrorMessage, StartMessage
from strawberry.types.unset import UNSET, UnsetType

from gql_media.adapters.store.reads import LibraryReads, VideoRow
from gql_media.api.context import ApiServices, Context
from gql_media.api.ids import MAX_ROW_ID
from gql_media.api.playback import video_file
from gql_media.api.schema import ApiSchema, schema_for
from gql_media.api.security import bearer_token, connection_token, request_allowed, token_matches
from gql_media.api.streams import stream_routes
from gql_media.core.thumbnails import placeholder_path, thumbnail_path
from gql_media.settings import Settings

logger = logging.getLogger(__name__)

ServicesGetter = Callable[[], ApiServices]

THUMBNAIL_MAX_AGE_S = 3600
_PLACEHOLDER_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180" viewBox="0 0 320 180">'
    '<rect width="320" height="180" fill="#2b2b2b"/>'
    '<path d="M140 65 L140 115 L182 90 Z" fill="#8a8a8a"/></svg>'
)
_NO_PLAYGROUND_HTML = (
    "<!doctype html><title>gql_media GraphQL</title><h1>GraphQL endpoint</h1>"
    "<p>POST queries here, or open a websocket (graphql-transport-ws or graphql-ws).</p>"
    "<p>The offline GraphiQL playground is not built: run <code>make frontend</code> in the source tree"
    " (it uses the system's Node.js 20+ when there is one, otherwise the one <code>make venv</code> put into"
    " the venv) and restart; it is then served at <a href=/playground>/playground</a>.</p>"
)
_FORBIDDEN = "forbidden: a valid signature (exp, sig) or the API token is required"


def _ws_authorized(settings: Settings, params: dict[str, Any] | None) -> bool:
    return token_matches(settings.api_token, connection_token(params))


class _LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws: a refused connection_init closes with 4403, like graphql-transport-ws."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload")
        params = payload if isinstance(payload, dict) else None
        if not _ws_authorized(self.context.settings, params):
            await self.send_message({"type": "connection_error", "payload": {"message": "unauthorized"}})
            await self.websocket.close(code=4403, reason="Forbidden")
            return
        await super().handle_connection_init(message)

    async def handle_start(self, message: StartMessage) -> None:
        """This subprotocol carries subscriptions only: a query or a mutation is told where to go.

        (Strawberry would refuse it with an error that the masking turns into "Internal server error".)
        """
        payload = message.get("payload")
        kind = _operation_kind(payload, self.context.settings.max_tokens) if self.connection_acknowledged else None
        if kind is None or kind is OperationType.SUBSCRIPTION:
            await super().handle_start(message)
            return
        operations = "queries" if kind is OperationType.QUERY else "mutations"
        error = ErrorMessage(
            type="error",
            id=message["id"],
            payload={
                "message": f"{operations} are not carried by the legacy graphql-ws subprotocol (subscriptions "
                "only): send them over graphql-transport-ws or HTTP POST /graphql",
                "extensions": {"code": "SUBSCRIPTIONS_ONLY"},
            },
        )
        await self.send_message(error)


def _operation_kind(payload: object, max_tokens: int) -> OperationType | None:
    """The type of the operation a start message runs; None when it cannot tell (the schema then says why)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    name = payload.get("operationName")
    try:
        operation = get_operation_ast(
            parse(payload["query"], max_tokens=max_tokens), name if isinstance(name, str) else None
        )
    except GraphQLError:
        return None
    return None if operation is None else operation.operation


# Subscription event data encoded lately, by identity (the object is held, so its id is not reused).
_SHARED_JSON_SIZE = 32
_NEXT_KEYS = ["id", "type", "payload"]


class _SharedJson:
    """The JSON of the data objects sent lately, by identity.

    The executor gives every subscriber of a shared event the same result (``execution.FastExecutor``):
    its data is encoded once, not once per subscriber (1,000 progress subscribers: 1,000 dumps an event).
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[object, str]] = {}

    def encode(self, data: object) -> str:
        known = self._by_id.get(id(data))
        if known is not None and known[0] is data:
            return known[1]
        text = json.dumps(data, separators=(",", ":"))
        if len(self._by_id) >= _SHARED_JSON_SIZE:
            self._by_id.clear()
        self._by_id[id(data)] = (data, text)
        return text


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context and authentication."""

    graphql_ws_handler_class = _LegacyWSHandler

    def __init__(self, schema: ApiSchema, settings: Settings, services: ServicesGetter) -> None:
        super().__init__(schema, allowed_origins=settings.cors_origins)
        self._settings = settings
        self._services = services
        self._shared_json = _SharedJson()

    def encode_json(self, data: object) -> str | bytes:
        """An HTTP result as UTF-8 JSON bytes by orjson; a websocket message as Strawberry encodes it
        (compact JSON text), a graphql-transport-ws "next" message's data encoded once for all the
        subscribers it is sent to (the same text as ``json.dumps`` of it all).

        A websocket message always has a ``type``; an HTTP result (``data``, ``errors``,
        ``extensions``) never does. Bytes would go out as a binary websocket frame, so messages stay
        text. orjson encodes a 500-video page in 0.07 ms against ``json.dumps``' 1.2 ms; what it
        refuses (an integer past 64 bits) goes to ``json.dumps`` as before.
        """
        if isinstance(data, dict) and "type" not in data:
            try:
                return orjson.dumps(data)
            except TypeError:  # (orjson.JSONEncodeError is one)
                return super().encode_json(data)
        if isinstance(data, dict) and data.get("type") == "next" and list(data) == _NEXT_KEYS:
            payload = data["payload"]
            if isinstance(payload, dict) and list(payload) == ["data"]:
                encoded = self._shared_json.encode(payload["data"])
                return f'{{"id":{json.dumps(data["id"])},"type":"next","payload":{{"data":{encoded}}}}}'
        return super().encode_json(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        """A browser on /graphql goes to the bundled GraphiQL at /playground, which works offline.

        Strawberry's own page loads its scripts from a public CDN: blank on a LAN-only box.
        """
        if (Path(self._settings.frontend_dir) / "playground.html").is_file():
            return RedirectResponse("/playground", status_code=307)
        return HTMLResponse(_NO_PLAYGROUND_HTML, status_code=200)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        if isinstance(request, WebSocket):
            # Authorized by the connection_init payload (on_ws_connect).
            return Context.create(self._services(), request, None, authorized=False)
        token = bearer_token(request.headers.get("authorization"))
        authorized = self._settings.api_token is not None and token_matches(self._settings.api_token, token)
        return Context.create(
            self._services(), request, response if isinstance(response, Response) else None, authorized
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if not _ws_authorized(self._settings, context.connection_params):
            raise ConnectionRejectionError({"message": "unauthorized"})
        context.authorized = True
        unset: UnsetType = UNSET
        return unset


def _regular_file(path: str) -> os.stat_result | None:
    try:
        result = os.stat(path)
    except OSError:
        return None
    return result if stat.S_ISREG(result.st_mode) else None


def _not_modified(request: Request, response: FileResponse) -> Response | None:
    etag = response.headers.get("etag")
    if etag and request.headers.get("if-none-match") == etag and "range" not in request.headers:
        return Response(status_code=304, headers={"etag": etag, "cache-control": response.headers["cache-control"]})
    return None


class FileRoutes:
    """/media/{id} and /thumbnails/{id}."""

    def __init__(self, settings: Settings, services: ServicesGetter) -> None:
        self._settings = settings
        self._services = services

    async def _video(self, video_id: int) -> VideoRow | None:
        if not 0 <= video_id <= MAX_ROW_ID:  # past BIGINT: the database would raise (a 500)
            return None
        return (await LibraryReads(self._services().db).videos_by_ids([video_id])).get(video_id)

    async def media(self, request: Request) -> Response:
        video_id: int = request.path_params["video_id"]
        if not request_allowed(self._settings.api_token, f"media/{video_id}", request.headers, request.query_params):
            return PlainTextResponse(_FORBIDDEN, status_code=403)
        row = await self._video(video_id)
        path = None if row is None else await asyncio.to_thread(video_file, row)
        file_stat = None if path is None else await asyncio.to_thread(_regular_file, path)
        if path is None or file_stat is None:
            return PlainTextResponse("not found", status_code=404)
        response = FileResponse(path, stat_result=file_stat, headers={"cache-control": "private, max-age=3600"})
        return _not_modified(request, response) or response

    def _thumbnail_file(self, row: VideoRow) -> str | None:
        if not row.thumbnail_key:
            return None
        try:
            return thumbnail_path(str(self._settings.thumbnails_dir), row.thumbnail_key)
        except ValueError:
            return None

    def _placeholder_file(self) -> str:
        settings = self._settings
        return placeholder_path(str(settings.thumbnails_dir), settings.thumbnail_width, settings.thumbnail_format)

    async def thumbnail(self, request: Request) -> Response:
        video_id: int = request.path_params["video_id"]
        resource = f"thumbnails/{video_id}"
        if not request_allowed(self._settings.api_token, resource, request.headers, request.query_params):
            return PlainTextResponse(_FORBIDDEN, status_code=403)
        row = await self._video(video_id)
        if row is None:
            return PlainTextResponse("not found", status_code=404)
        path = self._thumbnail_file(row)
        file_stat = None if path is None else await asyncio.to_thread(_regular_file, path)
        if path is None or file_stat is None:
            # No thumbnail (yet, or it could not be made): the placeholder image, not cached for long.
            placeholder = self._placeholder_file()
            placeholder_stat = await asyncio.to_thread(_regular_file, placeholder)
            if placeholder_stat is not None:
                return FileResponse(placeholder, stat_result=placeholder_stat, headers={"cache-control": "no-cache"})
            return Response(_PLACEHOLDER_SVG, media_type="image/svg+xml", headers={"cache-control": "no-cache"})
        response = FileResponse(
            path,
            stat_result=file_stat,
            headers={"cache-control": f"private, max-age={THUMBNAIL_MAX_AGE_S}"},
        )
        return _not_modified(request, response) or response


def _health_endpoint(services: ServicesGetter) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        try:
            async with services().db.reading() as conn:
                await conn.fetch_one("SELECT 1")
        except Exception:
            logger.exception("health check failed")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return healthz


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def routes(settings: Settings, services: ServicesGetter) -> list[BaseRoute]:
    """All routes of the server, for ``Starlette(routes=...)``.

    Args:
        settings: the server's settings (limits, token, CORS, frontend directory).
        services: returns the services built by the app's lifespan (called per request).
    """
    graphql = GraphQLApp(schema_for(settings), settings, services)
    graphql_http: ASGIApp = graphql
    if settings.cors_origins:
        graphql_http = CORSMiddleware(
            graphql,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    files = FileRoutes(settings, services)
    result: list[BaseRoute] = [
        # Route + WebSocketRoute, not Mount: a mount answers /graphql with a redirect.
        Route("/graphql", graphql_http, methods=["GET", "POST", "OPTIONS"]),
        WebSocketRoute("/graphql", graphql),
        Route("/media/{video_id:int}", files.media, methods=["GET", "HEAD"]),
        Route("/thumbnails/{video_id:int}", files.thumbnail, methods=["GET", "HEAD"]),
        *stream_routes(settings, services),
        Route("/healthz", _health_endpoint(services)),
        Route("/metrics", metrics),
    ]
    frontend = Path(settings.frontend_dir)
    if (frontend / "index.html").is_file():
        playground = frontend / "playground.html"
        if playground.is_file():
            result.append(Route("/playground", _file_endpoint(playground)))
        result.append(Mount("/", StaticFiles(directory=frontend, html=True), name="frontend"))
    else:
        logger.info("no frontend at %s: serving the API only", frontend)
    return result


def _file_endpoint(path: Path) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return FileResponse(path)

    return endpoint
