"""Library roots at run time: which folders may become roots, and adding or removing one.

A root comes from the settings (the command line or the environment: it comes back at every
start, so it cannot be removed here) or from ``LibraryRoots.add`` (stored, loaded again at the
next start). ``check_new_root`` holds the rules a new root must pass, each refusal with its own
code; ``LibraryRoots`` keeps every holder of the root list in step: the store, the sync engine,
the runner and the watcher of whoever does the work (``RootWorkers``: the process itself, or
the elected leader), and the subscribers (ROOT_ADDED, ROOT_REMOVED).

Removing a root forgets its index, its thumbnails and (through the REMOVED change of each of
its videos, which every replica's playback service follows) its transcode cache. Its files are
never touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

from gql_media.core.jobs import JobRunner
from gql_media.core.models import (
    ChangeKind,
    EntryKind,
    LibraryChange,
    Root,
    Scope,
    SyncMode,
    SyncRequest,
    SyncTarget,
    SyncTrigger,
)
from gql_media.core.ports import EventBus, RootStore
from gql_media.core.sync import SyncEngine
from gql_media.core.thumbnails import remove_thumbnail_files
from gql_media.core.watching import WatchService

__all__ = [
    "ADD_REFUSALS",
    "REMOVE_REFUSALS",
    "AddRefusal",
    "LibraryRoots",
    "RefusalCode",
    "RemoveRefusal",
    "RootRefused",
    "RootWorkers",
    "check_new_root",
    "describe_refusals",
    "normalize_root",
    "refusal_code",
]

logger = logging.getLogger(__name__)


# The rules a root command can break, by the code that names each (the API's error code), in the
# order the API's descriptions list them: those of an add (``check_new_root``), those of a remove.
AddRefusal = Literal[
    "NOT_ABSOLUTE",
    "ROOT_NOT_FOUND",
    "NOT_A_DIRECTORY",
    "ROOT_NOT_READABLE",
    "ROOT_EXISTS",
    "ROOT_OVERLAP",
    "DATA_DIR",
    "ROOT_NOT_ALLOWED",
]
RemoveRefusal = Literal["NOT_A_ROOT", "ROOT_FROM_CONFIG"]
RefusalCode = AddRefusal | RemoveRefusal
ADD_REFUSALS: tuple[AddRefusal, ...] = get_args(AddRefusal)
REMOVE_REFUSALS: tuple[RemoveRefusal, ...] = get_args(RemoveRefusal)
# A few words for a code whose name does not say its rule.
_GLOSSES: Mapping[RefusalCode, str] = MappingProxyType(
    {
        "ROOT_OVERLAP": "inside or around a root",
        "ROOT_NOT_ALLOWED": "outside GQL_MEDIA_ROOT_ALLOW",
        "ROOT_FROM_CONFIG": "given on the command line or in the environment: it would come back at the next start",
    }
)


def describe_refusals(codes: Sequence[RefusalCode]) -> str:
    """``codes`` as a sentence's list, each with its gloss: "NOT_A_ROOT, ROOT_FROM_CONFIG (given on ...)"."""
    return ", ".join(f"{code} ({_GLOSSES[code]})" if code in _GLOSSES else code for code in codes)


def refusal_code(text: str) -> RefusalCode:
    """``text`` as a refusal code (one received from another replica); ``ValueError`` for an unknown one."""
    if text not in ADD_REFUSALS + REMOVE_REFUSALS:
        raise ValueError(f"unknown root refusal code {text!r}")
    return text


class RootRefused(ValueError):
    """A root that cannot be added or removed; ``code`` names the rule (API error code)."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code: RefusalCode = code


def normalize_root(path: str) -> str:
    """The form a root is kept in: no trailing slash, no ``.`` or ``..`` (an absolute path is required first)."""
    return posixpath.normpath(path) if path.startswith("/") else path


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both normalized)."""
    return path == folder or folder == "/" or path.startswith(folder + "/")


