"""Folder totals: how many videos each folder holds and their size, directly and in its subtree.

The store keeps them as deltas inside the write transaction that changes the videos, so a read
of ``videoCount``/``totalSize`` is one row at any library size. A video counts in its folder's
direct totals and in the recursive totals of that folder and of every folder above it, up to the
root's own folder (path ``""``); those are found by the video's path, so no tree walk is needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from gql_media.adapters.store.db import RawConnection
from gql_media.core.models import NewVideo, VideoRun

# (root_id, folder_id, relative path of the video, size)
VideoPlace = tuple[int, int, str, int]


def folder_ancestry(folder_path: str) -> list[str]:
    """The folder's own path and every path above it, the root's own folder ("") last."""
    paths = [folder_path]
    while folder_path:
        folder_path = folder_path.rpartition("/")[0]
        paths.append(folder_path)
    return paths


class TotalsDelta:
    """Changes to folder totals gathered over one write, applied in a few statements."""

    def __init__(self) -> None:
        self._direct: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
        self._tree: defaultdict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, videos: Iterable[VideoPlace], sign: int = 1) -> None:
        """Count ``videos`` in (``sign`` 1) or out of (``sign`` -1) their folders and ancestors."""
        per_folder: defaultdict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
        for root_id, folder_id, path, size in videos:
            totals = per_folder[(root_id, folder_id, path.rpartition("/")[0])]
            totals[0] += sign
            totals[1] += sign * size
        for (root_id, folder_id, folder_path), (count, size) in per_folder.items():
            self._count(root_id, folder_id, folder_path, count, size)

    def add_new(self, videos: Sequence[NewVideo]) -> None:
        """Count new videos in, as ``add`` does: a run of videos of one folder (they come in path
        order) is one count, with no tuple nor path split per video."""
        end = len(videos)
        start = 0
        while start < end:
            _id, root_id, folder_id, entry = videos[start]
            count, size, stop = 1, entry[3], start + 1
            while stop < end and videos[stop][2] == folder_id:
                size += videos[stop][3][3]
                count, stop = count + 1, stop + 1
            self._count(root_id, folder_id, entry[1].rpartition("/")[0], count, size)
            start = stop

    def add_runs(self, runs: Iterable[VideoRun]) -> None:
        """Count the new videos of ``runs`` in: one count per run (a folder's)."""
        for run in runs:
            self._count(run.root_id, run.folder_id, run.folder, len(run.names), sum(run.sizes))

    def resize(self, root_id: int, folder_id: int, path: str, size_change: int) -> None:
        """A video changed size in place: the same count, another size."""
        self._count(root_id, folder_id, path.rpartition("/")[0], 0, size_change)

    def _count(self, root_id: int, folder_id: int, folder_path: str, count: int, size: int) -> None:
        direct = self._direct[folder_id]
        direct[0] += count
        direct[1] += size
        for ancestor in folder_ancestry(folder_path):
            tree = self._tree[(root_id, ancestor)]
            tree[0] += count
            tree[1] += size

    async def apply(self, conn: RawConnection) -> None:
        """Write the deltas (in a stable order) and forget them."""
        direct = [(c, s, folder_id) for folder_id, (c, s) in self._direct.items() if c or s]
        tree = [(c, s, root_id, path) for (root_id, path), (c, s) in self._tree.items() if c or s]
        self._direct.clear()
        self._tree.clear()
        await conn.executemany(
            "UPDATE folders SET video_count = video_count + ?, total_size = total_size + ? WHERE id = ?",
            sorted(direct, key=lambda row: row[2]),
        )
        await conn.executemany(
            "UPDATE folders SET tree_video_count = tree_video_count + ?, tree_total_size = tree_total_size + ?"
            " WHERE root_id = ? AND path = ?",
            sorted(tree, key=lambda row: (row[2], row[3])),
        )
