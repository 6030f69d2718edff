"""Id planning: a ``Diff`` becomes the ``SyncPlan`` to write, every new entry with its id and parent.

Pure (no I/O). New folders take ids from a reserved range, shallowest first; every new or moved
entry gets its parent folder's id. An entry whose parent is not indexed (nor written in this
plan) is an orphan: it is not written, and the next sync picks it up.

A first index plans each walked batch at once (``plan_new_entries``): its entries are all new, in
the walk's order (a folder before what it holds), so they need no ``Diff`` and take their ids from
an ``IdBlock`` reserved ahead, while the batch before is still being written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from gql_media.core.models import EntryKind, Move, NewFolder, NewVideo, ScanEntry, SyncPlan, Update, VideoRun, parent_of
from gql_media.core.sync.diff import Diff, Key

__all__ = ["IdBlock", "Orphan", "assign_ids", "plan_new_entries"]

_ORPHAN_REASON = "parent folder not indexed; will be picked up by the next sync"


@dataclass(frozen=True, slots=True)
class Orphan:
    """An entry left out of the plan, and why."""

    key: Key
    reason: str = _ORPHAN_REASON


def assign_ids(diff: Diff, first_folder_id: int, first_video_id: int) -> tuple[SyncPlan, list[Orphan]]:
    """Give new entries their ids (from the reserved ranges) and every new or moved entry its parent folder id."""
    kept = diff.kept_folders  # read, never copied: a streamed sync plans each batch against all of them
    folder_ids: dict[Key, int] = {}  # the folders this plan writes (new or moved)
    for old, key, entry in diff.moves:
        if entry.kind is EntryKind.FOLDER:
            folder_ids[key] = old.id
    new_folders_sorted = sorted(diff.added_folders, key=lambda item: item[0][1].count("/"))
    for offset, (key, _entry) in enumerate(new_folders_sorted):
        folder_ids[key] = first_folder_id + offset

    def parent_id(key: Key) -> int | None:
        parent = (key[0], parent_of(key[1]))
        found = folder_ids.get(parent)
        return kept.get(parent) if found is None else found

    plan = SyncPlan(removed=diff.removed)
    orphans: list[Orphan] = []
    for key, entry in new_folders_sorted:
        parent = parent_id(key)
        if parent is None or key[1] == "":
            orphans.append(Orphan(key))
            folder_ids.pop(key, None)  # its entries are orphans too: never rows under a folder not written
            continue
        plan.new_folders.append(NewFolder(folder_ids[key], key[0], parent, entry))
    # In path order, so ids and paths grow together: the store's indexes are appended to, not split.
    diff.added_videos.sort(key=_KEY)
    # One per new file (a first index: every file), so the folder's id is looked up once per run of
    # its videos (a video of the run before's folder: same root, its last "/" where the run's was,
    # and the same text before it; no string made), and each row is made as the plain tuple it is.
    append = plan.new_videos.append
    make = tuple.__new__
    last_root, last_cut, last_dir = -1, -2, ""
    folder_id: int | None = None
    for offset, (key, entry) in enumerate(diff.added_videos):
        root_id, path = key
        cut = path.rfind("/")
        if cut != last_cut or root_id != last_root or not path.startswith(last_dir):
            last_root, last_cut, last_dir = root_id, cut, path[:cut] if cut > 0 else ""
            folder = (root_id, last_dir)
            found = folder_ids.get(folder)
            folder_id = kept.get(folder) if found is None else found
        if folder_id is None:
            orphans.append(Orphan(key))
            continue
        append(make(NewVideo, (first_video_id + offset, root_id, folder_id, entry)))
    for old, key, entry in diff.moves:
        parent = parent_id(key)
        if parent is None or key[1] == "":
            orphans.append(Orphan(key))
            plan.removed.append(old)
            continue
        plan.moves.append(Move(entry.kind, old.id, old.root_id, old.path, key[0], parent, entry))
    plan.updates = [Update(old.kind, old.id, old.root_id, entry) for old, entry in diff.updates]
    return plan, orphans


_KEY = itemgetter(0)  # of a (key, entry) pair: sorted by it in C


@dataclass(slots=True)
class IdBlock:
    """Ids reserved ahead for the batches of a first index: folders ``[folder, folder_end)``, videos
    ``[video, video_end)``. A batch is planned from the block while the batch before is still being
    written (a reservation would wait for that write); what is left at the end is given back."""

    folder: int = 0
    folder_end: int = 0
    video: int = 0
    video_end: int = 0
    folders_reserved: int = 0  # by every reservation so far
    videos_reserved: int = 0

    def lacks(self, folders: int, videos: int) -> bool:
        return self.folder + folders > self.folder_end or self.video + videos > self.video_end

    def add(self, first_folder: int, folders: int, first_video: int, videos: int) -> None:
        """A new reservation: it continues the block where it follows it, else replaces it (the rest unused)."""
        self.folders_reserved += folders
        self.videos_reserved += videos
        if first_folder != self.folder_end:
            self.folder = first_folder
        self.folder_end = first_folder + folders
        if first_video != self.video_end:
            self.video = first_video
        self.video_end = first_video + videos


def plan_new_entries(
    entries: Sequence[ScanEntry], root_id: int, kept: dict[Key, int], ids: IdBlock, runs: Sequence[VideoRun] = ()
) -> tuple[SyncPlan, list[Orphan], set[Key]]:
    """The plan of a first index's batch (``entries``: all new, of one root, in the walk's order, so
    a folder comes before its entries; ``runs``: more new videos, a folder's at a time, met after
    the folder's entry); the folders its new entries go into (``SyncPlan`` places).

    New folders take their ids in that order and go into ``kept`` at once (the next batches hold
    their entries); videos take theirs in path order, as ``assign_ids`` gives them, and then the
    runs' in their order (``plan.video_runs``: each run a folder id and its first id, nothing per
    video). The ids come from ``ids``, which must hold enough (``IdBlock.lacks``).
    """
    plan = SyncPlan()
    orphans: list[Orphan] = []
    places: set[Key] = set()
    videos: list[ScanEntry] = []
    add_video = videos.append
    folder_kind = EntryKind.FOLDER
    make = tuple.__new__
    for entry in entries:
        if entry[0] is not folder_kind:
            add_video(entry)
            continue
        path = entry[1]
        parent = (root_id, parent_of(path))
        parent_id = kept.get(parent)
        if parent_id is None or not path:
            orphans.append(Orphan((root_id, path)))
            continue
        kept[(root_id, path)] = ids.folder
        places.add(parent)
        plan.new_folders.append(NewFolder(ids.folder, root_id, parent_id, entry))
        ids.folder += 1
    videos.sort(key=_PATH)
    append = plan.new_videos.append
    video_id = ids.video
    last_cut, last_dir = -2, ""
    folder_id: int | None = None
    for entry in videos:
        path = entry[1]
        cut = path.rfind("/")
        if cut != last_cut or not path.startswith(last_dir):  # another folder's run (see ``assign_ids``)
            last_cut, last_dir = cut, path[:cut] if cut > 0 else ""
            folder = (root_id, last_dir)
            folder_id = kept.get(folder)
            if folder_id is not None:
                places.add(folder)
        if folder_id is None:
            orphans.append(Orphan((root_id, path)))
        else:
            append(make(NewVideo, (video_id, root_id, folder_id, entry)))
        video_id += 1
    for run in runs:
        folder = (root_id, run.folder)
        folder_id = kept.get(folder)
        count = len(run.names)
        if folder_id is None:
            orphans.extend(Orphan((root_id, path)) for path in run.paths())
        else:
            places.add(folder)
            plan.video_runs.append(run._replace(first_id=video_id, root_id=root_id, folder_id=folder_id))
        video_id += count
    ids.video = video_id
    return plan, orphans, places


_PATH = itemgetter(1)  # of a ScanEntry
