"""The ASGI application: ``create_app(settings)``; its lifespan opens and closes every service."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from gql_media.api import routes
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
            # With PostgreSQL each newly elected leader does this itself (``gql_media.cluster``).
            if opened.cluster is None:
                if settings.watch:
                    # Starting the watcher reconciles every root first: that is the start-up sync.
                    await opened.watcher.start(SyncTrigger.STARTUP)
                else:
                    await opened.runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.STARTUP))
            try:
                yield
            finally:
                holder.pop("services", None)

    app = Starlette(routes=routes(settings, services), lifespan=lifespan)
    app.state.services = services
    return app
