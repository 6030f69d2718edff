"""The ASGI application: ``create_app(settings)``; its lifespan opens and closes every service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from gql_media.api import routes
from gql_media.api.hosts import HostAllowlist, listens_beyond_loopback
from gql_media.core.models import SyncMode, SyncRequest, SyncTrigger
from gql_media.services import Services, open_services
from gql_media.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> Starlette:
    """Build the server for ``settings``; nothing is opened until the lifespan starts."""
    holder: dict[str, Services] = {}

    def services() -> Services:
        return holder["services"]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, serve=True) as opened:
            holder["services"] = opened
            starting: asyncio.Task[None] | None = None
            # With PostgreSQL each newly elected leader does this itself (``gql_media.cluster``).
            if opened.cluster is None:
                if settings.watch:
                    # Starting the watcher reconciles every root first: that is the start-up sync. Its
                    # watch grows with the library (one per folder): it opens while the server answers.
                    starting = asyncio.create_task(_start_watching(opened), name="gql-media-watch")
                else:
                    await opened.runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.STARTUP))
            try:
                yield
            finally:
                holder.pop("services", None)
                if starting is not None:
                    starting.cancel()
                    await asyncio.wait({starting})

    _log_exposure(settings)
    # Outermost: a request for a foreign Host (DNS rebinding) reaches no route, HTTP or websocket.
    allowlist = Middleware(HostAllowlist, bind_host=settings.host, extra_hosts=settings.allowed_hosts)
    app = Starlette(routes=routes(settings, services), middleware=[allowlist], lifespan=lifespan)
    app.state.services = services
    return app


async def _start_watching(services: Services) -> None:
    try:
        await services.watcher.start(SyncTrigger.STARTUP)
    except Exception:  # the watcher reports its own failures in its status; this would be a bug
        logger.exception("the watcher could not start")


def _log_exposure(settings: Settings) -> None:
    """Say at start-up what a server reachable from other machines lets them do."""
    if settings.api_token is not None or not listens_beyond_loopback(settings.host):
        return
    if settings.allow_unauthenticated:
        logger.warning(
            "RISK: listening on %s with no API token and GQL_MEDIA_ALLOW_UNAUTHENTICATED=true: anyone who can "
            "reach this address can run every mutation and subscription (sync, watcher, merge and delete "
            "HLS sources); set GQL_MEDIA_API_TOKEN instead",
            settings.host,
        )
    else:
        logger.warning(
            "listening on %s with no API token: read-only (queries only; mutations and subscriptions are "
            "refused); set GQL_MEDIA_API_TOKEN to allow them",
            settings.host,
        )
