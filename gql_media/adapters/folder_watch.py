"""A native watch over a changing set of folders, one inotify watch per folder (not recursive).

watchfiles' ``RustNotify`` cannot take a watch once built, and builds its watches holding the GIL
(about 25 us a folder: 0.5 s at 20,000 folders, the event loop stalled all along). Building the
whole watch again for every batch that brings a new folder stalled the server each time a download
made a folder. So the folders are watched by two ``RustNotify``: the base watch, built once over
the folders there were at the start, and a side watch over the folders made (or moved in) since,
built again, small, when more come. Only once the side watch holds more than ``side_max_folders``
is it merged into the base watch (a rebuild of the base: the old cost, once per that many folders).

No change is lost on the way: a new watch is built before the one it replaces is closed, and what
the old one saw meanwhile is passed on with the next batch. A new folder's own ADDED goes on to the
sync, which scans it whole (files made in it before its watch); the folders below it are listed
again once its watch is in place, until the listing finds none unwatched, so a folder made inside
a new one while its watch was being built is watched too. A folder removed or moved away loses its
watch in notify (its watch and those below it are dropped), and leaves the sets here with its event.

Blocking throughout, and not thread-safe: one watch thread builds, polls and closes it, in order
(``RustNotify`` is not reentrant).

The one module that imports watchfiles' private ``_rust_notify`` (hence the upper pin in
pyproject.toml): ``watcher.py`` gets its polling watch from ``polling_watch`` and drives either
kind through ``Watch``; ``bench.watch_lag`` times ``native_watch``.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Literal, Protocol

from watchfiles import Change
from watchfiles._rust_notify import RustNotify

__all__ = ["FolderWatch", "RawChanges", "Watch", "folders_under", "native_watch", "polling_watch"]

RawChanges = set[tuple[int, str]]
WatchResult = RawChanges | Literal["signal", "stop", "timeout"]

# One drain of a watch: a step of 1 ms, and returns what it holds (or "timeout") within 2 ms.
_DRAIN = (0, 1, 1)
# Attempts at a build when folders keep vanishing under it (each retry drops the vanished ones).
_BUILD_ATTEMPTS = 5


class StopEvent(Protocol):
    def is_set(self) -> bool: ...


class Watch(Protocol):
    """What the watch thread drives: a ``FolderWatch``, or watchfiles' own watch (``polling_watch``)."""

    def watch(self, batch_ms: int, step_ms: int, timeout_ms: int, stop: StopEvent, /) -> WatchResult: ...

    def close(self) -> None: ...


def polling_watch(roots: Sequence[str], poll_delay_ms: int) -> Watch:
    """A recursive polling watch of ``roots`` (a network file system, or when asked), as ``awatch``
    builds it; a permission denied on a folder does not end it. FileNotFoundError for a missing root."""
    return RustNotify(list(roots), False, True, poll_delay_ms, True, True)


def native_watch(folders: Sequence[str], poll_delay_ms: int) -> Watch:
    """One native watch over ``folders``, each alone (not recursive), as ``FolderWatch`` builds its
    base and side watches: built holding the GIL. FileNotFoundError for a missing folder."""
    return _native(list(folders), poll_delay_ms)


def _native(folders: list[str], poll_delay_ms: int) -> RustNotify:
    return RustNotify(folders, False, False, poll_delay_ms, False, False)


