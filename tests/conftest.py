"""Shared fixtures: real folders in tmp dirs, a real SQLite file, the real services."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from gql_media.core.models import SyncJob, SyncMode, SyncRequest, SyncTarget, SyncTrigger
from gql_media.core.scanner import is_ignored_name, is_video_name
from gql_media.services import Services, open_services
from gql_media.settings import Settings


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


# The PostgreSQL server of this machine kind (CI has it too). Each test gets a database of its own.
POSTGRES_ADMIN_URL = os.environ.get("GQL_MEDIA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite"] if os.environ.get("GQL_MEDIA_TEST_POSTGRES") == "0" else ["sqlite", "postgresql"]


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _create_database(name: str) -> None:
    # A natural-language default collation (as on most servers, unlike this machine's C.UTF-8), so
    # an order that depends on it, not on the schema's own collations, fails here. ICU needs
    # PostgreSQL 15; an older server gets its default.
    try:
        await _admin(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
            " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        )
    except asyncpg.PostgresError:
        await _admin(f'CREATE DATABASE "{name}"')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'library.db'}"
        return
    name = f"gqlm_test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_create_database(name))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, library: Path, database_url: str) -> Settings:
    return Settings(roots=[library], data_dir=tmp_path / "data", database_url=database_url, watch=False)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The index side only (no media workers): what the sync tests are about."""
    async with open_services(settings, media=False) as opened:
        yield opened


async def run_sync(services: Services, *targets: str | Path, recursive: bool = True) -> SyncJob:
    """Submit one sync and wait for it to finish."""
    request = SyncRequest(
        SyncMode.INCREMENTAL, SyncTrigger.MANUAL, tuple(SyncTarget(str(t), recursive) for t in targets)
    )
    job = await services.runner.submit(request)
    final = await services.runner.wait(job.id, timeout_s=60)
    assert final is not None
    return final


def disk_tree(root: Path) -> set[tuple[str, str]]:
    """What the index should hold, computed independently of the scanner: (kind, relative path)."""
    expected: set[tuple[str, str]] = {("folder", "")}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_ignored_name(d)]
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        hls = any(f.lower().endswith(".m3u8") for f in filenames)
        for d in dirnames:
            expected.add(("folder", prefix + d))
        for f in filenames:
            segment = hls and f.lower().endswith((".ts", ".m4s"))
            if is_video_name(f) and not segment and os.path.isfile(os.path.join(dirpath, f)):
                expected.add(("video", prefix + f))
    return expected


async def index_tree(services: Services) -> set[tuple[str, str]]:
    async with services.db.reading() as conn:
        folders = await conn.fetch("SELECT path FROM folders")
        videos = await conn.fetch("SELECT path FROM videos")
    return {("folder", str(r[0])) for r in folders} | {("video", str(r[0])) for r in videos}


async def ids_by_path(services: Services) -> dict[tuple[str, str], int]:
    async with services.db.reading() as conn:
        folders = await conn.fetch("SELECT path, id FROM folders")
        videos = await conn.fetch("SELECT path, id FROM videos")
    return {("folder", str(r[0])): int(r[1]) for r in folders} | {("video", str(r[0])): int(r[1]) for r in videos}


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
