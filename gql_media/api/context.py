"""What every resolver gets: the services, the request, the caller's rights and fresh loaders."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.reads import LibraryReads
from gql_media.api.errors import ApiError
from gql_media.api.loaders import Loaders, create_loaders
from gql_media.api.ports import Media, Roots, Runner, Watcher
from gql_media.api.security import origin_allowed, sign, unauthenticated_writes_refused
from gql_media.core.models import Root
from gql_media.core.ports import EventBus, JobStore
from gql_media.core.streaming import StreamingService
from gql_media.settings import Settings


class ApiServices(Protocol):
    """The parts of ``gql_media.services.Services`` the API uses (built in app.py's lifespan)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Db: ...

    @property
    def jobs(self) -> JobStore: ...

    @property
    def runner(self) -> Runner: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def roots(self) -> Sequence[Root]: ...

    @property
    def watcher(self) -> Watcher: ...

    @property
    def library_roots(self) -> Roots: ...

    @property
    def media(self) -> Media | None:
        """None when the server runs without media work (thumbnails, merging)."""
        ...

    # Playback (HLS segments, subtitles); None without media work.
    @property
    def playback(self) -> StreamingService | None: ...


def http_base_url(base_url: str) -> str:
    """The http(s) form of a request's base URL: file URLs sent over a websocket must still be fetchable."""
    for ws, http in (("ws://", "http://"), ("wss://", "https://")):
        if base_url.startswith(ws):
            base_url = http + base_url[len(ws) :]
    return base_url.rstrip("/")


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass
class Context:
    """The GraphQL context of one HTTP request, or of one websocket connection."""

    services: ApiServices
    reads: LibraryReads
    request: Request | WebSocket
    response: Response | None
    authorized: bool
    loaders: Loaders
    # Set by Strawberry from the websocket connection_init payload.
    connection_params: dict[str, Any] | None = None

    @cached_property
    def base_url(self) -> str:
        """The request's base URL (http form), built when a URL is first signed: most operations sign none,
        and Starlette builds it from the headers each time it is asked."""
        return http_base_url(str(self.request.base_url))

    @classmethod
    def create(
        cls, services: ApiServices, request: Request | WebSocket, response: Response | None, authorized: bool
    ) -> Context:
        reads = LibraryReads(services.db)
        return cls(
            services=services,
            reads=reads,
            request=request,
            response=response,
            authorized=authorized,
            loaders=create_loaders(reads),
        )

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def watcher(self) -> Watcher:
        return self.services.watcher

    @property
    def media(self) -> Media | None:
        return self.services.media

    def refresh_loaders(self) -> None:
        """New loaders: a websocket connection must not serve one event's rows to the next."""
        self.loaders = create_loaders(self.reads)

    def require(self, access: Access) -> None:
        """Refuse the operation unless the caller may do ``access``."""
        settings = self.settings
        if access is Access.WRITE:
            self._require_write_allowed()
        if settings.api_token is None or self.authorized:
            return
        if access is Access.READ and settings.public_read:
            return
        if self.response is not None:
            self.response.status_code = 401
        what = "this operation" if access is Access.WRITE else "reading"
        raise ApiError(f"unauthorized: {what} needs the API token (Authorization: Bearer <token>)", "UNAUTHENTICATED")

    def _require_write_allowed(self) -> None:
        """A foreign page's HTTP request, and any change to a server exposed without a token, get a 403."""
        settings = self.settings
        refusal = None
        if isinstance(self.request, Request) and not origin_allowed(self.request.headers, settings.cors_origins):
            refusal = ApiError("forbidden: this origin may not change anything (see CORS_ORIGINS)", "FORBIDDEN")
        elif unauthenticated_writes_refused(settings.host, settings.api_token, settings.allow_unauthenticated):
            refusal = ApiError(
                f"read-only: this server listens on {settings.host} without an API token; set GQL_MEDIA_API_TOKEN"
                " (or GQL_MEDIA_ALLOW_UNAUTHENTICATED=true to accept the risk)",
                "READ_ONLY",
            )
        if refusal is not None:
            if self.response is not None:
                self.response.status_code = 403
            raise refusal

    def signed_url(self, resource: str, version: str | None = None) -> str:
        """An absolute URL of ``resource`` ("media/12"), signed when a token protects the API.

        ``version`` (e.g. a thumbnail key) changes the URL when the content changes, so caches refetch.
        """
        query = [] if version is None else [f"v={quote(version)}"]
        token = self.settings.api_token
        if token is not None:
            expires_at, signature = sign(token, resource, self.settings.signed_url_ttl_s)
            query += [f"exp={expires_at}", f"sig={signature}"]
        return f"{self.base_url}/{resource}" + (f"?{'&'.join(query)}" if query else "")
