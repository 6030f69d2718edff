"""Folders and videos keyed by SQLite's rowid; no depth-first index on ``videos``.

- **SQLite: the id is the rowid.** A ``BIGINT PRIMARY KEY`` is not SQLite's rowid: each of the two
  tables kept a second B-tree (its primary key's index) beside the table's own, written for every
  row and read for every lookup by id. Declared ``INTEGER`` it becomes the rowid (the same 64-bit
  values): ``folders`` and ``videos`` are made again with the same columns, their rows copied in id
  order, and their indexes and triggers made again as they were. (PostgreSQL has no rowid:
  nothing to do there.)
- **Both: ``ix_videos_depth_first`` goes.** ``descendants`` pages by the folders' depth-first
  index and each folder's videos by ``ix_videos_folder_name`` (a folder, then its videos, then its
  sub-folders' subtrees); a first index no longer writes that index for each video.

On SQLite the copy runs with foreign keys off (the migration's connection never turns them on):
dropping the old ``folders`` must not cascade to the videos. ``PRAGMA foreign_key_check`` then
checks every reference. Progress is logged per table (an index of 100k videos: about 1 s).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import logging
import re
import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

logger = logging.getLogger("gql_media.migrations")

_DEPTH_FIRST_KEY = {"sqlite": "replace(path, '/', char(1))", "postgresql": "replace(path, '/', chr(1))"}
_ROWID_TABLES = ("folders", "videos")


def _step(message: str, *args: object) -> float:
    logger.info("migration 0009: " + message, *args)
    return time.perf_counter()


def _remake(bind: sa.Connection, table: str, id_type: str, dropped: frozenset[str]) -> None:
    """Make ``table`` again with its id declared ``id_type``, its rows, indexes and triggers kept
    (but the indexes named in ``dropped``)."""
    started = _step("copying %s", table)
    (create,) = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"), {"table": table}
    ).one()
    parts = bind.execute(
        sa.text(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :table AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL ORDER BY type, name"
        ),
        {"table": table},
    ).all()
    # The id column as made (not root_id's or parent_id's): the one whose line starts with it.
    id_column = re.compile(r"(?m)^\s*id (BIGINT|INTEGER) NOT NULL,")
    definition, found = id_column.subn(f"\tid {id_type} NOT NULL,", "(" + str(create).partition("(")[2])
    if found != 1:
        raise RuntimeError(f"migration 0009: no single id column found in {table}'s definition: {create}")
    copy = f"{table}_0009"
    op.execute(f"CREATE TABLE {copy} {definition}")
    op.execute(f"INSERT INTO {copy} SELECT * FROM {table} ORDER BY id")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {copy} RENAME TO {table}")
    for _kind, name, sql in parts:
        if name not in dropped:
            op.execute(str(sql))
    rows = bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    _step("%s: %d rows copied, indexes made again in %.1f s", table, rows, time.perf_counter() - started)


def _upgrade_sqlite(bind: sa.Connection) -> None:
    if bind.execute(sa.text("PRAGMA foreign_keys")).scalar_one():
        raise RuntimeError("migration 0009 must run with foreign keys off (dropping folders would cascade)")
    for table in _ROWID_TABLES:
        _remake(bind, table, "INTEGER", frozenset({"ix_videos_depth_first"}))
    broken = bind.execute(sa.text("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(f"migration 0009: {len(broken)} references broken by the copy, e.g. {broken[0]}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _upgrade_sqlite(bind)
    else:
        op.execute("DROP INDEX ix_videos_depth_first")
        _step("ix_videos_depth_first dropped")


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        for table in _ROWID_TABLES:
            _remake(bind, table, "BIGINT", frozenset())
    op.execute(f"CREATE INDEX ix_videos_depth_first ON videos (root_id, ({_DEPTH_FIRST_KEY[dialect]}))")