def check_new_root(path: str, existing: Sequence[str], *, data_dir: str, allowed_prefixes: Sequence[str] = ()) -> str:
    """The normalized root ``path`` stands for, or ``RootRefused`` naming the first rule it breaks. Blocking.

    The rules, each with its code: an absolute path (NOT_ABSOLUTE); inside one of
    ``allowed_prefixes`` when any are set (ROOT_NOT_ALLOWED); an existing (ROOT_NOT_FOUND),
    readable (ROOT_NOT_READABLE) directory (NOT_A_DIRECTORY); not a root already (ROOT_EXISTS),
    nor inside or around one (ROOT_OVERLAP); not the data folder nor inside it (DATA_DIR).
    Overlaps and the data folder are checked on the paths with symlinks resolved too.
    """
    if not path or "\x00" in path:
        raise RootRefused("NOT_ABSOLUTE", "give the library folder as an absolute path")
    if not path.startswith("/"):
        raise RootRefused("NOT_ABSOLUTE", f"{path!r} is not an absolute path (it must start with '/')")
    root = normalize_root(path)
    if allowed_prefixes:
        allowed = [normalize_root(prefix) for prefix in allowed_prefixes]
        if not any(_inside(root, prefix) for prefix in allowed):
            raise RootRefused(
                "ROOT_NOT_ALLOWED",
                f"{root} is outside the folders where roots may be added ({', '.join(allowed)}; GQL_MEDIA_ROOT_ALLOW)",
            )
    if not os.path.lexists(root):
        raise RootRefused("ROOT_NOT_FOUND", f"{root} does not exist")
    if not os.path.isdir(root):
        raise RootRefused("NOT_A_DIRECTORY", f"{root} is not a directory")
    try:
        with os.scandir(root) as entries:
            next(entries, None)
    except OSError as exc:
        raise RootRefused("ROOT_NOT_READABLE", f"{root} cannot be read ({exc.strerror or exc})") from None
    real = os.path.realpath(root)
    for other in existing:
        other_real = os.path.realpath(other)
        if root == other or real == other_real:
            raise RootRefused("ROOT_EXISTS", f"{root} is a library root already")
        if _inside(root, other) or _inside(real, other_real):
            raise RootRefused("ROOT_OVERLAP", f"{root} is inside the library root {other}")
        if _inside(other, root) or _inside(other_real, real):
            raise RootRefused("ROOT_OVERLAP", f"{root} holds the library root {other}")
    data = normalize_root(data_dir)
    if _inside(root, data) or _inside(real, os.path.realpath(data)):
        raise RootRefused("DATA_DIR", f"{root} is the server's data folder (or inside it), not a library folder")
    return root


@dataclass(frozen=True, slots=True)
class RootWorkers:
    """Who syncs and watches the roots here: the process's own runner and watcher, or the leader's."""

    runner: JobRunner
    watcher: WatchService


