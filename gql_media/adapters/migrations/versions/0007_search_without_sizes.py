"""The name-search table without its per-video token counts (SQLite; nothing to do on PostgreSQL).

FTS5 keeps one row of token counts per video (its ``_docsize`` table) for ranking with bm25,
which a name search never does: filling it was about half of building the search table (0.25 ->
0.12 s of CPU per 100k videos, the rebuild a first index ends with) and one more write per
inserted video. The table is made again with ``columnsize=0`` and rebuilt from the videos (1.7 s
for an index of 100k built by the version before, on 2 loaded cores); migration 0006's triggers,
on ``videos``, stay as they are, and so do the ids the search table is keyed by.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import logging
import time

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

logger = logging.getLogger("gql_media.migrations")

_CREATE = (
    "CREATE VIRTUAL TABLE videos_search USING fts5(name_fold, content='videos', content_rowid='id',"
    " tokenize='trigram case_sensitive 1'{options})"
)


def _remake(options: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    started = time.perf_counter()
    op.execute("DROP TABLE videos_search")
    op.execute(_CREATE.format(options=options))
    op.execute("INSERT INTO videos_search (videos_search) VALUES ('rebuild')")
    logger.info("migration 0007: name-search table rebuilt in %.1f s", time.perf_counter() - started)


def upgrade() -> None:
    _remake(", columnsize=0")


def downgrade() -> None:
    _remake("")
