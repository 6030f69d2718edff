"""asyncpg connections of their own, outside the store's pool: the leader's lock session and the
PostgreSQL transport's LISTEN and NOTIFY connections are opened and given up alike."""

from __future__ import annotations

import contextlib

import asyncpg

__all__ = ["asyncpg_dsn", "close_quietly"]


def asyncpg_dsn(url: str) -> str:
    """asyncpg's DSN for a ``postgres://`` or ``postgresql://`` URL (driver suffixes removed)."""
    return "postgresql://" + url.split("://", 1)[1]


async def close_quietly(connection: asyncpg.Connection | None) -> None:
    """Close ``connection`` (if any) within 2 s, whatever its state: it is being given up."""
    if connection is not None:
        with contextlib.suppress(Exception):
            await connection.close(timeout=2)
