"""Shared fixtures: real folders in tmp dirs, a real SQLite file, the real services."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gql_media.core.models import SyncJob, SyncMode, SyncRequest, SyncTarget, SyncTrigger
from gql_media.core.scanner import is_ignored_name, is_video_name
from gql_media.services import Services, open_services
from gql_media.settings import Settings
from tests.postgres import PostgresForTests, answers, requested_mode
from tests.video_sql import VIDEOS


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_POSTGRES] = PostgresForTests.choose()
    config.stash[_REDIS] = RedisForTests.choose()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [config.stash[_POSTGRES].describe(), config.stash[_REDIS].describe()]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    embedded = config.stash[_POSTGRES].embedded
    if embedded is not None and embedded.start_s:
        terminalreporter.write_line(f"embedded PostgreSQL: started in {embedded.start_s:.2f} s, stopped at the end")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _POSTGRES in config.stash:
        config.stash[_POSTGRES].stop()


_POSTGRES = pytest.StashKey[PostgresForTests]()
_REDIS = pytest.StashKey["RedisForTests"]()


@dataclass(frozen=True)
class RedisForTests:
    """The machine's Redis when it answers; ``GQL_MEDIA_TEST_REDIS=0`` leaves it out as if it were not there."""

    url: str | None
    reason: str
    # CI starts Redis (.ci/run): there its absence is a broken set-up, not a machine without it.
    missing_in_ci: bool = False

    @classmethod
    def choose(cls) -> RedisForTests:
        url = os.environ.get("GQL_MEDIA_TEST_REDIS_URL", "redis://127.0.0.1:6379")
        if os.environ.get("GQL_MEDIA_TEST_REDIS", "").strip().lower() in ("0", "off", "no", "false"):
            return cls(None, "Redis left out (GQL_MEDIA_TEST_REDIS=0)")
        where = urlsplit(url)
        if answers(where.hostname or "127.0.0.1", where.port or 6379):
            return cls(url, f"Redis: {where.hostname}:{where.port or 6379}")
        return cls(None, f"Redis is not running at {where.hostname}:{where.port or 6379}", bool(os.environ.get("CI")))

    def describe(self) -> str:
        if self.url is not None:
            return f"{self.reason} (cross-replica tests use it)"
        return f"{self.reason}: Redis-only tests skip; cross-replica tests use PostgreSQL LISTEN/NOTIFY"


@pytest.fixture(scope="session")
def postgres(pytestconfig: pytest.Config) -> PostgresForTests:
    """The session's PostgreSQL (tests/postgres.py chooses it); skips when GQL_MEDIA_TEST_POSTGRES=0."""
    chosen = pytestconfig.stash[_POSTGRES]
    if not chosen.enabled:
        pytest.skip("PostgreSQL skipped (GQL_MEDIA_TEST_POSTGRES=0)")
    failure = None
    try:
        asyncio.run(chosen.check())
    except RuntimeError as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return chosen


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> str:
    """The machine's Redis, for tests that need Redis itself; skips (or fails in CI) without it."""
    chosen = pytestconfig.stash[_REDIS]
    if chosen.url is None:
        if chosen.missing_in_ci:
            pytest.fail(f"{chosen.reason} (CI starts it)", pytrace=False)
        pytest.skip(chosen.reason)
    return chosen.url


@pytest.fixture(scope="session")
def optional_redis_url(pytestconfig: pytest.Config) -> str | None:
    """The machine's Redis when it is there, else None (the caller falls back to PostgreSQL)."""
    chosen = pytestconfig.stash[_REDIS]
    if chosen.missing_in_ci:
        pytest.fail(f"{chosen.reason} (CI starts it)", pytrace=False)
    return chosen.url


# GQL_MEDIA_TEST_POSTGRES=0 (a quick inner loop) leaves the PostgreSQL half out rather than skipping it test by test.
BACKENDS = ["sqlite"] if requested_mode() == "off" else ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'library.db'}"
        return
    postgres: PostgresForTests = request.getfixturevalue("postgres")
    url = asyncio.run(postgres.create_database(icu=True))
    try:
        yield url
    finally:
        asyncio.run(postgres.drop_database(url))


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
        videos = await conn.fetch(f"SELECT path FROM {VIDEOS}")
    return {("folder", str(r[0])) for r in folders} | {("video", str(r[0])) for r in videos}


async def ids_by_path(services: Services) -> dict[tuple[str, str], int]:
    async with services.db.reading() as conn:
        folders = await conn.fetch("SELECT path, id FROM folders")
        videos = await conn.fetch(f"SELECT path, id FROM {VIDEOS}")
    return {("folder", str(r[0])): int(r[1]) for r in folders} | {("video", str(r[0])): int(r[1]) for r in videos}


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
