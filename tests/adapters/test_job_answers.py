"""``JobRunner.submit`` answers while the store's one writer is busy (a sync writing its batches),
and the job's row is still written, in order, before the job runs and when it ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gql_media.core.models import JobState, SyncMode, SyncRequest, SyncTrigger
from gql_media.services import Services
from tests.conftest import disk_tree, index_tree, run_sync, write


async def test_a_request_is_answered_while_the_writer_is_held_and_its_row_follows(
    services: Services, library: Path
) -> None:
    write(library / "a.mp4")
    await run_sync(services, library)
    write(library / "b.mp4")
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold_the_writer() -> None:
        async with services.db.writing():
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_writer())
    await held.wait()
    # The writer is only released after the answer: a submit waiting for it would never return
    # (the timeout only keeps a broken runner from hanging the suite).
    job = await asyncio.wait_for(services.runner.submit(SyncRequest(SyncMode.FULL, SyncTrigger.MANUAL)), 60)
    assert not holder.done()
    assert job.state is JobState.QUEUED
    seen = await services.runner.get(job.id)
    assert seen is not None and seen.state in (JobState.QUEUED, JobState.RUNNING)
    assert job.id in [listed.id for listed in await services.runner.list(5)]
    # A second request merges into the queued job, also without the writer.
    again = await asyncio.wait_for(services.runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL)), 60)
    assert again.id == job.id
    release.set()
    await holder
    final = await services.runner.wait(job.id, timeout_s=60)
    assert final is not None and final.state is JobState.SUCCEEDED
    stored = await services.jobs.get_job(job.id)
    assert stored is not None and stored.state is JobState.SUCCEEDED and stored.mode is SyncMode.FULL
    assert await index_tree(services) == disk_tree(library)


async def test_job_ids_keep_growing_across_requests(services: Services, library: Path) -> None:
    write(library / "a.mp4")
    first = await run_sync(services, library)
    second = await run_sync(services, library)
    third = await run_sync(services, library)
    assert first.id < second.id < third.id
    stored = [job.id for job in await services.jobs.list_jobs(10)]
    assert stored[:3] == [third.id, second.id, first.id]
