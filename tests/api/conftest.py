"""The API against the real services on each backend (a SQLite file, a PostgreSQL database), real folders,
an ASGI client, a real uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from gql_media.api import routes
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.conftest import run_sync, write

TOKEN = "s3cret-token"

# name -> size in bytes; sizes make totalSize checks exact.
TREE = {
    "Alpha/a1.mp4": 100,
    "Alpha/A2.MKV": 200,
    "Alpha/sub/deep.mp4": 300,
    "Alpha b/x.mp4": 50,
    "beta/b1.mp4": 400,
    "ÉMILE.mp4": 10,
    "zeta.mp4": 1000,
}
EMPTY_FOLDERS = ("beta/empty",)


def write_tree(library: Path) -> None:
    for name, size in TREE.items():
        write(library / name, bytes(i % 251 for i in range(size)))
    for name in EMPTY_FOLDERS:
        (library / name).mkdir(parents=True, exist_ok=True)


@dataclass
class Api:
    settings: Settings
    services: Services
    client: httpx.AsyncClient
    app: Starlette

    async def post(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        """The data of a query that must succeed."""
        body = await self.post(query, variables, token)
        assert not body.get("errors"), body
        return body["data"]


@pytest.fixture
def make_settings(tmp_path: Path, library: Path, database_url: str) -> Callable[..., Settings]:
    """Settings on the test's backend: ``database_url`` (tests/conftest.py) runs each test on SQLite and PostgreSQL."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "roots": [library],
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "watch": False,
            "frontend_dir": tmp_path / "no-frontend",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@contextlib.asynccontextmanager
async def open_api(settings: Settings, media: bool = False) -> AsyncIterator[Api]:
    """The services (without media work unless asked: fake files stay PENDING) and the API's routes."""
    async with open_services(settings, media=media) as services:
        await run_sync(services)
        app = Starlette(routes=routes(settings, lambda: services))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(settings, services, client, app)


@pytest.fixture
async def api(make_settings: Callable[..., Settings], library: Path) -> AsyncIterator[Api]:
    write_tree(library)
    async with open_api(make_settings()) as opened:
        yield opened


@pytest.fixture
async def secured_api(make_settings: Callable[..., Settings], library: Path) -> AsyncIterator[Api]:
    write_tree(library)
    async with open_api(make_settings(api_token=TOKEN)) as opened:
        yield opened


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Run ``app`` on a real uvicorn server on 127.0.0.1 (a free port); yields its ws:// base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def node_id(kind: str, row_id: int) -> str:
    import base64

    return base64.b64encode(f"{kind}:{row_id}".encode()).decode()
