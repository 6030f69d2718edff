"""Turning a stream of path changes into the smallest set of folders to sync, at the right moment.

Standard library only, no I/O: the clock is injected and file sizes are handed in by the caller,
so every timing rule is testable with a fake clock.

The rules:

- A change opens a pending window. The window fires ``settle_ms`` after the last change, or
  ``max_wait_ms`` after its first change, whichever comes first, so a long copy cannot postpone
  the sync forever.
- A changed file targets its folder, shallow. A folder reported as added (or a path that may have
  been a folder and is gone) targets that folder, recursive: watchers report a tree moved in as
  its top folder only, and ``mkdir -p`` plus files loses events. A child joins a recursive ancestor.
- Files changed in a window are looked at (size, mtime) when it fires, then again every quiet
  period; one that changed since the last look is targeted again. A file is done once it kept still
  for ``file_settle_ms``: pollers compare mtimes in whole seconds, so a slow writer's last writes
  may send no event at all, and two equal looks a quiet period apart prove little.
- The pending set is bounded: past ``max_pending`` distinct paths it collapses to recursive
  targets of the roots concerned (counted in ``overflows``), so nothing is dropped and nothing blocks.
"""

from __future__ import annotations

import enum
import logging
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from gql_media.core.models import SyncTarget

__all__ = ["Debouncer", "FileLook", "Fire", "PathChange", "PathChangeKind"]

logger = logging.getLogger(__name__)

FileLook = tuple[int, int]
"""What a look at a file saw: (size in bytes, mtime in ns)."""


class PathChangeKind(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class PathChange:
    """One change the watcher saw. ``is_dir`` is None when unknown (e.g. a path that is gone)."""

    kind: PathChangeKind
    path: str
    is_dir: bool | None = None


@dataclass(frozen=True, slots=True)
class Fire:
    """What is due now: folders to sync, and files whose size to look at (then pass to ``observe``)."""

    targets: tuple[SyncTarget, ...] = ()
    files_to_look: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.targets or self.files_to_look)


# What the debouncer is handed: changes the watcher saw, or targets put back.
_Pathed = TypeVar("_Pathed", PathChange, SyncTarget)


