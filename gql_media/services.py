"""The one place that wires the core to its adapters (used by the server and the CLI)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gql_media.adapters.bus import MemoryBus
from gql_media.adapters.store import Db, IndexStore, SqlJobStore, migrate
from gql_media.core.jobs import JobRunner
from gql_media.core.models import Root
from gql_media.core.ports import EventBus, JobStep
from gql_media.core.sync import SyncEngine
from gql_media.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    """Everything a running gql_media holds; the API reads it, never builds it."""

    settings: Settings
    db: Db
    index: IndexStore
    jobs: SqlJobStore
    bus: EventBus
    roots: list[Root]
    engine: SyncEngine
    runner: JobRunner
    extras: dict[str, object] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, steps: list[JobStep] | None = None) -> AsyncIterator[Services]:
    """Open the database (migrated), the bus, the sync engine and the job runner; close them after."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    await migrate(url)
    db = Db(url)
    await db.connect()
    try:
        index = IndexStore(db)
        jobs = SqlJobStore(db)
        roots = await index.ensure_roots(settings.root_paths)
        bus = MemoryBus()
        engine = SyncEngine(
            index, bus, roots, ignore_paths=[str(settings.data_dir)], batch_size=settings.sync_batch_size
        )
        runner = JobRunner(engine=engine, jobs=jobs, bus=bus, roots=roots, steps=steps or [])
        await runner.start()
        try:
            yield Services(settings, db, index, jobs, bus, roots, engine, runner)
        finally:
            await runner.stop()
    finally:
        await db.disconnect()
