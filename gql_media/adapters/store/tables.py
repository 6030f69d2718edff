"""The index's tables, as SQLAlchemy Core metadata (migrations and queries share it).

Times are UTC epoch seconds (float) and file times are integer nanoseconds, so the raw
driver paths write plain numbers on SQLite and PostgreSQL alike. Ids are given by the store
(from ``id_counters``), never reused, so a Relay id keeps meaning one thing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# Paths compare byte-wise so "under a path" is a range scan on both engines; names too, so
# listings by name come in the same (code point) order on both (migration 0003).
PathText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


# On SQLite a primary key declared INTEGER is the rowid (the same 64-bit values): the table is
# keyed by it, with no second B-tree for the key (migration 0009, for folders and videos).
_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _store_id(*, rowid: bool = False) -> sa.Column[int]:
    """The id of a row the store numbers (from ``id_counters``): never given by the database, never reused."""
    return sa.Column("id", _ROWID if rowid else sa.BigInteger, primary_key=True, autoincrement=False)


def _entry_columns(parent: sa.Column[int], *, with_path: bool) -> list[sa.Column[Any]]:
    """The columns that place a folder or a video in the tree: its id, its root, ``parent`` (the
    column of the folder it is in), its path as text (a folder's only: a video's is its folder's
    and its name, migration 0010), the whole path as bytes when not valid UTF-8, and its name."""
    return [
        _store_id(rowid=True),
        sa.Column("root_id", sa.BigInteger, sa.ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
        parent,
        *([sa.Column("path", PathText, nullable=False)] if with_path else []),
        sa.Column("path_bytes", sa.LargeBinary, nullable=True),
        sa.Column("name", PathText, nullable=False),
    ]


roots = sa.Table(
    "roots",
    metadata,
    _store_id(),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # CONFIG: from the command line or the environment; API: added by addRoot, loaded at start (0005).
    sa.Column("origin", sa.Text, nullable=False, server_default="CONFIG"),
)

folders = sa.Table(
    "folders",
    metadata,
    *_entry_columns(
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("folders.id", ondelete="CASCADE"), nullable=True),
        with_path=True,
    ),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("inode", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("device", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    # The videos directly in the folder and in its whole subtree (itself included), kept by the
    # store in the same transactions as the videos (migration 0006).
    sa.Column("video_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total_size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("tree_video_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("tree_total_size", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("root_id", "path", name="uq_folders_root_path"),
    sa.Index("ix_folders_parent_name", "parent_id", "name", "id"),
)

videos = sa.Table(
    "videos",
    metadata,
    *_entry_columns(
        sa.Column("folder_id", sa.BigInteger, sa.ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
        with_path=False,
    ),
    # casefold()ed name: case-insensitive search for any script, not only ASCII.
    sa.Column("name_fold", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("inode", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("device", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
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
    # A video's place: its folder and its name (migration 0010; on SQLite the entries end in the
    # rowid, the id).
    sa.Index("ix_videos_folder_name", "folder_id", "name", unique=True),
    # Every order ends in the id tie-breaker, so a keyset page is an index range (migration 0006);
    # ix_videos_duration_key on (COALESCE(duration_s, -1.0), id), the folders' depth-first index and
    # the name-search index (FTS5 trigram on SQLite, without token counts since 0007; pg_trgm on
    # PostgreSQL) are in the migrations only. (The videos' depth-first index went in 0009:
    # ``descendants`` reads a folder's videos by ix_videos_folder_name.)
    sa.Index("ix_videos_status", "status", "name", "id"),
    sa.Index("ix_videos_mtime", "mtime_ns", "id"),
    sa.Index("ix_videos_size", "size", "id"),
    sa.Index("ix_videos_name", "name", "id"),
)

id_counters = sa.Table(
    "id_counters",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("next_id", sa.BigInteger, nullable=False),
)

sync_jobs = sa.Table(
    "sync_jobs",
    metadata,
    _store_id(),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("paths", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("progress", sa.Text, nullable=False),
    sa.Column("errors", sa.Text, nullable=False),
    sa.Index("ix_sync_jobs_state", "state"),
)

# One row per HLS download folder a sync looked at (migration 0004): what became of it and why.
hls_downloads = sa.Table(
    "hls_downloads",
    metadata,
    sa.Column("root_id", sa.BigInteger, sa.ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
    sa.Column("path", PathText, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("segments_present", sa.Integer, nullable=False, server_default="0"),
    sa.Column("segments_expected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("playlist", sa.Text, nullable=True),
    sa.Column("output_path", sa.Text, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("root_id", "path", name="pk_hls_downloads"),
)

# A bulk load in progress (migration 0008, ``bulk.py``): at most one row, while a big first index
# spans several write transactions with the secondary indexes of ``videos`` dropped.
bulk_loads = sa.Table(
    "bulk_loads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("first_video_id", sa.BigInteger, nullable=False),
    sa.Column("restore", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
)


def video_path(video: str = "v", folder: str = "vf") -> str:
    """SQL: the relative path of the video aliased ``video``, made from its folder's (aliased ``folder``,
    joined on ``folder_id``: ``VIDEOS_IN_FOLDERS``) and its name: a video row holds no path (migration 0010)."""
    return f"CASE WHEN {folder}.path = '' THEN {video}.name ELSE {folder}.path || '/' || {video}.name END"


# The videos (``v``) with their folders (``vf``), for ``video_path()``: a search of the folders' rowid per video.
VIDEOS_IN_FOLDERS = "videos v JOIN folders vf ON vf.id = v.folder_id"
