"""The initial index: roots, folders, videos, id counters, sync jobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PathText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _entry_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_id", sa.BigInteger, sa.ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", PathText, nullable=False),
        sa.Column("path_bytes", sa.LargeBinary, nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("inode", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("device", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "roots",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "folders",
        *_entry_columns(),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("folders.id", ondelete="CASCADE"), nullable=True),
        sa.UniqueConstraint("root_id", "path", name="uq_folders_root_path"),
    )
    op.create_index("ix_folders_parent_name", "folders", ["parent_id", "name"])
    op.create_table(
        "videos",
        *_entry_columns(),
        sa.Column("folder_id", sa.BigInteger, sa.ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name_fold", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="PENDING"),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("video_codec", sa.Text, nullable=True),
        sa.Column("audio_codec", sa.Text, nullable=True),
        sa.Column("container", sa.Text, nullable=True),
        sa.Column("bitrate", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("thumbnail_key", sa.Text, nullable=True),
        sa.UniqueConstraint("root_id", "path", name="uq_videos_root_path"),
    )
    for name, columns in {
        "ix_videos_folder_name": ["folder_id", "name"],
        "ix_videos_status": ["status"],
        "ix_videos_mtime": ["mtime_ns"],
        "ix_videos_size": ["size"],
        "ix_videos_duration": ["duration_s"],
        "ix_videos_name": ["name"],
    }.items():
        op.create_index(name, "videos", columns)
    op.create_table(
        "id_counters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("next_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sync_jobs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("paths", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
    )
    op.create_index("ix_sync_jobs_state", "sync_jobs", ["state"])


def downgrade() -> None:
    for table in ("sync_jobs", "id_counters", "videos", "folders", "roots"):
        op.drop_table(table)
