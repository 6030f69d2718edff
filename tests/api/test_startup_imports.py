"""What the server's process imports to start: never PyAV or Pillow (media workers do), never Alembic
for a database already at its head, never Redis without a redis:// URL. Each start is a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gql_media.adapters.store.migrate import head_revision, stored_revisions

# Imports the app, runs its lifespan (services, media workers, the start-up sync), answers a query
# and waits for the placeholder image, then prints which of the heavy modules this process has loaded.
_START = """
import asyncio, json, sys
from pathlib import Path
import httpx
from gql_media.app import create_app
from gql_media.settings import Settings

async def main() -> None:
    app = create_app(Settings(roots=[sys.argv[1]], data_dir=sys.argv[2], watch=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.post("/graphql", json={"query": '{ folder(path: "") { id } }'})
            assert response.status_code == 200 and "errors" not in response.json(), response.text
        # The workers draw the placeholder image beside start-up: wait for it (bounded).
        thumbnails = Path(sys.argv[2]) / "thumbnails"
        for _ in range(1200):
            if any(p.name.startswith("placeholder-") for p in thumbnails.iterdir()):
                break
            await asyncio.sleep(0.1)
asyncio.run(main())
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("av", "PIL", "alembic", "redis"))))
"""


def _start_server(library: Path, data_dir: Path) -> set[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GQL_MEDIA_")}
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    result = subprocess.run(
        [sys.executable, "-c", _START, str(library), str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


@pytest.fixture
def video_library(library: Path) -> Path:
    (library / "a").mkdir()
    (library / "a" / "clip.mp4").write_bytes(b"not really a video")
    return library


async def test_a_start_at_head_imports_no_alembic_and_no_media_library(video_library: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'library.db'}"
    # The first start migrates an empty database: Alembic, but still no PyAV or Pillow here.
    assert _start_server(video_library, data_dir) == {"alembic"}
    assert await stored_revisions(url) == [head_revision()]
    assert _start_server(video_library, data_dir) == set()
    # The workers drew the placeholder image all the same.
    assert any(name.startswith("placeholder-") for name in os.listdir(data_dir / "thumbnails"))


async def test_a_start_behind_the_head_migrates(video_library: Path, tmp_path: Path) -> None:
    from gql_media.adapters.store.migrate import migrate

    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'library.db'}"
    await migrate(url, target="0006")
    assert _start_server(video_library, data_dir) == {"alembic"}
    assert await stored_revisions(url) == [head_revision()]
