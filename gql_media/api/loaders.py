"""Per-request DataLoaders: one per key-to-value relation, each a single batched read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from gql_media.adapters.store.reads import FolderRow, FolderStats, LibraryReads, VideoRow


@dataclass(frozen=True, slots=True)
class Loaders:
    folder: DataLoader[int, FolderRow | None]
    video: DataLoader[int, VideoRow | None]
    child_folders: DataLoader[int, list[FolderRow]]
    direct_stats: DataLoader[int, FolderStats]
    subtree_stats: DataLoader[int, FolderStats]


def create_loaders(reads: LibraryReads) -> Loaders:
    """Fresh loaders (their cache lives as long as one operation)."""

    async def load_folders(ids: Sequence[int]) -> list[FolderRow | None]:
        found = await reads.folders_by_ids(ids)
        return [found.get(i) for i in ids]

    async def load_videos(ids: Sequence[int]) -> list[VideoRow | None]:
        found = await reads.videos_by_ids(ids)
        return [found.get(i) for i in ids]

    async def load_children(ids: Sequence[int]) -> list[list[FolderRow]]:
        found = await reads.child_folders(ids)
        return [found.get(i, []) for i in ids]

    async def load_direct(ids: Sequence[int]) -> list[FolderStats]:
        found = await reads.folder_stats(ids, recursive=False)
        return [found[i] for i in ids]

    async def load_subtree(ids: Sequence[int]) -> list[FolderStats]:
        found = await reads.folder_stats(ids, recursive=True)
        return [found[i] for i in ids]

    return Loaders(
        folder=DataLoader(load_fn=load_folders),
        video=DataLoader(load_fn=load_videos),
        child_folders=DataLoader(load_fn=load_children),
        direct_stats=DataLoader(load_fn=load_direct),
        subtree_stats=DataLoader(load_fn=load_subtree),
    )