class Debouncer:
    """Collects path changes and says when and what to sync.

    Args:
        roots: absolute library roots; changes outside them are ignored.
        settle_ms: fire when no change arrived for this long.
        max_wait_ms: fire at the latest this long after the first pending change.
        max_pending: most distinct paths kept; beyond, the pending set collapses to root rescans.
        file_settle_ms: a changed file counts as complete once its size and mtime kept still this long.
        clock: monotonic seconds (``time.monotonic`` by default).
    """

    def __init__(
        self,
        roots: Iterable[str],
        *,
        settle_ms: int = 300,
        max_wait_ms: int = 3000,
        max_pending: int = 10_000,
        file_settle_ms: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settle_ms < 0 or max_wait_ms < 0 or file_settle_ms < 0 or max_pending < 1:
            raise ValueError("settle_ms, max_wait_ms and file_settle_ms must be >= 0, max_pending >= 1")
        # Longest first, so a nested root wins over its ancestor.
        self._roots = tuple(sorted({_normalize(r) for r in roots}, key=len, reverse=True))
        self._settle_s = settle_ms / 1000
        self._max_wait_s = max_wait_ms / 1000
        self._max_pending = max_pending
        self._file_settle_s = file_settle_ms / 1000
        self._clock = clock
        self._targets: dict[str, bool] = {}  # folder -> recursive
        self._paths: set[str] = set()
        self._files: set[str] = set()
        self._collapsed: set[str] = set()  # roots already pending as a whole
        self._first_at: float | None = None
        self._last_at: float | None = None
        self._looks: dict[str, tuple[FileLook, float]] = {}  # path -> (last look, when it last changed)
        self._recheck: set[str] = set()
        self._recheck_at: float | None = None
        self.overflows = 0
        """How many times the pending set collapsed to root rescans."""

    @property
    def roots(self) -> tuple[str, ...]:
        return self._roots

    def set_roots(self, roots: Iterable[str]) -> None:
        """Follow these roots from now on; what is pending under a root no longer there is dropped."""
        self._roots = tuple(sorted({_normalize(r) for r in roots}, key=len, reverse=True))
        kept = self._root_of
        self._targets = {path: recursive for path, recursive in self._targets.items() if kept(path) is not None}
        self._paths = {path for path in self._paths if kept(path) is not None}
        self._files = {path for path in self._files if kept(path) is not None}
        self._collapsed = {root for root in self._collapsed if root in self._roots}
        self._looks = {path: look for path, look in self._looks.items() if kept(path) is not None}
        self._recheck = {path for path in self._recheck if kept(path) is not None}
        if not self._targets:
            self._first_at = self._last_at = None

    @property
    def pending_paths(self) -> int:
        """Distinct changed paths (a collapsed root counts as one) waiting to fire, or the targets if more."""
        return max(len(self._paths) + len(self._collapsed), len(self._targets))

    @property
    def has_pending(self) -> bool:
        return bool(self._targets)

    def add(self, changes: Iterable[PathChange]) -> None:
        """Record changes; never blocks, never drops (beyond the bound they become root rescans)."""
        now = self._clock()
        touched = False
        for change, path, root in self._in_roots(changes):
            # Under a collapsed root it is pending already, and still extends the window.
            touched = True
            if root in self._collapsed:
                continue
            if path not in self._paths:
                if len(self._paths) >= self._max_pending:
                    self._collapse(root)
                    continue
                self._paths.add(path)
            folder, recursive = _target_of(change, path, root)
            self._put(folder, recursive)
            if _is_file_change(change):
                self._files.add(path)
        if touched:
            self._touch(now)

    def add_targets(self, targets: Iterable[SyncTarget]) -> None:
        """Put targets back to fire after the next quiet period (e.g. a submit that failed)."""
        now = self._clock()
        put = False
        for target, path, root in self._in_roots(targets):
            if root not in self._collapsed:
                self._put(path, target.recursive)
                put = True
        if put:
            self._touch(now)

    def due_at(self) -> float | None:
        """Clock time at which ``take`` has something to give, or None when nothing is pending."""
        candidates = [self._fire_at(), self._recheck_at if self._recheck else None]
        due = [at for at in candidates if at is not None]
        return min(due) if due else None

    def take(self) -> Fire:
        """Everything due now: coalesced targets, and files to look at. Empty when nothing is due."""
        now = self._clock()
        targets: tuple[SyncTarget, ...] = ()
        files: set[str] = set()
        fire_at = self._fire_at()
        if fire_at is not None and now >= fire_at:
            targets = _coalesce(self._targets)
            files = self._files
            # A fresh change makes the next look a first look: the sync about to run sees it.
            for path in files:
                self._looks.pop(path, None)
                self._recheck.discard(path)
            self._reset_pending()
        if self._recheck and self._recheck_at is not None and now >= self._recheck_at:
            files |= self._recheck
            self._recheck = set()
            self._recheck_at = None
        return Fire(targets, tuple(sorted(files)))

    def observe(self, looks: Mapping[str, FileLook | None]) -> None:
        """Hand in what a look at ``Fire.files_to_look`` saw (None: gone, or not a file).

        A file is looked at again every quiet period; one whose size or mtime changed since the
        last look is targeted again; one that kept still for ``file_settle_ms`` is done.
        """
        now = self._clock()
        retarget: list[SyncTarget] = []
        for raw_path, look in looks.items():
            path = _normalize(raw_path)
            previous = self._looks.get(path)
            if look is None:
                self._looks.pop(path, None)
                continue
            if previous is None:
                if len(self._looks) >= self._max_pending:
                    # Bounded memory: such a file was synced once already; a later write still sends an event.
                    logger.debug("too many files under watch for growth, not rechecking %s", path)
                    continue
                self._looks[path] = (look, now)
            elif previous[0] != look:
                self._looks[path] = (look, now)
                retarget.append(SyncTarget(posixpath.dirname(path), recursive=False))
            elif now - previous[1] >= self._file_settle_s:
                del self._looks[path]
                continue
            self._recheck.add(path)
        if self._recheck:
            self._recheck_at = now + self._settle_s
        if retarget:
            self.add_targets(retarget)

    def discard(self) -> None:
        """Forget everything pending (the watcher stopped; the next start reconciles)."""
        self._reset_pending()
        self._looks.clear()
        self._recheck.clear()
        self._recheck_at = None

    def _fire_at(self) -> float | None:
        """When the pending targets fire (``settle_ms`` after the last change, at most ``max_wait_ms``
        after the first), or None when none is pending."""
        if not self._targets or self._first_at is None or self._last_at is None:
            return None
        return min(self._last_at + self._settle_s, self._first_at + self._max_wait_s)

    def _put(self, folder: str, recursive: bool) -> None:
        self._targets[folder] = self._targets.get(folder, False) or recursive

    def _touch(self, now: float) -> None:
        if self._first_at is None:
            self._first_at = now
        self._last_at = now

    def _collapse(self, root: str) -> None:
        """Replace what is pending by recursive rescans of every root concerned."""
        concerned = {root} | {r for r in (self._root_of(p) for p in self._targets) if r is not None}
        self.overflows += 1
        logger.warning(
            "more than %d changed paths pending: rescanning %s instead (overflow #%d)",
            self._max_pending,
            ", ".join(sorted(concerned)),
            self.overflows,
        )
        self._collapsed |= concerned
        self._targets = {r: True for r in self._collapsed} | {
            path: rec for path, rec in self._targets.items() if self._root_of(path) not in self._collapsed
        }
        self._paths = {p for p in self._paths if self._root_of(p) not in self._collapsed}
        self._files = {p for p in self._files if self._root_of(p) not in self._collapsed}

    def _reset_pending(self) -> None:
        self._targets = {}
        self._paths = set()
        self._files = set()
        self._collapsed = set()
        self._first_at = None
        self._last_at = None

    def _in_roots(self, items: Iterable[_Pathed]) -> Iterator[tuple[_Pathed, str, str]]:
        """Each item whose path lies under a root, with that path normalised and the root; the rest is ignored."""
        for item in items:
            path = _normalize(item.path)
            root = self._root_of(path)
            if root is None:
                logger.debug("change outside the roots ignored: %s", path)
                continue
            yield item, path, root

    def _root_of(self, path: str) -> str | None:
        for root in self._roots:
            if path == root or path.startswith(root + "/") or root == "/":
                return root
        return None


def _normalize(path: str) -> str:
    return posixpath.normpath(os.fspath(path))


def _is_file_change(change: PathChange) -> bool:
    return change.is_dir is False and change.kind is not PathChangeKind.DELETED


def _target_of(change: PathChange, path: str, root: str) -> tuple[str, bool]:
    """The folder to sync for one change, and whether recursively."""
    if change.is_dir is False:
        return (posixpath.dirname(path) if path != root else root), False
    if change.is_dir is True and change.kind is PathChangeKind.MODIFIED:
        # A folder's own metadata changed (polling reports every mtime bump of a parent): its entries
        # are what may differ, and the sync engine widens a shallow scope when a child folder moves.
        return path, False
    # Added folder (a tree moved in shows only its top), or a gone path that may have been a folder.
    return path, True


def _coalesce(targets: Mapping[str, bool]) -> tuple[SyncTarget, ...]:
    """The smallest set of targets: anything under (or at) a recursive target joins it."""
    recursive = {path for path, rec in targets.items() if rec}
    kept: list[SyncTarget] = []
    for path in sorted(targets):
        rec = targets[path]
        if _has_recursive_ancestor(path, recursive):
            continue
        kept.append(SyncTarget(path, recursive=rec))
    return tuple(kept)


def _has_recursive_ancestor(path: str, recursive: set[str]) -> bool:
    parent = posixpath.dirname(path)
    while parent != path:
        if parent in recursive:
            return True
        path, parent = parent, posixpath.dirname(parent)
    return False
