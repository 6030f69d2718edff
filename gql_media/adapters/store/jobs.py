"""Sync jobs kept in the database for the API (the ``JobStore`` port)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gql_media.adapters.codecs import epoch_s, from_epoch_s
from gql_media.adapters.store.db import Db
from gql_media.adapters.store.index import take_ids
from gql_media.core.models import (
    JobState,
    SyncErrorInfo,
    SyncJob,
    SyncMode,
    SyncPhase,
    SyncProgress,
    SyncTrigger,
)

_COLUMNS = "id, mode, trigger, paths, state, created_at, started_at, finished_at, progress, errors"


def _progress_json(progress: SyncProgress) -> str:
    return json.dumps(
        {
            "sequence": progress.sequence,
            "state": progress.state.value,
            "phase": progress.phase.value,
            "done": progress.done,
            "total": progress.total,
            "current_path": progress.current_path,
            "added": progress.added,
            "updated": progress.updated,
            "removed": progress.removed,
            "moved": progress.moved,
            "failed": progress.failed,
            "elapsed_s": progress.elapsed_s,
        }
    )


def _job_from_row(row: tuple[Any, ...]) -> SyncJob:
    job_id = int(row[0])
    progress = json.loads(row[8])
    progress["state"] = JobState(progress["state"])
    progress["phase"] = SyncPhase(progress["phase"])
    errors = tuple(SyncErrorInfo(path=e["path"], message=e["message"]) for e in json.loads(row[9]))
    created = from_epoch_s(row[5])
    assert created is not None
    return SyncJob(
        id=job_id,
        mode=SyncMode(row[1]),
        trigger=SyncTrigger(row[2]),
        paths=tuple(json.loads(row[3])),
        state=JobState(row[4]),
        created_at=created,
        started_at=from_epoch_s(row[6]),
        finished_at=from_epoch_s(row[7]),
        progress=SyncProgress(job_id=job_id, **progress),
        errors=errors,
    )


class SqlJobStore:
    """Implements ``ports.JobStore`` on a ``Db``."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def next_job_id(self) -> int:
        async with self.db.writing() as conn:
            return await take_ids(conn, "sync_jobs", 1)

    async def save_job(self, job: SyncJob) -> None:
        errors = json.dumps([{"path": e.path, "message": e.message} for e in job.errors])
        async with self.db.writing() as conn:
            await conn.execute(
                f"INSERT INTO sync_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state, paths = excluded.paths,"
                " mode = excluded.mode, started_at = excluded.started_at, finished_at = excluded.finished_at,"
                " progress = excluded.progress, errors = excluded.errors",
                (
                    job.id,
                    job.mode.value,
                    job.trigger.value,
                    json.dumps(list(job.paths)),
                    job.state.value,
                    epoch_s(job.created_at),
                    epoch_s(job.started_at),
                    epoch_s(job.finished_at),
                    _progress_json(job.progress),
                    errors,
                ),
            )

    async def list_jobs(self, limit: int, offset: int = 0) -> list[SyncJob]:
        async with self.db.reading() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM sync_jobs ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)
            )
        return [_job_from_row(r) for r in rows]

    async def get_job(self, job_id: int) -> SyncJob | None:
        async with self.db.reading() as conn:
            row = await conn.fetch_one(f"SELECT {_COLUMNS} FROM sync_jobs WHERE id = ?", (job_id,))
        return None if row is None else _job_from_row(row)

    async def fail_unfinished_jobs(self, message: str) -> int:
        async with self.db.writing() as conn:
            rows = await conn.fetch("SELECT id FROM sync_jobs WHERE state IN ('QUEUED', 'RUNNING')")
            await conn.executemany(
                "UPDATE sync_jobs SET state = 'FAILED', finished_at = ?, errors = ? WHERE id = ?",
                [
                    (datetime.now(UTC).timestamp(), json.dumps([{"path": "", "message": message}]), int(r[0]))
                    for r in rows
                ],
            )
        return len(rows)