class FolderWatch:
    """Watches ``folders`` (each alone) and follows folders made, moved in, removed or moved away.

    Args:
        folders: the folders to watch from the start (every folder under the roots).
        side_max_folders: most folders watched apart from the base watch before they are merged into
            it; 0 merges every new folder at once (the whole watch built again each time).
        poll_delay_ms: passed on to watchfiles (unused by a native watch).
        stopped: whether the source is stopping (ends a listing early).

    Raises (when built): FileNotFoundError if a folder keeps vanishing, OSError from watchfiles.
    """

    def __init__(
        self,
        folders: Iterable[str],
        *,
        side_max_folders: int,
        poll_delay_ms: int,
        stopped: Callable[[], bool],
    ) -> None:
        self._side_max = side_max_folders
        self._poll_delay_ms = poll_delay_ms
        self._stopped = stopped
        self._base_folders = set(folders)
        self._base: RustNotify | None = None
        self._base = self._build(self._base_folders)
        self._side_folders: set[str] = set()
        self._side: RustNotify | None = None
        # What a replaced watch saw after its last batch: returned by the next watch() call.
        self._carried: RawChanges = set()

    @property
    def folders(self) -> frozenset[str]:
        """The folders watched now."""
        return frozenset(self._base_folders | self._side_folders)

    @property
    def side_folders(self) -> frozenset[str]:
        """The folders watched apart from the base watch (made or moved in since it was built)."""
        return frozenset(self._side_folders)

    def watch(self, batch_ms: int, step_ms: int, timeout_ms: int, stop: StopEvent) -> WatchResult:
        """The next batch of raw changes, as ``RustNotify.watch``: a set, or "stop" or "timeout"."""
        base = self._base
        if base is None:
            return "stop"
        if self._carried:
            carried, self._carried = self._carried, set()
            return carried | _drained(base) | (_drained(self._side) if self._side is not None else set())
        if self._side is None:
            result: WatchResult = base.watch(batch_ms, step_ms, timeout_ms, stop)
            return result
        return self._watch_both(base, self._side, batch_ms, step_ms, timeout_ms, stop)

    def follow(self, raw: Collection[tuple[int, str]]) -> None:
        """Watch the folders ``raw`` brings (made or moved in, with the folders below them), and forget
        the watched folders it removes or moves away (with the folders below them)."""
        gone = [path for change, path in raw if change == Change.deleted]
        if gone:
            self._forget(gone)
        tops = [path for change, path in raw if change == Change.added and os.path.isdir(path)]
        if tops:
            self._watch_new(tops)

    def close(self) -> None:
        """Close both watches (notify's thread drops their descriptors a moment later)."""
        base, side, self._base, self._side = self._base, self._side, None, None
        for notify in (base, side):
            if notify is not None:
                notify.close()

    def _watch_both(
        self, base: RustNotify, side: RustNotify, batch_ms: int, step_ms: int, timeout_ms: int, stop: StopEvent
    ) -> WatchResult:
        # The base watch waits one step at a time (or gathers its own batch); the side watch is
        # drained after each. A batch ends after a round that brought nothing new, or after batch_ms.
        started = time.monotonic()
        batch_ends: float | None = None
        changes: RawChanges = set()
        while True:
            before = len(changes)
            got = base.watch(batch_ms, step_ms, step_ms, stop)
            if got == "stop" or stop.is_set():
                return "stop"
            if not isinstance(got, str):
                changes |= got
            changes |= _drained(side)
            now = time.monotonic()
            if changes:
                if len(changes) == before or (batch_ends is not None and now >= batch_ends):
                    return changes
                if batch_ends is None:
                    batch_ends = now + batch_ms / 1000
            elif now - started >= timeout_ms / 1000:
                return "timeout"

    def _forget(self, gone: list[str]) -> None:
        # A folder there again (removed and made again within the batch) stays: its ADDED watches it.
        watched = [
            path
            for path in gone
            if (path in self._base_folders or path in self._side_folders) and not os.path.isdir(path)
        ]
        if not watched:
            return
        below = tuple(path + "/" for path in watched)
        dropped = set(watched)
        self._base_folders = {f for f in self._base_folders if f not in dropped and not f.startswith(below)}
        self._side_folders = {f for f in self._side_folders if f not in dropped and not f.startswith(below)}

    def _watch_new(self, tops: list[str]) -> None:
        # An ADDED folder is a new folder at that path: watched again even if the base watch had the
        # path (a folder removed and made again), but not when the side watch has it already.
        watched_now = set(self._side_folders)
        while not self._stopped():
            found = folders_under(tops, self._stopped)
            new = [path for path in found if path not in watched_now]
            if not new or self._stopped():
                return
            side_folders = self._side_folders | set(new)
            if len(side_folders) > self._side_max:
                self._merge(side_folders)
            else:
                self._replace_side(side_folders)
            # Listed again now the watch is in place: a folder made below a new one before its
            # watch was built sent no event, and would stay unwatched.
            watched_now.update(new)

    def _replace_side(self, folders: set[str]) -> None:
        side = self._build(folders)
        old, self._side, self._side_folders = self._side, side, folders
        if old is not None:
            self._carried |= _drained(old)
            old.close()

    def _merge(self, side_folders: set[str]) -> None:
        folders = self._base_folders | side_folders
        base = self._build(folders)
        old_base, old_side = self._base, self._side
        self._base, self._base_folders = base, folders
        self._side, self._side_folders = None, set()
        for old in (old_base, old_side):
            if old is not None:
                self._carried |= _drained(old)
                old.close()

    def _build(self, folders: set[str]) -> RustNotify:
        """A watch over ``folders``, less those that vanish or turn unreadable meanwhile (dropped from
        ``folders``). Errors are not ignored (``ignore_permission_denied`` would ignore every error,
        the watch limit too, and leave folders unwatched without a word)."""
        for _ in range(_BUILD_ATTEMPTS - 1):
            try:
                return _native(sorted(folders), self._poll_delay_ms)
            except (FileNotFoundError, PermissionError):
                # A folder went between its listing and its watch: its removal is in the next batch.
                folders.difference_update([path for path in folders if not _watchable(path)])
        return _native(sorted(folders), self._poll_delay_ms)


def _watchable(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.R_OK)


def _drained(notify: RustNotify) -> RawChanges:
    got = notify.watch(*_DRAIN, None)
    return set() if isinstance(got, str) else set(got)


def folders_under(tops: Iterable[str], stopped: Callable[[], bool], *, roots_must_exist: bool = False) -> list[str]:
    """``tops`` and every folder below them, as a recursive watch would have them; blocking, in Python
    (it lets go of the GIL, unlike watchfiles' own walk). Symlinked folders are followed, each real
    folder once. An unreadable folder is left out; a missing top raises FileNotFoundError if
    ``roots_must_exist``. Ends early (with what it has) once ``stopped()``.
    """
    found: list[str] = []
    seen: set[str] = set()
    stack = [_absolute(top) for top in tops][::-1]
    required = set(stack) if roots_must_exist else set()
    while stack and not stopped():
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        try:
            with os.scandir(folder) as listing:
                below = [entry.path for entry in listing if _is_folder(entry)]
        except FileNotFoundError:
            if folder in required:
                raise
            continue
        except OSError:
            continue
        found.append(folder)
        stack.extend(sorted(below, reverse=True))
    return found


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _absolute(path: str) -> str:
    return posixpath.normpath(os.path.abspath(path))
