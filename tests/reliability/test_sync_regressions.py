"""Regressions the reliability suite found in the sync engine and the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gql_media.core.models import JobState
from gql_media.services import Services
from gql_media.settings import Settings
from tests.conftest import disk_tree, index_tree, run_sync, write


async def test_sync_of_a_folder_new_on_disk_indexes_it(services: Services, library: Path) -> None:
    """A watcher sync scoped to a new folder (its parent not in the scope) used to fail on a foreign key."""
    write(library / "old.mp4")
    await run_sync(services, library)
    write(library / "new" / "a.mp4")
    write(library / "new" / "deeper" / "b.mp4")
    job = await run_sync(services, library / "new")
    assert job.state is JobState.SUCCEEDED, job.errors
    assert await index_tree(services) == disk_tree(library)


async def test_sync_of_many_new_sibling_folders(services: Services, library: Path) -> None:
    await run_sync(services, library)
    for index in range(20):
        write(library / "top" / f"burst{index}" / "clip.mp4")
    job = await run_sync(services, *[library / "top" / f"burst{index}" for index in range(20)])
    assert job.state is JobState.SUCCEEDED, job.errors
    assert await index_tree(services) == disk_tree(library)


def test_one_cors_origin_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An origin in GQL_MEDIA_CORS_ORIGINS was split on ":" (["http", "//host"]): the server did not start."""
    monkeypatch.setenv("GQL_MEDIA_CORS_ORIGINS", "http://allowed.example:8080")
    assert Settings().cors_origins == ["http://allowed.example:8080"]
    monkeypatch.setenv("GQL_MEDIA_CORS_ORIGINS", "http://a.example, https://b.example:8443")
    assert Settings().cors_origins == ["http://a.example", "https://b.example:8443"]
