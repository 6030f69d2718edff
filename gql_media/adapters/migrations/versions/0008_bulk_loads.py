"""The marker of a bulk load in progress: a first index that spans many write transactions.

A big first index is written in many transactions (a batch of folders each) with the secondary
indexes of ``videos`` and the search table's insert trigger dropped, and builds them after the
last batch. Between the first and the last batch this table holds one row: the first video id
the search table is missing, and the statements that make the dropped indexes and triggers
again. A kill in between leaves the row, and the next start finishes the load from it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_loads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("first_video_id", sa.BigInteger, nullable=False),
        sa.Column("restore", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bulk_loads")
