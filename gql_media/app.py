"""The ASGI application: ``create_app(settings)``; its lifespan opens and closes every service."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
        async with open_services(settings) as opened:
            holder["services"] = opened
            await opened.runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.STARTUP))
            yield
            holder.pop("services", None)

    async def healthz(_request: Request) -> Response:
        opened = holder.get("services")
        if opened is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        current = opened.runner.current()
        return JSONResponse(
            {
                "status": "ok",
                "roots": [root.path for root in opened.roots],
                "sync": None if current is None else {"id": current.id, "state": current.state.value},
            }
        )

    app = Starlette(routes=[Route("/healthz", healthz)], lifespan=lifespan)
    app.state.services = services
    return app
