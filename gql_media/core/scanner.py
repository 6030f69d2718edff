"""Walks a part of a library root with ``os.scandir``. Blocking: run it in a thread.

Rules a user expects:
- videos are recognised by extension, case-insensitive; the files of an HLS download are not
  videos of their own (the merge makes one of them): in a folder holding an .m3u8 playlist, its
  segment-type files (.ts, .m4s, .aac, .m4a) and every file a recognised playlist there names
  (``hls.owned_files``: segments, an fMP4 ``init.mp4``, variant folders' files);
- dotfiles, dot-folders, partial downloads and the server's own data dir are ignored, and so is
  anything that is not a regular file or a folder;
- symlinks are followed only when they stay inside the root, and a folder is never entered twice
  in one walk (no loops);
- a name that is not valid UTF-8 keeps its real bytes in ``raw_path`` and shows U+FFFD in ``path``;
- what cannot be read is reported, never taken as deleted: the walk records the path as
  *incomplete* so the sync leaves its index entries alone.

Past 400 lines, kept whole: the streamed walk's hand-over (``KnownByFolder``, ``FolderVideos``,
``emit``) and the unchanged videos' short ways (``_same_folder``, ``_drop_unchanged``) sit in the
hot loop they feed.
"""

from __future__ import annotations

import array
import binascii
import operator
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from typing import Protocol, cast

from gql_media.core.hls import owned_files
from gql_media.core.models import EntryKind, ScanEntry, SyncErrorInfo, VideoRun

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".m2ts",
        ".mts", ".3gp", ".ogv", ".vob", ".asf", ".divx", ".f4v",
    }
)  # fmt: skip
PARTIAL_SUFFIXES = (".part", ".crdownload", ".tmp", ".download", ".partial")
PLAYLIST_EXTENSION = ".m3u8"
SEGMENT_EXTENSIONS = frozenset({".ts", ".m4s", ".aac", ".m4a"})
_PLAYLIST_ENDINGS = (PLAYLIST_EXTENSION, PLAYLIST_EXTENSION.upper())
_PLAYLIST_END = PLAYLIST_EXTENSION + "/"  # (a name ending so, in names joined by "/")
# A download's playlist may name files this many folders below it (a master's variant folders).
_PLAYLIST_LEVELS_ABOVE = 2


def extension_of(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def is_ignored_name(name: str) -> bool:
    """Dotfiles and partial downloads never reach the index."""
    return name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES)


def is_video_name(name: str) -> bool:
    return not is_ignored_name(name) and extension_of(name) in VIDEO_EXTENSIONS


def display_name(name: str) -> tuple[str, bool]:
    """A valid-Unicode form of an OS name, and whether it differs from the real bytes."""
    if name.isascii():
        return name, False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True
    return name, False


class ScanCancelled(Exception):
    """The walk was asked to stop."""


# What the walk may compare a video against: an index row (id, root_id, path, size, mtime_ns, inode, device).
KnownVideo = tuple[int, int, str, int, int, int, int]


# One folder's indexed videos as the store reads them for a resync (``LibraryStore.read_folder_stamps``):
# (folder id, their names joined by "/" in code point order, their stamps in that order as lowercase
# hex: size, mtime_ns, inode and device per video, 16 digits each, their 64 bits). No ids: only the
# rows that differ need them.
FolderStamps = tuple[int, str, str]
# The id of a row made from ``FolderStamps`` (``FolderVideos.rows``) until the sync reads its real one.
UNKNOWN_ID = 0
HEX_PER_VIDEO = 64  # (four 64-bit stamps)


