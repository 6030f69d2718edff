"""A million files: a name-search index, folder totals, keyset indexes and a depth-first index.

- Name search: on SQLite an FTS5 table with the trigram tokenizer over ``videos.name_fold``
  (external content, kept by triggers in the same transaction as the rows); on PostgreSQL a GIN
  ``pg_trgm`` index on the same column, when the server has the extension (otherwise the search
  stays a scan, and this says so).
- Folder totals: each folder's direct and recursive video count and total size, counted once
  here; the store keeps them from then on.
- Keyset indexes: every video order ends in the id tie-breaker, so a page is an index range; the
  single-column indexes they replace go (one writer pays for every index on every insert).
- Depth-first order of a subtree (``descendants``): an index on the path with ``/`` as ``\\x01``.

Building these for an existing index takes a while (about 10 s per 100k videos on SQLite): each
step is logged.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

logger = logging.getLogger("gql_media.migrations")

_TOTALS = ("video_count", "total_size", "tree_video_count", "tree_total_size")
_UPDATES_PER_BATCH = 5_000

# The sort key of a path in depth-first order ("a", "a/x", "a b"); the reads use the same text.
DEPTH_FIRST_KEY = {"sqlite": "replace(path, '/', char(1))", "postgresql": "replace(path, '/', chr(1))"}
DURATION_KEY = "COALESCE(duration_s, -1.0)"

_REPLACED_INDEXES = {
    # name: (table, old columns, new columns)
    "ix_videos_size": ("videos", "size", "size, id"),
    "ix_videos_mtime": ("videos", "mtime_ns", "mtime_ns, id"),
    "ix_videos_name": ("videos", "name", "name, id"),
    "ix_videos_status": ("videos", "status", "status, name, id"),
    "ix_videos_folder_name": ("videos", "folder_id, name", "folder_id, name, id"),
    "ix_folders_parent_name": ("folders", "parent_id, name", "parent_id, name, id"),
}

_SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE videos_search USING fts5(name_fold, content='videos', content_rowid='id',"
    " tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER videos_search_insert AFTER INSERT ON videos BEGIN"
    " INSERT INTO videos_search (rowid, name_fold) VALUES (new.id, new.name_fold); END",
    "CREATE TRIGGER videos_search_delete AFTER DELETE ON videos BEGIN"
    " INSERT INTO videos_search (videos_search, rowid, name_fold) VALUES ('delete', old.id, old.name_fold); END",
    "CREATE TRIGGER videos_search_update AFTER UPDATE OF name_fold ON videos BEGIN"
    " INSERT INTO videos_search (videos_search, rowid, name_fold) VALUES ('delete', old.id, old.name_fold);"
    " INSERT INTO videos_search (rowid, name_fold) VALUES (new.id, new.name_fold); END",
)


def _step(message: str, *args: object) -> float:
    logger.info("migration 0006: " + message, *args)
    return time.perf_counter()


def _has_trigram_extension(bind: sa.Connection) -> bool:
    row = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
    return row is not None


def _build_search(bind: sa.Connection, dialect: str) -> None:
    started = _step("building the name-search index")
    if dialect == "sqlite":
        for statement in _SQLITE_SEARCH:
            op.execute(statement)
        op.execute("INSERT INTO videos_search (videos_search) VALUES ('rebuild')")
    elif _has_trigram_extension(bind):
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_videos_name_fold_trgm ON videos USING gin (name_fold gin_trgm_ops)")
    else:
        logger.warning("migration 0006: this PostgreSQL has no pg_trgm extension: name search stays a scan")
        return
    _step("name-search index built in %.1f s", time.perf_counter() - started)


def _ancestors(path: str) -> list[str]:
    """The folder itself and every folder above it, up to the root's own folder ('')."""
    paths = [path]
    while path:
        path = path.rpartition("/")[0]
        paths.append(path)
    return paths


def _count_totals(bind: sa.Connection) -> None:
    started = _step("counting the videos of every folder")
    op.execute(
        "UPDATE folders SET video_count = s.videos, total_size = s.bytes FROM (SELECT folder_id, COUNT(*) AS videos,"
        " COALESCE(SUM(size), 0) AS bytes FROM videos GROUP BY folder_id) AS s WHERE folders.id = s.folder_id"
    )
    rows = bind.execute(sa.text("SELECT id, root_id, path, video_count, total_size FROM folders")).all()
    ids = {(int(r[1]), str(r[2])): int(r[0]) for r in rows}
    tree: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _id, root_id, path, videos, size in rows:
        if not videos:
            continue
        for ancestor in _ancestors(str(path)):
            folder_id = ids.get((int(root_id), ancestor))
            if folder_id is not None:
                totals = tree[folder_id]
                totals[0] += int(videos)
                totals[1] += int(size)
    updates = [{"id": folder_id, "videos": t[0], "bytes": t[1]} for folder_id, t in tree.items()]
    statement = sa.text("UPDATE folders SET tree_video_count = :videos, tree_total_size = :bytes WHERE id = :id")
    for start in range(0, len(updates), _UPDATES_PER_BATCH):
        bind.execute(statement, updates[start : start + _UPDATES_PER_BATCH])
        _step("folder totals: %d of %d folders", min(start + _UPDATES_PER_BATCH, len(updates)), len(updates))
    _step("folder totals of %d folders counted in %.1f s", len(rows), time.perf_counter() - started)


def _replace_indexes(dialect: str) -> None:
    started = _step("rebuilding the keyset indexes")
    for name, (table, _old, new) in _REPLACED_INDEXES.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON {table} ({new})")
        _step("index %s (%s) built", name, new)
    op.execute("DROP INDEX ix_videos_duration")
    op.execute(f"CREATE INDEX ix_videos_duration_key ON videos (({DURATION_KEY}), id)")
    key = DEPTH_FIRST_KEY[dialect]
    for table in ("folders", "videos"):
        op.execute(f"CREATE INDEX ix_{table}_depth_first ON {table} (root_id, ({key}))")
    _step("keyset and depth-first indexes built in %.1f s", time.perf_counter() - started)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for column in _TOTALS:
        op.execute(f"ALTER TABLE folders ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0")
    _count_totals(bind)
    _build_search(bind, dialect)
    _replace_indexes(dialect)


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for table in ("folders", "videos"):
        op.execute(f"DROP INDEX ix_{table}_depth_first")
    op.execute("DROP INDEX ix_videos_duration_key")
    op.execute("CREATE INDEX ix_videos_duration ON videos (duration_s)")
    for name, (table, old, _new) in _REPLACED_INDEXES.items():
        op.execute(f"DROP INDEX {name}")
        op.execute(f"CREATE INDEX {name} ON {table} ({old})")
    if dialect == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER videos_search_{trigger}")
        op.execute("DROP TABLE videos_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_videos_name_fold_trgm")
    for column in _TOTALS:
        op.drop_column("folders", column)
