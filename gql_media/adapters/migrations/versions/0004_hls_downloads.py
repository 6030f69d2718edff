"""HLS downloads are never silent: each download folder's state, its reason and its segment counts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    path_text = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
    op.create_table(
        "hls_downloads",
        sa.Column("root_id", sa.BigInteger, sa.ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", path_text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("segments_present", sa.Integer, nullable=False, server_default="0"),
        sa.Column("segments_expected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("playlist", sa.Text, nullable=True),
        sa.Column("output_path", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("root_id", "path", name="pk_hls_downloads"),
    )


def downgrade() -> None:
    op.drop_table("hls_downloads")