class FolderVideos:
    """A folder's indexed videos as a streamed walk compares them: names and stamps as read, rows on demand.

    An unchanged folder (most of a resync) is settled by comparing its listing's names and stamps
    with ``names`` and ``stamps`` (texts) whole: no row, no id, no path, no int is made for it.
    ``rows`` makes the rows of a folder that differs (a file changed, added or gone) or that the
    walk passed by.
    """

    __slots__ = ("count", "names", "prefix", "root_id", "stamps")

    def __init__(self, root_id: int, rel_dir: str, stamps: FolderStamps) -> None:
        self.root_id = root_id
        self.prefix = rel_dir + "/" if rel_dir else ""
        _folder_id, self.names, self.stamps = stamps
        self.count = len(self.stamps) // HEX_PER_VIDEO

    def rows(self) -> list[KnownVideo]:
        """The videos as index rows ``(id, root_id, path, size, mtime_ns, inode, device)``, their ids
        ``UNKNOWN_ID`` (the sync reads those of the rows it keeps: ``LibraryStore.read_video_ids``)."""
        values = array.array("Q", binascii.unhexlify(self.stamps))
        if _LITTLE:
            values.byteswap()  # (the hex is big-endian)
        v = values.tolist()
        # (A negative mtime, before 1970, was written as its 64 bits: turned back here.)
        mtimes = [m - _U64 if m >= _I63 else m for m in v[1::4]]
        return list(zip(repeat(UNKNOWN_ID, self.count), repeat(self.root_id, self.count),
                        map(self.prefix.__add__, self.names.split("/")), v[0::4], mtimes, v[2::4], v[3::4],
                        strict=True))  # fmt: skip


def stamps_hex(stats: Iterable[os.stat_result]) -> str:
    """The stamps of these stats as ``FolderStamps`` writes them (OverflowError for a negative mtime)."""
    values = array.array("Q", list(chain.from_iterable(map(_STAMPS, stats))))
    if _LITTLE:
        values.byteswap()
    return values.tobytes().hex()


class KnownByFolder(Protocol):
    """Index rows handed to a walk as it lists folders (``Scanner.walk`` with ``by_folder``).

    ``take`` is called from the walk's thread as each folder is listed, in the walk's order, and
    may wait for the rows to be read; it returns the folder's indexed videos (None: none indexed).
    Whatever it lets go of (rows of folders the walk passed by without listing them) goes to ``left``.
    """

    def take(self, rel_dir: str, left: list[KnownVideo]) -> FolderVideos | None: ...


@dataclass(slots=True)
class ScanResult:
    """What one walk found. ``incomplete`` holds paths whose contents could not be listed.

    ``unchanged`` counts the videos found exactly as ``known`` (see ``Scanner.walk``) had them:
    they get no ``ScanEntry`` (building one per file is most of an unchanged resync's walk).
    A walk given its rows ``by_folder`` also notes the folders it listed (``listed``) and the
    rows it did not find unchanged (``left``: changed or gone), and puts the plain new videos of a
    folder holding no indexed one (a first index's every folder) in ``runs``, column by column,
    instead of ``entries`` (``run_videos`` counts them; ``entries_with_runs`` makes their entries).

    ``playlist_folders``: the absolute paths of the listed folders naming a playlist (a visible
    name ending in ``.m3u8``, any case): where an HLS download may lie, so that a job's merging
    step looks at those folders instead of walking the scope a second time.
    """

    entries: list[ScanEntry] = field(default_factory=list)
    errors: list[SyncErrorInfo] = field(default_factory=list)
    incomplete: set[str] = field(default_factory=set)
    unchanged: int = 0
    listed: list[str] = field(default_factory=list)
    left: list[KnownVideo] = field(default_factory=list)
    runs: list[VideoRun] = field(default_factory=list)
    run_videos: int = 0
    playlist_folders: list[str] = field(default_factory=list)

    def take(self) -> ScanResult:
        """What was found so far, moved into a new result (this one starts again empty)."""
        taken = ScanResult(self.entries, self.errors, self.incomplete, self.unchanged, self.listed, self.left,
                           self.runs, self.run_videos, self.playlist_folders)  # fmt: skip
        self.entries, self.errors, self.incomplete, self.unchanged = [], [], set(), 0
        self.listed, self.left, self.runs, self.run_videos = [], [], [], 0
        self.playlist_folders = []
        return taken

    def entries_with_runs(self) -> list[ScanEntry]:
        """``entries``, with the videos of ``runs`` as entries too (which then go)."""
        for run in self.runs:
            self.entries.extend(run.entries())
        self.runs, self.run_videos = [], 0
        return self.entries


