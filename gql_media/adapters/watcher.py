"""The change source on watchfiles: with ``folder_watch``, the only modules that import it.

It drives watchfiles' ``RustNotify`` (what ``awatch`` runs; built in ``folder_watch``, the one
module that imports watchfiles' private ``_rust_notify``) on a thread of its own rather than
through ``awatch``, for two reasons: building the watch adds an inotify watch per folder, which
must stay off the event loop, and the service needs to know when the watch is established
(``open``), so its reconcile cannot miss a change. A stop event ends a pending ``watch`` call
within one step; ``aclose`` then releases the inotify descriptor and the thread.

Native watches are one per folder, not recursive: ``RustNotify`` builds its watch holding the GIL,
and a recursive watch walks every entry of the tree for its folders (1M files: 13 s at load 11,
the server frozen and deaf to a stop all along; issue 18). The folders are listed here, in the
watch thread, by a walk that lets go of the GIL and stops at a stop, and watched by a
``FolderWatch`` (``adapters/folder_watch.py``), which follows the folders made, moved in, removed
and moved away without building the whole watch again each time.

Native watching by default; polling when asked, or when a root lies on a network file system
(per ``/proc/self/mounts``), where inotify sees nothing that other machines change.

Only what can matter reaches the service: videos, playlists and segments, folders. Dotfiles and
dot-folders, partial downloads, the server's data folder and the paths the server is writing
itself (``OwnWrites``) are dropped here, in the watch thread.

About 400 lines, kept whole: it is the one wrapper of watchfiles beside ``folder_watch``, and the
filter, the network-mount check and the source share its watch thread's state.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import posixpath
import stat
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from watchfiles import Change

from gql_media.adapters.folder_watch import FolderWatch, Watch, folders_under, polling_watch
from gql_media.core.debounce import PathChange, PathChangeKind
from gql_media.core.models import WatchMode
from gql_media.core.own_writes import OwnWrites
from gql_media.core.ports import RootMissingError, WatchLimitError

__all__ = [
    "NETWORK_FILESYSTEMS",
    "PARTIAL_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "PathFilter",
    "WatchOptions",
    "WatchfilesSource",
    "WatchfilesSourceFactory",
    "folders_under",
    "network_roots",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".m2ts", ".3gp", ".ogv"}
)
PLAYLIST_EXTENSIONS = frozenset({".m3u8", ".ts"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | PLAYLIST_EXTENSIONS
PARTIAL_EXTENSIONS = frozenset({".part", ".crdownload", ".tmp", ".download", ".partial"})
# Files that sit beside videos and are never folders: a gone path with one of these is not synced.
# Any other gone path may have been a folder (folder names have dots too) and is synced as one.
_SIDE_FILE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".nfo", ".srt", ".ass", ".ssa", ".vtt", ".sub",
        ".idx", ".txt", ".json", ".xml", ".db", ".ini", ".log", ".url", ".sfv", ".md5", ".torrent",
        ".aria2", ".lock", ".swp",
    }
)  # fmt: skip
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs",
        "davfs", "ncpfs", "coda", "fuse.sshfs", "sshfs", "fuse.glusterfs", "fuse.rclone", "rclone", "fuse.s3fs",
        "fuse.smbnetfs", "fuse.davfs2", "fuse.gcsfuse", "fuse.cephfs", "fuse.juicefs", "fuse.curlftpfs",
    }
)  # fmt: skip

_KIND_OF_CHANGE = {
    Change.added: PathChangeKind.ADDED,
    Change.modified: PathChangeKind.MODIFIED,
    Change.deleted: PathChangeKind.DELETED,
}


class PathFilter:
    """Decides which raw changes can matter, and whether each is a folder. Blocking (it stats).

    Args:
        roots: absolute library roots.
        ignored_paths: folders never to report (the data folder), with everything below them.
        own_writes: paths the server is writing itself.
    """

    def __init__(
        self, roots: Iterable[str], *, ignored_paths: Iterable[str] = (), own_writes: OwnWrites | None = None
    ) -> None:
        self._roots = tuple(sorted((_absolute(r) for r in roots), key=len, reverse=True))
        self._ignored = tuple(_absolute(p) for p in ignored_paths)
        self._own_writes = own_writes

    def classify(self, change: Change | int, path: str) -> PathChange | None:
        """The change as the debouncer takes it, or None when it cannot matter."""
        root = self._root_of(path)
        if root is None or path == root:
            return None  # a root itself is the service's business (missing roots)
        relative = path[len(root) :].lstrip("/")
        if any(part.startswith(".") for part in relative.split("/")):
            return None
        if any(path == p or path.startswith(p + "/") for p in self._ignored):
            return None
        if self._own_writes is not None and self._own_writes.is_own(path):
            return None
        extension = posixpath.splitext(path)[1].lower()
        if extension in PARTIAL_EXTENSIONS:
            return None
        kind = _KIND_OF_CHANGE[Change(change)]
        if kind is not PathChangeKind.DELETED:
            try:
                mode = os.stat(path).st_mode
            except OSError:
                kind = PathChangeKind.DELETED  # gone already: judge it as a deletion
            else:
                if stat.S_ISDIR(mode):
                    return PathChange(kind, path, is_dir=True)
                return PathChange(kind, path, is_dir=False) if extension in MEDIA_EXTENSIONS else None
        if extension in MEDIA_EXTENSIONS:
            return PathChange(kind, path, is_dir=False)
        if extension in _SIDE_FILE_EXTENSIONS:
            return None
        return PathChange(kind, path, is_dir=None)

    def classify_all(self, raw_changes: Iterable[tuple[int, str]]) -> list[PathChange]:
        changes = [self.classify(change, path) for change, path in raw_changes]
        return sorted((c for c in changes if c is not None), key=lambda c: c.path)

    def _root_of(self, path: str) -> str | None:
        for root in self._roots:
            if path == root or path.startswith(root + "/") or root == "/":
                return root
        return None


def max_queued_events(path: str = "/proc/sys/fs/inotify/max_queued_events") -> int:
    """The kernel's inotify queue length (16384 on most systems)."""
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return 16384


