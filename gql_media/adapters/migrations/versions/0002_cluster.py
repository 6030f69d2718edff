"""Scale-out: requests followers forward to the leader, and who leads.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A follower inserts a row; the leader claims it, runs it and writes the result back.
    op.create_table(
        "job_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="PENDING"),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("taken_by", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_job_requests_state", "job_requests", ["state"])
    # One row (id = 1): the instance holding the leader lock, written by that instance when elected.
    op.create_table(
        "cluster_leader",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("instance", sa.Text, nullable=False),
        sa.Column("elected_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_leader")
    op.drop_index("ix_job_requests_state", "job_requests")
    op.drop_table("job_requests")
