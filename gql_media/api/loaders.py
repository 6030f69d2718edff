"""Per-request DataLoaders: one per key-to-value relation, each a single batched read.

A subscription event's loaders are shared instead (``EventLoaders``): every subscriber of one
library change resolves its entry through the same loaders, so a change costs its reads once,
not once per subscriber (issue 16's soak: 50 subscribers of the web UI's selection each read the
entry, its folder and its subtree totals, and fell behind their queues).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from gql_media.adapters.store.db import Db
from gql_media.adapters.store.reads import FolderRow, FolderStats, LibraryReads, VideoRow

K = TypeVar("K")
V = TypeVar("V")

# Events whose loaders are kept (2 to 4 KB each with their rows): subscribers that keep up are a few events apart
# and share them all; one further behind than this reads for itself, as before.
EVENT_LOADERS_SIZE = 128


class SharedDataLoader(DataLoader[K, V]):
    """A DataLoader awaited by many tasks: one that goes away cancels only its own wait.

    DataLoader hands every caller of a key the same future, and cancelling a task cancels the
    future it awaits; a subscriber disconnecting mid-read would fail every other subscriber's.
    """

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(super().load(key))


class Loaders:
    """One operation's loaders, each made on first use (an event's entry needs two or three of them)."""

    def __init__(self, reads: LibraryReads, shared: bool = False) -> None:
        self._reads = reads
        self._loader: type[DataLoader[Any, Any]] = SharedDataLoader if shared else DataLoader
        # Rows this operation read already (a page's): served by ``folder`` and ``video`` without a read.
        # A plain dict, where priming the loaders made a future per row (most are never asked again).
        self._known_folders: dict[int, FolderRow] = {}
        self._known_videos: dict[int, VideoRow] = {}

    def know_folders(self, rows: Mapping[int, FolderRow]) -> None:
        self._known_folders.update(rows)

    def know_videos(self, rows: Sequence[VideoRow]) -> None:
        known = self._known_videos
        for row in rows:
            known[row.id] = row

    @cached_property
    def folder(self) -> DataLoader[int, FolderRow | None]:
        return self._by_id(self._reads.folders_by_ids, self._known_folders)

    @cached_property
    def video(self) -> DataLoader[int, VideoRow | None]:
        return self._by_id(self._reads.videos_by_ids, self._known_videos)

    @cached_property
    def child_folders(self) -> DataLoader[int, list[FolderRow]]:
        reads = self._reads

        async def load_children(ids: Sequence[int]) -> list[list[FolderRow]]:
            found = await reads.child_folders(ids)
            return [found.get(i, []) for i in ids]

        return self._loader(load_fn=load_children)

    @cached_property
    def direct_stats(self) -> DataLoader[int, FolderStats]:
        return self._stats(recursive=False)

    @cached_property
    def subtree_stats(self) -> DataLoader[int, FolderStats]:
        return self._stats(recursive=True)

    def _by_id(
        self, read: Callable[[Sequence[int]], Awaitable[Mapping[int, V]]], known: Mapping[int, V]
    ) -> DataLoader[int, V | None]:
        """A loader of the rows ``read`` finds by id (None for an id it does not find); ``known`` first."""

        async def load_rows(ids: Sequence[int]) -> list[V | None]:
            missing = [i for i in ids if i not in known]
            found = await read(missing) if missing else {}
            return [known[i] if i in known else found.get(i) for i in ids]

        return self._loader(load_fn=load_rows)

    def _stats(self, recursive: bool) -> DataLoader[int, FolderStats]:
        reads = self._reads

        async def load_stats(ids: Sequence[int]) -> list[FolderStats]:
            found = await reads.folder_stats(ids, recursive=recursive)
            return [found[i] for i in ids]

        return self._loader(load_fn=load_stats)


def create_loaders(reads: LibraryReads, shared: bool = False) -> Loaders:
    """Fresh loaders (their cache lives as long as one operation; ``shared``: awaited by many tasks)."""
    return Loaders(reads, shared)


class EventLoaders:
    """Loaders per event, for every subscriber of a server's events (the bus hands them all the
    same event object): the first subscriber to resolve an event reads, the others share its rows.

    Each event still gets loaders of its own, so no event is served an earlier event's rows.
    """

    def __init__(self, reads: LibraryReads, size: int = EVENT_LOADERS_SIZE) -> None:
        self._reads = reads
        self._size = size
        self._by_event: OrderedDict[int, tuple[object, Loaders]] = OrderedDict()

    def of(self, event: object) -> Loaders:
        """The loaders of ``event`` (known by identity: equal events published twice are two events)."""
        key = id(event)
        known = self._by_event.get(key)
        if known is not None and known[0] is event:
            return known[1]
        loaders = create_loaders(self._reads, shared=True)
        self._by_event[key] = (event, loaders)  # holding the event keeps its id from being reused
        if len(self._by_event) > self._size:
            self._by_event.popitem(last=False)
        return loaders


_EVENT_LOADERS: weakref.WeakKeyDictionary[Db, EventLoaders] = weakref.WeakKeyDictionary()


def event_loaders(reads: LibraryReads, event: object) -> Loaders:
    """The loaders every subscriber of ``event`` on ``reads``' database shares."""
    shared = _EVENT_LOADERS.get(reads.db)
    if shared is None:
        shared = _EVENT_LOADERS[reads.db] = EventLoaders(LibraryReads(reads.db))
    return shared.of(event)
