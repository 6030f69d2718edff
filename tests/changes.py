"""The library change the event bus tests publish (tests/adapters/test_bus.py in memory, test_broadcast.py
across replicas): a video added under ``/lib``."""

from __future__ import annotations

from gql_media.core.models import ChangeKind, EntryKind, LibraryChange


def video_added(path: str, video_id: int = 1) -> LibraryChange:
    return LibraryChange(ChangeKind.ADDED, EntryKind.VIDEO, video_id, 1, "/lib", path)