# A batch of a walk handed on (``Scanner.walk``'s ``emit``).
Emit = Callable[[ScanResult], None]


class Scanner:
    """Walks folders of one root. ``ignore_paths`` are absolute folders to skip (the data dir)."""

    def __init__(self, root_path: str, ignore_paths: Iterable[str] = ()) -> None:
        self.root_path = os.path.abspath(root_path)
        self._root_real = os.path.realpath(self.root_path)
        self._root_slash = self.root_path if self.root_path.endswith("/") else self.root_path + "/"
        # Ignored folders are known by identity (a set lookup per folder, where a real path costs
        # a stat per path component); those missing when the scanner starts, by their real path.
        self._ignored_ids: set[tuple[int, int]] = set()
        self._ignored_paths: set[str] = set()
        for path in ignore_paths:
            real = os.path.realpath(path)
            try:
                st = os.stat(real)
            except OSError:
                self._ignored_paths.add(real)
                continue
            self._ignored_ids.add((st.st_dev, st.st_ino))
        self.seen = 0  # entries looked at so far, read by the progress reporter from another thread
        self._stop = threading.Event()
        # Files of HLS downloads met so far (absolute, normalised): never videos of their own.
        self._owned: set[str] = set()

    def cancel(self) -> None:
        self._stop.set()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def walk(
        self,
        rel_path: str,
        recursive: bool,
        result: ScanResult,
        raw_path: bytes | None = None,
        known: dict[str, KnownVideo] | None = None,
        *,
        by_folder: KnownByFolder | None = None,
        emit: Emit | None = None,
        batch_entries: int = 0,
        first_batch_entries: int = 0,
    ) -> None:
        """Add ``rel_path`` (a folder) and what lies under it to ``result``.

        ``raw_path`` is the real relative path when it is not valid UTF-8. A missing folder adds
        nothing (it is gone); a missing or unreadable root is incomplete. ``known`` (indexed videos
        by path): a video with the same size and mtime (and the same device and inode, where both
        sides know them) is only counted in ``result.unchanged`` and its row is taken out of
        ``known``, so what is left in ``known`` afterwards is what the sync must still compare.

        A streamed walk: ``by_folder`` gives the known rows as folders are listed instead (rows
        found changed go to ``result.left``, and so do those ``by_folder`` lets go of); folders
        are then walked in path order (a folder, then its sub-folders by name + "/": the order of
        ``path + "/"``); and ``emit`` is handed what ``result`` holds each time a listed folder brings it to
        ``batch_entries`` (entries and unchanged videos), and ``result`` starts again empty. The
        last batch stays in ``result``. With ``first_batch_entries``, the first batch is handed on
        at that size and each next one at twice the one before, up to ``batch_entries``.
        """
        raw = raw_path
        os_rel = os.fsdecode(raw_path) if raw_path is not None else rel_path
        abs_path = self._abs(os_rel)
        try:
            st = os.stat(abs_path)
        except FileNotFoundError:
            if rel_path == "":
                result.errors.append(SyncErrorInfo(self.root_path, "library root is missing or not mounted"))
                result.incomplete.add("")
            return
        except OSError as exc:
            result.errors.append(SyncErrorInfo(abs_path, f"cannot read: {exc.strerror or exc}"))
            result.incomplete.add(rel_path)
            return
        if not stat.S_ISDIR(st.st_mode):
            if rel_path == "":
                result.errors.append(SyncErrorInfo(self.root_path, "library root is not a folder"))
                result.incomplete.add("")
            return
        if rel_path and (is_ignored_name(rel_path.rsplit("/", 1)[-1]) or self._is_ignored_dir(abs_path, st)):
            return
        result.entries.append(ScanEntry(EntryKind.FOLDER, rel_path, raw, 0, st.st_mtime_ns, st.st_ino, st.st_dev))
        if rel_path:
            self._add_owned_above(abs_path)
        visited = {(st.st_dev, st.st_ino)}
        first = min(first_batch_entries, batch_entries) if first_batch_entries > 0 else batch_entries
        walk = _Walk(known or {}, by_folder, emit, first, batch_entries)
        self._walk_dir(rel_path, os_rel, raw is not None, recursive, visited, result, walk)

    def _add_owned_above(self, abs_path: str) -> None:
        """A walk below a download's folder (a variant folder's new segment) still knows the download's files."""
        above = abs_path
        for _ in range(_PLAYLIST_LEVELS_ABOVE):
            parent = os.path.dirname(above)
            if parent == above or len(parent) < len(self.root_path):
                return
            above = parent
            try:
                names = os.listdir(above)
            except OSError:
                return
            if any(name.lower().endswith(PLAYLIST_EXTENSION) for name in names):
                self._owned |= owned_files(above)

    def _abs(self, os_rel: str) -> str:
        # (A concatenation: os.path.join's checks cost a microsecond, twice per folder listed.)
        return self._root_slash + os_rel if os_rel else self.root_path

    def _is_ignored_dir(self, abs_path: str, st: os.stat_result) -> bool:
        """Whether the folder at ``abs_path`` (``st``: its stat, a symlink's target's) is an ignored one."""
        if (st.st_dev, st.st_ino) in self._ignored_ids:
            return True
        return bool(self._ignored_paths) and os.path.realpath(abs_path) in self._ignored_paths

    def _walk_dir(
        self,
        rel_dir: str,
        os_rel_dir: str,
        dir_has_raw: bool,
        recursive: bool,
        visited: set[tuple[int, int]],
        result: ScanResult,
        walk: _Walk,
    ) -> None:
        stack = [(rel_dir, os_rel_dir, dir_has_raw)]
        by_folder = walk.by_folder
        while stack:
            if self._stop.is_set():
                raise ScanCancelled
            rel, os_rel, has_raw = stack.pop()
            abs_dir = self._abs(os_rel)
            listing = _list(rel, abs_dir, result)
            if listing is None:
                continue
            fd, children = listing
            try:
                pushed = len(stack)
                if by_folder is None:
                    # Indexed videos found unchanged are dropped first (most of a resync: most folders end there).
                    known = walk.known
                    listed = self._drop_unchanged(children, rel + "/" if rel else "", abs_dir, known, result)
                    changed: list[KnownVideo] = []
                    if listed:
                        self._walk_folder(rel, os_rel, abs_dir, has_raw, listed, stack if recursive else None,
                                          visited, result, known, changed)  # fmt: skip
                        walk.known.update((row[2], row) for row in changed)  # what the sync must still compare
                    continue
                videos = by_folder.take(rel, result.left)
                if videos is not None and self._same_folder(children, videos):
                    self.seen += videos.count
                    result.unchanged += videos.count
                else:
                    # Rows found changed, and those not found at all (gone), go to ``result.left``.
                    known = {} if videos is None else {row[2]: row for row in videos.rows()}
                    listed = self._drop_unchanged(children, rel + "/" if rel else "", abs_dir, known, result)
                    if listed and not known and not has_raw:
                        listed = self._add_new_videos(listed, rel + "/" if rel else "", result)
                    if listed:
                        self._walk_folder(rel, os_rel, abs_dir, has_raw, listed, stack if recursive else None,
                                          visited, result, known, result.left)  # fmt: skip
                    result.left.extend(known.values())
            finally:
                os.close(fd)
            result.listed.append(rel)
            if len(stack) - pushed > 1:  # popped last first: the sub-folders by name + "/", descending
                stack[pushed:] = sorted(stack[pushed:], key=_folder_order, reverse=True)
            found = len(result.entries) + result.unchanged + result.run_videos
            if walk.emit is not None and found >= walk.batch_entries:
                walk.emit(result.take())
                walk.batch_entries = min(2 * walk.batch_entries, walk.most_entries)

    def _walk_folder(
        self,
        rel: str,
        os_rel: str,
        abs_dir: str,
        has_raw: bool,
        children: list[os.DirEntry[str]],
        stack: list[tuple[str, str, bool]] | None,
        visited: set[tuple[int, int]],
        result: ScanResult,
        known: dict[str, KnownVideo],
        changed: list[KnownVideo],
    ) -> None:
        """The entries of one listed folder but its unchanged videos (``children``: what
        ``_drop_unchanged`` left of its listing); sub-folders to enter go on ``stack`` (None: not recursive).

        A row of ``known`` whose file changed is taken out and goes to ``changed``.
        """
        # The hot loop of a first index: names are lowered once, the common case (an ASCII name,
        # not a symlink) takes no extra calls, and ``seen`` is published once per folder. (A folder
        # holding a playlist has its whole listing here: ``_drop_unchanged`` drops nothing of it.)
        prefix = rel + "/" if rel else ""
        listed = children
        append = result.entries.append
        take = known.pop
        video = EntryKind.VIDEO
        is_reg, is_dir = stat.S_ISREG, stat.S_ISDIR
        hls: bool | None = None  # whether this folder holds a playlist: looked up at its first video
        owned = self._owned
        os_prefix = os_rel + "/" if os_rel else ""
        seen = unchanged = 0
        _note_playlist(listed, abs_dir, result)
        for child in listed:
            name = child.name
            if name[0] == ".":
                continue
            lower = name.lower()
            if lower.endswith(PARTIAL_SUFFIXES):
                continue
            if name.isascii():
                child_rel = prefix + name
                raw = os.fsencode(os_prefix + name) if has_raw else None
            else:
                child_rel, raw = _child_names(prefix, os_prefix, name, has_raw)
            try:
                st = None if child.is_symlink() else child.stat(follow_symlinks=False)
            except OSError:
                st = None
            if st is None and (st := self._stat_child(child, child_rel, abs_dir, result)) is None:
                continue
            seen += 1
            mode = st.st_mode
            if is_reg(mode):
                dot = lower.rfind(".")
                ext = lower[dot:] if dot > 0 else ""
                if hls is None and (ext in VIDEO_EXTENSIONS or ext == PLAYLIST_EXTENSION):
                    # Once per folder, and before its sub-folders are walked (they may hold a variant's files).
                    hls = ext == PLAYLIST_EXTENSION or any(c.name.endswith(_PLAYLIST_ENDINGS) for c in children)
                    if hls:
                        owned |= owned_files(abs_dir)
                if ext in VIDEO_EXTENSIONS and not (hls and ext in SEGMENT_EXTENSIONS):
                    if owned and os.path.normpath(os.path.join(abs_dir, name)) in owned:
                        continue
                    row = take(child_rel, None)
                    if row is not None:
                        if _same_file(row, st):
                            unchanged += 1
                            continue
                        changed.append(row)  # the sync compares it
                    append(ScanEntry(video, child_rel, raw, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
            elif is_dir(mode):
                self._add_folder(child, child_rel, raw, st, os_prefix + name, stack, visited, result)
        self.seen += seen
        result.unchanged += unchanged

    def _same_folder(self, children: list[os.DirEntry[str]], videos: FolderVideos) -> bool:
        """Whether the folder's listing is exactly its indexed videos, unchanged (most folders of a resync).

        Calls in C over the whole listing, no Python line per file: the names (sorted as the store
        sorts them) against ``videos.names``, then the stamps of their stats, as text, against ``videos.stamps``.
        Every name was a video's when it was indexed, so only what may have changed about a file
        is checked again: not a regular file any more, a symlink, a download's file.
        """
        if len(children) != videos.count or self._owned:
            return False
        children.sort(key=_NAME)
        joined = "/".join(map(_NAME, children))
        if joined != videos.names or PLAYLIST_EXTENSION in joined.lower() or any(map(_IS_LINK, children)):
            return False
        try:
            stats = list(map(_STAT, children))  # (no symlink among them: ``stat()`` is their lstat)
            stamps = stamps_hex(stats)
        except OSError:
            return False  # (one of them vanished or cannot be read: the rules say which)
        except OverflowError:
            return False  # (a file dated before 1970: compared file by file)
        return stamps == videos.stamps and all(map(_IS_REG, map(_MODE, stats)))

    def _drop_unchanged(
        self,
        children: list[os.DirEntry[str]],
        prefix: str,
        abs_dir: str,
        known: dict[str, KnownVideo],
        result: ScanResult,
    ) -> list[os.DirEntry[str]]:
        """The children left once the indexed videos found unchanged are counted (and their rows taken).

        An indexed video is looked up before any rule: its name passed them all when it was
        indexed, so a regular file at its path with its stamps is unchanged (most of a resync) for
        a lookup and a stat. The rules decide the rest (a file a download owns, a symlink, a changed
        file), and every file of a folder holding a playlist (an HLS download's segments are no videos).
        """
        # (The folder's names in one string, lowered, searched in C: a name holding ".m3u8" anywhere.)
        if not known:
            return children
        names = list(map(_NAME, children))
        joined = "/".join(names)
        if PLAYLIST_EXTENSION in joined.lower():
            return children
        # Every row is taken, and a folder whose files are all indexed and unchanged (most folders
        # of a resync) is settled by calls in C over the whole listing: no Python line per file.
        rows = list(map(known.pop, map(prefix.__add__, names), repeat(None)))
        if (
            all(rows)
            and not self._owned
            and joined[:1] != "."
            and "/." not in joined
            and not any(map(_IS_LINK, children))
        ):
            try:
                stats = list(map(_STAT, children))  # (no symlink among them: ``stat()`` is their lstat)
            except OSError:
                pass  # (one of them vanished or cannot be read: the loop below says which)
            else:
                same = list(map(_STAMPS, stats)) == list(map(_ROW_STAMPS, cast(list[KnownVideo], rows)))
                if same and all(map(_IS_REG, map(_MODE, stats))):
                    self.seen += len(rows)
                    result.unchanged += len(rows)
                    return []
        others: list[os.DirEntry[str]] = []
        keep = others.append
        is_reg = stat.S_ISREG
        owned = self._owned
        unchanged = 0
        for child, row in zip(children, rows, strict=True):
            if row is None:
                keep(child)
                continue
            name = child.name
            if name[0] != ".":  # (a symlink's lstat is no regular file: the rules decide it)
                try:
                    st = child.stat(follow_symlinks=False)  # (cached by the DirEntry if stat'ed above)
                except OSError:
                    st = None
                if (
                    st is not None
                    and row[3] == st.st_size
                    and row[4] == st.st_mtime_ns
                    and is_reg(st.st_mode)
                    and (not row[5] or not st.st_ino or (row[5] == st.st_ino and row[6] == st.st_dev))
                    and not (owned and os.path.normpath(os.path.join(abs_dir, name)) in owned)
                ):  # _same_file, inline
                    unchanged += 1
                    continue
            known[prefix + name] = row
            keep(child)
        self.seen += unchanged
        result.unchanged += unchanged
        return others

    def _add_new_videos(
        self, children: list[os.DirEntry[str]], prefix: str, result: ScanResult
    ) -> list[os.DirEntry[str]]:
        """The children left once the plain new videos among them are added to ``result`` (a streamed
        walk's folder holding no indexed video: a first index's every folder).

        A plain video: a regular file (no symlink) with a video's extension, its name ASCII and no
        dotfile, in a folder whose names hold no playlist, while no download's files are known. In
        a folder whose every name is ASCII and which holds no symlink, they are found by calls in C
        over the whole listing (a first index: no Python line per file, which was most of its
        walk's own CPU) and go into ``result.runs`` as one ``VideoRun``, by name: no tuple and no
        path per file. The rules decide the rest (sub-folders, other files).
        """
        names = list(map(_NAME, children))
        joined = "/".join(names)
        lowered = joined.lower()
        if self._owned or PLAYLIST_EXTENSION in lowered or not joined.isascii() or any(map(_IS_LINK, children)):
            return children
        try:
            stats = list(map(_STAT, children))  # (no symlink among them: ``stat()`` is their lstat)
        except OSError:
            return children  # (one of them vanished or cannot be read: the rules say which)
        # (Split, ``lowered`` gives each name lowered. No partial download ends as a video does.)
        lowers = lowered.split("/")
        plain = list(
            map(operator.and_, map(_IS_REG, map(_MODE, stats)), map(str.endswith, lowers, repeat(_VIDEO_ENDINGS)))
        )
        if joined[:1] == "." or "/." in joined:  # dotfiles: never videos
            plain = list(map(operator.and_, plain, map(operator.not_, map(str.startswith, lowers, repeat(".")))))
        count = sum(plain)
        if not count:
            return children
        if count < len(children):
            names, stats = list(compress(names, plain)), list(compress(stats, plain))
        if count > 1:  # by name, as the store orders a folder's videos (names differ: no stat is compared)
            order = sorted(range(count), key=names.__getitem__)
            names, stats = list(map(names.__getitem__, order)), list(map(stats.__getitem__, order))
        result.runs.append(VideoRun(0, 0, 0, prefix[:-1], names, list(map(_SIZE, stats)), list(map(_MTIME, stats)),
                                    list(map(_INODE, stats)), list(map(_DEVICE, stats))))  # fmt: skip
        result.run_videos += count
        self.seen += count
        return [] if count == len(children) else list(compress(children, map(operator.not_, plain)))

    def _add_folder(
        self,
        child: os.DirEntry[str],
        child_rel: str,
        raw: bytes | None,
        st: os.stat_result,
        os_child: str,
        stack: list[tuple[str, str, bool]] | None,
        visited: set[tuple[int, int]],
        result: ScanResult,
    ) -> None:
        key = (st.st_dev, st.st_ino)
        if key in visited or self._is_ignored_dir(self._abs(os_child), st):
            return
        result.entries.append(ScanEntry(EntryKind.FOLDER, child_rel, raw, 0, st.st_mtime_ns, st.st_ino, st.st_dev))
        if stack is not None:
            visited.add(key)
            stack.append((child_rel, os_child, raw is not None))

    def _stat_child(
        self, child: os.DirEntry[str], child_rel: str, abs_dir: str, result: ScanResult
    ) -> os.stat_result | None:
        """The entry's stat, or None when it is skipped (an outside symlink) or failed (reported)."""
        abs_path = abs_dir + "/" + child.name  # (listed by descriptor: ``child.path`` is its name alone)
        try:
            if child.is_symlink():
                return self._link_target(abs_path)
            return child.stat(follow_symlinks=False)
        except FileNotFoundError:
            result.errors.append(SyncErrorInfo(abs_path, "vanished during the scan"))
        except OSError as exc:
            result.errors.append(SyncErrorInfo(abs_path, f"cannot read: {exc.strerror or exc}"))
            if child.is_dir(follow_symlinks=False):
                result.incomplete.add(child_rel)
        return None

    def _link_target(self, abs_path: str) -> os.stat_result | None:
        """A symlink's target's stat, only when it stays inside the root."""
        target = os.path.realpath(abs_path)
        if target != self._root_real and not target.startswith(self._root_real + os.sep):
            return None
        return os.stat(target)


@dataclass(slots=True)
class _Walk:
    """How one walk compares and hands on what it finds (see ``Scanner.walk``)."""

    known: dict[str, KnownVideo]
    by_folder: KnownByFolder | None
    emit: Emit | None
    batch_entries: int
    most_entries: int


_NAME = operator.attrgetter("name")
# Unbound, called without keywords (a third of the cost of ``methodcaller("stat", follow_symlinks=False)``).
_STAT = os.DirEntry.stat
_IS_LINK = os.DirEntry.is_symlink
_MODE = operator.attrgetter("st_mode")
_IS_REG = stat.S_ISREG
# A video's stamps as the index row and the stat give them: equal tuples are an unchanged file (``_same_file``).
_ROW_STAMPS = operator.itemgetter(3, 4, 5, 6)
_STAMPS = operator.attrgetter("st_size", "st_mtime_ns", "st_ino", "st_dev")
_SIZE, _MTIME = operator.attrgetter("st_size"), operator.attrgetter("st_mtime_ns")
_INODE, _DEVICE = operator.attrgetter("st_ino"), operator.attrgetter("st_dev")
_VIDEO_ENDINGS = tuple(sorted(VIDEO_EXTENSIONS))  # (what a lowered video's name ends with)
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_U64 = 1 << 64
_I63 = 1 << 63
_LITTLE = sys.byteorder == "little"


def _list(rel: str, abs_dir: str, result: ScanResult) -> tuple[int, list[os.DirEntry[str]]] | None:
    """A folder's entries, listed by a descriptor the caller closes once it has stat'ed them.

    Listed by descriptor, ``DirEntry.stat`` asks the kernel by name within the folder
    (``fstatat``) instead of resolving the whole path again for each file: a quarter of a
    stat's time at a library's usual depth. (``child.path`` is then the bare name.)
    """
    try:
        fd = os.open(abs_dir, _DIRECTORY_FLAGS)
    except FileNotFoundError:
        message = "folder vanished during the scan"
    except OSError as exc:
        message = f"cannot list folder: {exc.strerror or exc}"
    else:
        try:
            with os.scandir(fd) as listing:
                return fd, list(listing)
        except OSError as exc:
            os.close(fd)
            message = f"cannot list folder: {exc.strerror or exc}"
    result.errors.append(SyncErrorInfo(abs_dir, message))
    result.incomplete.add(rel)
    return None


def _note_playlist(children: list[os.DirEntry[str]], abs_dir: str, result: ScanResult) -> None:
    """``abs_dir`` goes to ``result.playlist_folders`` when one of its ``children`` names a playlist.

    (Names end at "/" in one lowered string, searched in C. A hidden playlist counts too: the
    merging step's own look at the folder leaves it out.)
    """
    if _PLAYLIST_END in ("/".join(map(_NAME, children)) + "/").lower():
        result.playlist_folders.append(abs_dir)


def _folder_order(item: tuple[str, str, bool]) -> str:
    return item[0] + "/"


def _child_names(prefix: str, os_prefix: str, name: str, has_raw: bool) -> tuple[str, bytes | None]:
    """The display path of a non-ASCII child, and its real bytes when they differ (or its folder's did)."""
    shown, bad = display_name(name)
    return prefix + shown, (os.fsencode(os_prefix + name) if (bad or has_raw) else None)


def _same_file(row: KnownVideo, st: os.stat_result) -> bool:
    """Whether the index row still describes the file: same size and mtime, same identity where both know it."""
    return (
        row[3] == st.st_size
        and row[4] == st.st_mtime_ns
        and (not row[5] or not st.st_ino or (row[5] == st.st_ino and row[6] == st.st_dev))
    )


def split_os_path(root_path: str, abs_path: str) -> tuple[str, bytes | None]:
    """The display path relative to ``root_path`` of an absolute OS path, and its raw bytes if needed."""
    os_rel = os.path.relpath(abs_path, root_path)
    if os_rel == ".":
        return "", None
    os_rel = os_rel.replace(os.sep, "/")
    parts = [display_name(part) for part in os_rel.split("/")]
    shown = "/".join(part for part, _ in parts)
    return shown, (os.fsencode(os_rel) if any(bad for _, bad in parts) else None)
