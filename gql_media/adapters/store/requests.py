"""Requests a follower forwards to the leader, kept in the ``job_requests`` table.

A follower inserts a PENDING row and polls it; the leader claims PENDING rows (TAKEN), runs them
and writes DONE with a JSON result or FAILED with a reason. A row not claimed before its
``expires_at`` is never run (the follower already told its client it failed). Rows a dead leader
had TAKEN are failed by the next leader rather than run again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from gql_media.adapters.store.db import Db

__all__ = ["ForwardedRequest", "RequestFailed", "RequestQueue"]

_KEPT_S = 24 * 3600.0


class RequestFailed(Exception):
    """The leader could not run a forwarded request, or none answered in time; the message says why."""


@dataclass(frozen=True, slots=True)
class ForwardedRequest:
    id: int
    kind: str
    payload: dict[str, Any]


class RequestQueue:
    """Both ends of the forwarding table (``instance`` names this replica in the rows)."""

    def __init__(self, db: Db, instance: str) -> None:
        self.db = db
        self.instance = instance

    # ------------------------------------------------------------------ follower side

    async def put(self, kind: str, payload: dict[str, Any], ttl_s: float) -> int:
        """Queue a request for the leader; returns its id."""
        now = time.time()
        async with self.db.writing() as conn:
            row = await conn.fetch_one(
                "INSERT INTO job_requests (kind, payload, state, requested_by, created_at, expires_at)"
                " VALUES (?, ?, 'PENDING', ?, ?, ?) RETURNING id",
                (kind, json.dumps(payload), self.instance, now, now + ttl_s),
            )
        assert row is not None
        return int(row[0])

    async def result(self, request_id: int, timeout_s: float) -> Any:
        """Wait for the leader's answer; raises ``RequestFailed`` on its failure or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        delay_s = 0.02
        while True:
            async with self.db.reading() as conn:
                row = await conn.fetch_one("SELECT state, result, error FROM job_requests WHERE id = ?", (request_id,))
            state = None if row is None else str(row[0])
            if row is not None and state == "DONE":
                return json.loads(row[1]) if row[1] is not None else None
            if row is None or state in ("FAILED", "EXPIRED"):
                raise RequestFailed(str(row[2]) if row is not None and row[2] else "the leader did not run the request")
            if time.monotonic() >= deadline:
                await self._expire(request_id)
                raise RequestFailed(f"no leader answered within {timeout_s:.0f} s")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 1.5, 0.25)

    async def call(self, kind: str, payload: dict[str, Any], timeout_s: float) -> Any:
        """``put`` then ``result``."""
        return await self.result(await self.put(kind, payload, timeout_s), timeout_s)

    async def _expire(self, request_id: int) -> None:
        # Only a row nobody claimed: a TAKEN one is running and will be answered.
        async with self.db.writing() as conn:
            await conn.execute(
                "UPDATE job_requests SET state = 'EXPIRED', finished_at = ? WHERE id = ? AND state = 'PENDING'",
                (time.time(), request_id),
            )

    # ------------------------------------------------------------------ leader side

    async def pending(self) -> bool:
        """Whether a request waits: a cheap read, while claiming takes this process's write lock."""
        async with self.db.reading() as conn:
            return await conn.fetch_one("SELECT 1 FROM job_requests WHERE state = 'PENDING' LIMIT 1") is not None

    async def claim(self, limit: int) -> list[ForwardedRequest]:
        """Take up to ``limit`` PENDING requests, oldest first; expired ones are marked and skipped."""
        now = time.time()
        async with self.db.writing() as conn:
            await conn.execute(
                "UPDATE job_requests SET state = 'EXPIRED', finished_at = ? WHERE state = 'PENDING' AND expires_at < ?",
                (now, now),
            )
            rows = await conn.fetch(
                "UPDATE job_requests SET state = 'TAKEN', taken_by = ? WHERE id IN"
                " (SELECT id FROM job_requests WHERE state = 'PENDING' ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)"
                " RETURNING id, kind, payload",
                (self.instance, limit),
            )
        return sorted((ForwardedRequest(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows), key=lambda r: r.id)

    async def finish(self, request_id: int, result: Any = None, error: str | None = None) -> None:
        state = "FAILED" if error is not None else "DONE"
        async with self.db.writing() as conn:
            await conn.execute(
                "UPDATE job_requests SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ?",
                (state, None if error is not None else json.dumps(result), error, time.time(), request_id),
            )

    async def fail_abandoned(self) -> int:
        """Fail requests a previous leader took but never answered, and drop day-old rows; returns the first."""
        now = time.time()
        async with self.db.writing() as conn:
            rows = await conn.fetch(
                "UPDATE job_requests SET state = 'FAILED', error = 'the leader stopped while running it',"
                " finished_at = ? WHERE state = 'TAKEN' RETURNING id",
                (now,),
            )
            await conn.execute("DELETE FROM job_requests WHERE created_at < ?", (now - _KEPT_S,))
        return len(rows)
