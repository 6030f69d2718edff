"""SQL for tests that look into the index: a video row holds no path (migration 0010).

``VIDEOS`` reads like the ``videos`` table with its ``path`` back (made from the folder's path and
the name, as the store's reads make it), on SQLite and PostgreSQL alike:
``f"SELECT path, status FROM {VIDEOS}"``; ``f"UPDATE videos SET ... WHERE id IN {video_ids_at('a.mp4')}"``.
"""

from __future__ import annotations

from gql_media.adapters.store.tables import VIDEOS_IN_FOLDERS, video_path

VIDEOS_WITH_PATHS = f"(SELECT v.*, {video_path()} AS path FROM {VIDEOS_IN_FOLDERS})"
VIDEOS = f"{VIDEOS_WITH_PATHS} AS videos"
VIDEOS_AS_V = f"{VIDEOS_WITH_PATHS} AS v"


def video_ids_at(path: str) -> str:
    """A subquery of the ids of the videos at ``path`` (any root); ``path`` holds no quote."""
    assert "'" not in path
    return f"(SELECT id FROM {VIDEOS} WHERE path = '{path}')"
