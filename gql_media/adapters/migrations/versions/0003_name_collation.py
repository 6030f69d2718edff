"""Names compare byte-wise on PostgreSQL too: the ``name`` columns get the ``C`` collation.

Folders and videos are listed by name; with the database's default collation (often
``en_US.UTF-8``) PostgreSQL ordered them case- and accent-insensitively, unlike SQLite's BINARY
order (and the paths' ``C`` order). SQLite needs nothing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("folders", "videos"):
        op.alter_column(table, "name", type_=sa.Text(collation="C"), existing_type=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("folders", "videos"):
        op.alter_column(table, "name", type_=sa.Text(), existing_type=sa.Text(collation="C"), existing_nullable=False)
