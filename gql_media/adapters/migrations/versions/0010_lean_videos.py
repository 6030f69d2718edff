"""A video's place is its folder and its name: no ``path`` column, ``UNIQUE (folder_id, name)``.

A video's relative path was written twice, once in its folder's row and once in its own, and
indexed by the unique ``(root_id, path)``, the widest key of the table. Now:

- ``videos.path`` is gone: the reads make it from the folder's path and the name (``reads.py``);
- ``ix_videos_folder_name`` becomes ``UNIQUE (folder_id, name)`` and the only key on place (on
  SQLite its entries end in the rowid, the id, as they did; on PostgreSQL an order by name then
  id within a folder sorts the rows of one name, at most one);
- ``uq_videos_root_path`` is gone with the column.

``path_bytes`` stays: the real bytes of the whole relative path when they are not valid UTF-8
(rare), as before.

On SQLite a column in a table constraint cannot be dropped: the table is made again (the definition
as stored, without the column and the constraint), its rows copied in id order, and its other
indexes and triggers made again as they were; foreign keys are off on the migration's connection
and ``PRAGMA foreign_key_check`` checks the references after. On PostgreSQL it is three statements.
A database taken down to 0009 by ``downgrade`` (the column added back at the end, its key an index)
comes up again the same way.
A video whose folder and name another already has (an index written behind the store's back) stops
the migration with the database as it was.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import logging
import re
import time

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

logger = logging.getLogger("gql_media.migrations")

# The path column and its key as made by 0001, or as this migration's downgrade adds them back (a
# column at the end, and a unique index).
_PATH_COLUMN = re.compile(r"(?<![\w])path TEXT NOT NULL(?: DEFAULT '')?, \s*")
_PLACE_KEY = re.compile(r"(?m)^\s*CONSTRAINT uq_videos_root_path UNIQUE \(root_id, path\), \n")
_PLACE_KEY_INDEX = "uq_videos_root_path"
_UNIQUE_PLACE = "CREATE UNIQUE INDEX ix_videos_folder_name ON videos (folder_id, name)"


def _step(message: str, *args: object) -> float:
    logger.info("migration 0010: " + message, *args)
    return time.perf_counter()


def _upgrade_sqlite(bind: sa.Connection) -> None:
    if bind.execute(sa.text("PRAGMA foreign_keys")).scalar_one():
        raise RuntimeError("migration 0010 must run with foreign keys off")
    started = _step("copying videos without their path column")
    (create,) = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'videos'")).one()
    definition = "(" + str(create).partition("(")[2]
    for pattern, expected in ((_PATH_COLUMN, {1}), (_PLACE_KEY, {0, 1})):
        definition, found = pattern.subn("", definition)
        if found not in expected:
            raise RuntimeError(f"migration 0010: videos' definition is not as expected ({pattern.pattern}): {create}")
    parts = bind.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'videos' AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL ORDER BY type, name"
        )
    ).all()
    columns = ", ".join(
        str(row[1]) for row in bind.execute(sa.text("PRAGMA table_info(videos)")).all() if row[1] != "path"
    )
    op.execute(f"CREATE TABLE videos_0010 {definition}")
    op.execute(f"INSERT INTO videos_0010 ({columns}) SELECT {columns} FROM videos ORDER BY id")
    op.execute("DROP TABLE videos")
    op.execute("ALTER TABLE videos_0010 RENAME TO videos")
    for name, sql in parts:
        if name != _PLACE_KEY_INDEX:
            op.execute(_UNIQUE_PLACE if name == "ix_videos_folder_name" else str(sql))
    broken = bind.execute(sa.text("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(f"migration 0010: {len(broken)} references broken by the copy, e.g. {broken[0]}")
    rows = bind.execute(sa.text("SELECT COUNT(*) FROM videos")).scalar_one()
    _step("videos: %d rows copied, indexes made again in %.1f s", rows, time.perf_counter() - started)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _upgrade_sqlite(bind)
        return
    started = _step("videos keyed by folder and name")
    op.execute("DROP INDEX ix_videos_folder_name")
    op.execute(_UNIQUE_PLACE)
    op.execute("ALTER TABLE videos DROP COLUMN path")  # and uq_videos_root_path with it
    _step("done in %.1f s", time.perf_counter() - started)


def downgrade() -> None:
    """The path column again, filled from the folders; the old keys back (SQLite: the column and
    its key are added as a column and a unique index, not a table constraint)."""
    op.execute("ALTER TABLE videos ADD COLUMN path TEXT NOT NULL DEFAULT ''")
    op.execute(
        "UPDATE videos SET path = (SELECT CASE WHEN f.path = '' THEN videos.name ELSE f.path || '/' || videos.name END"
        " FROM folders f WHERE f.id = videos.folder_id)"
    )
    op.execute("CREATE UNIQUE INDEX uq_videos_root_path ON videos (root_id, path)")
    op.execute("DROP INDEX ix_videos_folder_name")
    op.execute("CREATE INDEX ix_videos_folder_name ON videos (folder_id, name, id)")
