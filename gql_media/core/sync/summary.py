"""Big changes, summarised: which folder subtrees a big plan changed, one change each.

A job that adds, removes or moves more entries than a threshold does not publish one change per
entry (105k events for a first index keep the loop and every subscriber busy for seconds):
subscribers get one ``SUBTREE_CHANGED`` per changed folder subtree and refetch that folder.

A changed subtree is the folder holding an added, removed or moved entry (both places of a
move), unless a folder above it is one too: the topmost of those folders. Each is a folder that
stays in the index (were it added, removed or moved itself, its own folder would hold a change and
cover it), so its id is known. Pure (no I/O).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gql_media.core.models import SyncPlan, parent_of, run_videos
from gql_media.core.sync.diff import Key, has_ancestor

__all__ = ["changed_subtrees", "plan_changes", "plan_places", "topmost_subtrees"]


def plan_changes(plan: SyncPlan) -> int:
    """How many entries a plan adds, removes or moves (what the summary threshold counts)."""
    return (
        len(plan.removed) + len(plan.moves) + len(plan.new_folders) + len(plan.new_videos) + run_videos(plan.video_runs)
    )


def changed_subtrees(
    plan: SyncPlan, kept_folders: Mapping[Key, int], root_folders: Mapping[int, int]
) -> list[tuple[int, int, str]]:
    """``(folder id, root id, path)`` of the topmost folders under which the plan adds, removes or moves.

    ``kept_folders``: the folders that keep their place, by place, with their ids. A topmost folder
    not among them (not surveyed: never expected) falls back to its root's own folder
    (``root_folders``: root id to folder id), which then covers the whole root.
    """
    return topmost_subtrees(plan_places(plan), kept_folders, root_folders)


def plan_places(plan: SyncPlan) -> set[Key]:
    """The folders holding an entry the plan adds, removes or moves (both places of a move)."""
    places: set[Key] = {(v.root_id, parent_of(v.entry.path)) for v in plan.new_videos}
    places.update((run.root_id, run.folder) for run in plan.video_runs)
    places.update(_parents((e.root_id, e.path) for e in plan.removed))
    places.update(_parents((m.old_root_id, m.old_path) for m in plan.moves))
    places.update(_parents((m.root_id, m.entry.path) for m in plan.moves))
    places.update(_parents((f.root_id, f.entry.path) for f in plan.new_folders))
    return places


def topmost_subtrees(
    places: set[Key], kept_folders: Mapping[Key, int], root_folders: Mapping[int, int]
) -> list[tuple[int, int, str]]:
    """``changed_subtrees`` of the places of one or more plans (a streamed sync writes several)."""
    topmost = sorted(key for key in places if not has_ancestor(key, places))
    whole_roots = {root_id for root_id, path in topmost if (root_id, path) not in kept_folders}
    out: list[tuple[int, int, str]] = []
    for root_id, path in topmost:
        if root_id in whole_roots:
            continue
        out.append((kept_folders[(root_id, path)], root_id, path))
    out.extend((root_folders[root_id], root_id, "") for root_id in sorted(whole_roots) if root_id in root_folders)
    return out


def _parents(keys: Iterable[Key]) -> set[Key]:
    return {(root_id, parent_of(path)) for root_id, path in keys if path}