class LibraryRoots:
    """Adds and removes library roots while the server runs, and keeps every holder of the list in step.

    Args:
        roots: the live list of roots, shared with whoever reads it (the API): changed in place.
        config_paths: the roots from the settings: never removed here.
        workers: the runner and watcher of this process, or None while another replica leads.
        data_dir: the server's data folder (never a root).
        allowed_prefixes: where roots may be added (none: anywhere).
        thumbnails_dir: where the thumbnails are (None without media work).
    """

    def __init__(
        self,
        *,
        roots: list[Root],
        config_paths: Sequence[str],
        store: RootStore,
        engine: SyncEngine,
        bus: EventBus,
        workers: Callable[[], RootWorkers | None],
        data_dir: str,
        allowed_prefixes: Sequence[str] = (),
        thumbnails_dir: str | None = None,
    ) -> None:
        self.roots = roots
        self.config_paths = frozenset(normalize_root(p) for p in config_paths)
        self._store = store
        self._engine = engine
        self._bus = bus
        self._workers = workers
        self._data_dir = data_dir
        self._allowed = tuple(allowed_prefixes)
        self._thumbnails_dir = thumbnails_dir
        self._lock = asyncio.Lock()

    def is_configured(self, path: str) -> bool:
        """Whether ``path`` is a root from the settings."""
        return normalize_root(path) in self.config_paths

    async def load(self) -> None:
        """Add the roots stored by earlier runs to the live list (at start-up, after the settings' roots)."""
        await self._replace([*self._configured(), *await self._store.added_roots()])

    async def refresh(self) -> None:
        """Read the roots again (a follower, after the leader added or removed one)."""
        async with self._lock:
            await self.load()

    async def add(self, path: str) -> Root:
        """Check, store, index and watch a new root; ``RootRefused`` when a rule says no."""
        async with self._lock:
            existing = [root.path for root in self.roots]
            normalized = await asyncio.to_thread(
                check_new_root, path, existing, data_dir=self._data_dir, allowed_prefixes=self._allowed
            )
            root = await self._store.add_root(normalized)
            await self._replace([*self.roots, root])
            workers = self._workers()
            if workers is not None:
                await workers.runner.set_roots(self.roots)
                await workers.watcher.set_roots([r.path for r in self.roots])
                request = SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL, (SyncTarget(root.path),))
                await workers.runner.submit(request)
            logger.info("library root added: %s", root.path)
            await self._bus.publish_change(
                LibraryChange(ChangeKind.ROOT_ADDED, EntryKind.FOLDER, root.folder_id, root.id, root.path, "")
            )
            return root

    async def remove(self, path: str) -> Root:
        """Forget a root added at run time: its index, thumbnails and playback cache; never its files."""
        async with self._lock:
            normalized = normalize_root(path)
            root = next((r for r in self.roots if r.path == normalized), None)
            if root is None:
                raise RootRefused("NOT_A_ROOT", f"{normalized} is not a library root")
            if normalized in self.config_paths:
                raise RootRefused(
                    "ROOT_FROM_CONFIG",
                    f"{normalized} is a library root given on the command line or in the environment "
                    "(GQL_MEDIA_ROOTS): it would come back at the next start; remove it there",
                )
            remaining = [r for r in self.roots if r.id != root.id]
            workers = self._workers()
            if workers is None:
                await self._forget(root)
                await self._replace(remaining)
                return root
            cancelled = await workers.runner.set_roots(remaining)
            await workers.watcher.set_roots([r.path for r in remaining])
            await self._replace(remaining)
            async with workers.runner.exclusive():
                await self._forget(root)
            if cancelled:
                await self._resubmit(workers.runner, cancelled, root.id)
            return root

    async def _forget(self, root: Root) -> None:
        videos = await self._store.remove_root(root.id)
        if self._thumbnails_dir is not None and videos:
            removed = await asyncio.to_thread(remove_thumbnail_files, self._thumbnails_dir, {v for v, _ in videos})
            logger.info("library root %s removed: %d videos, %d thumbnails forgotten", root.path, len(videos), removed)
        else:
            logger.info("library root %s removed: %d videos forgotten", root.path, len(videos))
        # Each REMOVED also drops the video's transcode cache on every replica (playback follows the bus).
        for video_id, video_path in videos:
            await self._bus.publish_change(
                LibraryChange(ChangeKind.REMOVED, EntryKind.VIDEO, video_id, root.id, root.path, video_path)
            )
        await self._bus.publish_change(
            LibraryChange(ChangeKind.ROOT_REMOVED, EntryKind.FOLDER, root.folder_id, root.id, root.path, "")
        )

    async def _resubmit(self, runner: JobRunner, scopes: Sequence[Scope], removed_id: int) -> None:
        """Ask again for the part of a cancelled job under the roots that stay."""
        paths = {root.id: root.path for root in self.roots}
        targets = [
            SyncTarget(posixpath.join(paths[s.root_id], s.path) if s.path else paths[s.root_id], s.recursive)
            for s in scopes
            if s.root_id != removed_id and s.root_id in paths
        ]
        if targets:
            await runner.submit(SyncRequest(SyncMode.INCREMENTAL, SyncTrigger.MANUAL, tuple(targets)))

    def _configured(self) -> list[Root]:
        return [root for root in self.roots if root.path in self.config_paths]

    async def _replace(self, roots: Sequence[Root]) -> None:
        unique = list({root.id: root for root in roots}.values())
        self.roots[:] = unique
        self._engine.roots = {root.id: root for root in unique}
