"""The changes a sync job publishes, gathered while it writes and published once its writes are done.

Up to the summary threshold a job publishes one change per entry it added, removed or moved, in
the order written; past it, one SUBTREE_CHANGED per changed subtree (``summary``), so only the
folders holding a change are kept. UPDATED changes (never summarised) come last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from gql_media.core.models import ChangeKind, EntryKind, LibraryChange, NewVideo, Root, SyncPlan, Update
from gql_media.core.sync.diff import Key
from gql_media.core.sync.summary import plan_changes, plan_places

__all__ = ["JobChanges", "change"]

# A plan adding, removing or moving more entries than this is counted in a thread (``count_plan``):
# the set of the folders holding its entries is built per entry, and a plan of 20,000 new videos
# took 5.4 ms of CPU (10,050: 2.7 ms), one step of the event loop beside the queries.
COUNTED_ON_LOOP = 1000


def change(
    roots: Mapping[int, Root],
    kind: ChangeKind,
    entry_kind: EntryKind,
    entry_id: int,
    root_id: int,
    path: str,
    old_path: str | None,
    job_id: int,
) -> LibraryChange:
    root = roots.get(root_id)
    root_path = root.path if root else None
    return LibraryChange(kind=kind, entry_kind=entry_kind, id=entry_id, root_id=root_id, root_path=root_path,
                         path=path, old_path=old_path, job_id=job_id)  # fmt: skip


class JobChanges:
    """What a job added, removed or moved, published once its writes are done.

    Up to the summary threshold, one change per entry (kept here, in the order written); past
    it, only the folders holding a change (``summary``): one SUBTREE_CHANGED per changed subtree.
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.counted = 0
        self.places: set[Key] = set()
        self.events: list[LibraryChange] | None = []
        self.updates: list[LibraryChange] = []  # published after the others, as they are never summarised

    @property
    def summarised(self) -> bool:
        return self.events is None

    def count(self, plan: SyncPlan, places: set[Key] | None = None) -> None:
        """Count a plan in; ``places``: its ``plan_places`` when the planner knew them already (a first index)."""
        self.counted += plan_changes(plan)
        self.places |= plan_places(plan) if places is None else places
        if self.counted > self.threshold:
            self.events = None

    async def count_plan(self, plan: SyncPlan, places: set[Key] | None = None) -> None:
        """``count``, in a thread when its places are to be found for more than ``COUNTED_ON_LOOP``
        entries (a first index's planner knows them already; the watcher's one new file is not
        worth a thread's round trip)."""
        if places is None and plan_changes(plan) > COUNTED_ON_LOOP:
            await asyncio.to_thread(self.count, plan)
        else:
            self.count(plan, places)

    def note_structure(self, plan: SyncPlan, roots: Mapping[int, Root], job_id: int) -> None:
        if self.events is None:
            return
        add = self.events.append
        for entry in plan.removed:
            add(change(roots, ChangeKind.REMOVED, entry.kind, entry.id, entry.root_id, entry.path, None, job_id))
        for move in plan.moves:
            add(change(roots, ChangeKind.MOVED, move.kind, move.id, move.root_id, move.entry.path, move.old_path,
                        job_id))  # fmt: skip
        for folder in plan.new_folders:
            add(change(roots, ChangeKind.ADDED, EntryKind.FOLDER, folder.id, folder.root_id, folder.entry.path,
                        None, job_id))  # fmt: skip

    def note_videos(self, batch: Sequence[NewVideo], roots: Mapping[int, Root], job_id: int) -> None:
        if self.events is None:
            return
        self.events.extend(
            change(roots, ChangeKind.ADDED, EntryKind.VIDEO, video.id, video.root_id, video.entry.path, None, job_id)
            for video in batch
        )

    def note_update(self, update: Update, roots: Mapping[int, Root], job_id: int) -> None:
        self.updates.append(change(roots, ChangeKind.UPDATED, update.kind, update.id, update.root_id,
                                    update.entry.path, None, job_id))  # fmt: skip

    def take_updates(self) -> list[LibraryChange]:
        updates, self.updates = self.updates, []
        return updates

    def take(self) -> list[LibraryChange]:
        events, self.events = self.events or [], []
        return events

    def take_places(self) -> set[Key]:
        places, self.places = self.places, set()
        return places