def storm_events(queue_length: int) -> int:
    """A batch this large may have overflowed the kernel's queue: half of it, at least 1000."""
    return max(1000, queue_length // 2)


def network_roots(roots: Iterable[str], *, mounts_path: str = "/proc/self/mounts") -> list[str]:
    """The roots that lie on a network file system, per the kernel's mount table. Blocking."""
    try:
        with open(mounts_path, encoding="utf-8", errors="surrogateescape") as f:
            table = _parse_mounts(f.read())
    except OSError:
        logger.warning("cannot read %s: assuming local file systems", mounts_path)
        return []
    found: list[str] = []
    for root in roots:
        real = os.path.realpath(root)
        fs_type = ""
        best = -1
        for mount_point, mount_type in table:
            inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > best:
                best, fs_type = len(mount_point), mount_type
        if fs_type in NETWORK_FILESYSTEMS:
            found.append(root)
    return found


def _parse_mounts(text: str) -> list[tuple[str, str]]:
    table: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            table.append((_unescape_mount(fields[1]), fields[2]))
    return table


def _unescape_mount(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in mount points as octal escapes.
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, plain)
    return field


def watch_error(exc: BaseException) -> BaseException:
    """The core's exception for a watchfiles error: running out of inotify watches is WatchLimitError."""
    text = str(exc)
    out_of_watches = (
        "watch limit" in text.lower()
        or "MaxFilesWatch" in text
        or "os error 28" in text
        or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC)
    )
    if out_of_watches:
        return WatchLimitError(errno.ENOSPC, f"OS file watch limit reached: {text}")
    return exc


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How every watch of a server drives watchfiles.

    Args:
        poll_delay_ms: time between two polls (in polling mode).
        batch_ms: most time watchfiles groups changes into one batch (the service debounces).
        step_ms: watchfiles' step; a stop takes effect within it.
        timeout_ms: how often the watch thread wakes without changes, to check the roots still exist.
        mounts_path: the mount table to find network file systems in.
        side_max_folders: most folders made or moved in since the watch was built that are watched
            apart from it (built again, small, for each batch that brings more), before they are
            merged into it (the whole watch built again: 0.5 s holding the GIL at 20,000 folders).
            0 merges at each new folder.
    """

    poll_delay_ms: int = 300
    batch_ms: int = 500
    step_ms: int = 50
    timeout_ms: int = 1000
    mounts_path: str = "/proc/self/mounts"
    side_max_folders: int = 1000


class WatchfilesSource:
    """One watch over some roots (a ``ChangeSource`` for ``WatchService``).

    Args:
        roots: absolute folders to watch, recursively.
        path_filter: what can matter.
        force_polling: poll even if every root is local.
        options: how watchfiles is driven.
        storm_threshold: changes in one batch after which the roots are rescanned (default: half the
            kernel's inotify queue), since the kernel drops what overflows without a word.
    """

    def __init__(
        self,
        roots: Sequence[str],
        *,
        path_filter: PathFilter,
        force_polling: bool = False,
        options: WatchOptions = WatchOptions(),
        storm_threshold: int | None = None,
    ) -> None:
        self._roots = tuple(_absolute(r) for r in roots)
        self._filter = path_filter
        self._force_polling = force_polling
        self._options = options
        self._polling = force_polling
        self._storm_events = storm_threshold or storm_events(max_queued_events())
        self._stop = threading.Event()
        # One thread per source: it builds the watch, runs each watch() call and closes it, in order,
        # so close never races a running watch() (RustNotify is not reentrant).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gql-media-watch")
        self._notify: Watch | None = None
        self._closed = False

    @property
    def mode(self) -> WatchMode:
        return WatchMode.POLLING if self._polling else WatchMode.NATIVE

    async def open(self) -> None:
        """Build the watch (in the source's thread). Raises WatchLimitError, RootMissingError, OSError."""
        if self._closed:
            raise RuntimeError("this source is closed")
        await self._in_thread(self._open_in_thread)

    def __aiter__(self) -> WatchfilesSource:
        return self

    async def __anext__(self) -> list[PathChange]:
        """The next non-empty batch of relevant changes; ends once the source is closed."""
        # A plain iterator, not an async generator: a consumer cancelled mid-wait leaves nothing to finalize.
        if self._notify is None and not self._stop.is_set():
            raise RuntimeError("open() the source first")
        while not self._stop.is_set():
            batch: list[PathChange] = await self._in_thread(self._next_batch_in_thread)
            if batch:
                return batch
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the watch and release the inotify descriptor and the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        # Queued behind a running watch(), which returns within one step now that stop is set.
        done = asyncio.wrap_future(self._executor.submit(self._close_in_thread))
        try:
            await asyncio.shield(done)
        finally:
            self._executor.shutdown(wait=False)

    async def _in_thread(self, fn: Any) -> Any:
        future: Future[Any] = self._executor.submit(fn)
        return await asyncio.wrap_future(future)

    def _open_in_thread(self) -> None:
        if self._closed:
            return
        if not self._force_polling:
            remote = network_roots(self._roots, mounts_path=self._options.mounts_path)
            if remote:
                logger.info("watcher: polling, as %s on a network file system", ", ".join(remote))
                self._polling = True
        try:
            if self._polling:
                self._notify = polling_watch(self._roots, self._options.poll_delay_ms)
            else:
                folders = folders_under(self._roots, self._stop.is_set, roots_must_exist=True)
                if self._stop.is_set():
                    return
                self._notify = FolderWatch(
                    folders,
                    side_max_folders=self._options.side_max_folders,
                    poll_delay_ms=self._options.poll_delay_ms,
                    stopped=self._stop.is_set,
                )
        except FileNotFoundError as exc:
            missing = [r for r in self._roots if not os.path.isdir(r)]
            raise RootMissingError(errno.ENOENT, f"root not found: {exc}", missing[0] if missing else None) from exc
        except Exception as exc:
            raise watch_error(exc) from exc
        logger.info("watcher: watching %s (%s)", ", ".join(self._roots), self.mode.value.lower())

    def _next_batch_in_thread(self) -> list[PathChange]:
        notify = self._notify
        if notify is None or self._stop.is_set():
            return []
        try:
            options = self._options
            raw = notify.watch(options.batch_ms, options.step_ms, options.timeout_ms, self._stop)
        except Exception as exc:
            raise watch_error(exc) from exc
        for root in self._roots:
            if not os.path.isdir(root):
                # Not passed on as deletions: a vanished root (an unplugged disk) is not an emptied one.
                raise RootMissingError(errno.ENOENT, "root disappeared", root)
        if isinstance(raw, str):  # "timeout", "stop" or "signal"
            raw = set()
        if isinstance(notify, FolderWatch) and raw:
            try:
                # Before the batch goes on: a new folder's sync must start after its watch is in place.
                notify.follow(raw)
            except Exception as exc:
                raise watch_error(exc) from exc
        if not raw:
            return []
        changes = self._filter.classify_all(raw)
        if not self._polling and len(raw) >= self._storm_events:
            # The kernel drops events past its queue (IN_Q_OVERFLOW) and watchfiles says nothing:
            # after a storm this large, rescan the roots rather than trust that nothing was lost.
            logger.info("%d changes in one batch: rescanning the roots in case events were dropped", len(raw))
            changes.extend(PathChange(PathChangeKind.ADDED, root, is_dir=True) for root in self._roots)
        return changes

    def _close_in_thread(self) -> None:
        notify, self._notify = self._notify, None
        if notify is not None:
            notify.close()


@dataclass(frozen=True, slots=True)
class WatchfilesSourceFactory:
    """Builds ``WatchfilesSource``s for ``WatchService`` (a ``ChangeSourceFactory``).

    Args:
        ignored_paths: folders never to report, e.g. the server's data folder.
        own_writes: the registry of paths the server writes itself.
        options: how every watch drives watchfiles.
    """

    ignored_paths: Sequence[str] = ()
    own_writes: OwnWrites | None = None
    options: WatchOptions = WatchOptions()

    def __call__(self, roots: Sequence[str], *, force_polling: bool) -> WatchfilesSource:
        path_filter = PathFilter(roots, ignored_paths=self.ignored_paths, own_writes=self.own_writes)
        return WatchfilesSource(roots, path_filter=path_filter, force_polling=force_polling, options=self.options)


def _absolute(path: str) -> str:
    return posixpath.normpath(os.path.abspath(path))
