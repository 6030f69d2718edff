"""Library folders added at run time: each root says where it came from (CONFIG or API).

Roots given on the command line or in the environment are written at every start (CONFIG);
roots added through ``addRoot`` (API) are loaded back at the next start with them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both engines: a batch copy of ``roots`` on SQLite would drop the table,
    # and its ON DELETE CASCADE would take the whole index with it.
    op.add_column("roots", sa.Column("origin", sa.Text, nullable=False, server_default="CONFIG"))


def downgrade() -> None:
    op.drop_column("roots", "origin")
