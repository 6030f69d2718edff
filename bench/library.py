"""Synthetic libraries: N files with video extensions spread over M folders.

Folders sit two levels deep (``g000/d00000``, a group per 100 folders) so that walks recurse as
they do in a real library. A library is kept between runs and rebuilt only when its shape changes.

The files are empty, or (``sized``) sparse files of varied sizes, 1 MiB to 4 GiB as videos are,
that take no disk blocks (and every 4th empty): a sync keeps those sizes, so orders and totals by
size mean something.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
FOLDERS_PER_GROUP = 100
_MIN_SIZE = 1 << 20
_SIZE_SPAN = 1 << 32  # sizes up to 4 GiB above the smallest
_MARKER = ".bench-library.json"  # a dotfile: the scanner ignores it


@dataclass(frozen=True, slots=True)
class Library:
    root: Path
    files: int
    folders: int

    def folder(self, index: int) -> Path:
        """The absolute path of leaf folder ``index``."""
        return self.root / f"g{index // FOLDERS_PER_GROUP:03d}" / f"d{index:05d}"


def file_size(number: int) -> int:
    """The size of file ``number`` of a sized library: every 4th is empty (a file whose kind is known
    without opening it, as placeholders are), the others distinct for the first 2**32 files."""
    if number % 4 == 3:
        return 0
    return _MIN_SIZE + (number * 2654435761) % _SIZE_SPAN  # Knuth's multiplicative hash: a permutation


def make_library(root: Path, files: int, folders: int, *, sized: bool = False) -> Library:
    """Build (or reuse) a library of ``files`` videos in ``folders`` leaf folders under ``root``.

    The files are empty, or with ``sized`` sparse files of ``file_size`` bytes (no disk blocks).
    """
    library = Library(root, files, folders)
    marker = root / _MARKER
    shape: dict[str, int] = {"files": files, "folders": folders, "layout": 1}
    if sized:
        shape["sizes"] = 2  # the version of ``file_size``: a change rebuilds the library
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return library
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for index in range(folders):
        os.makedirs(library.folder(index))
    for number in range(files):
        folder = library.folder(number % folders)
        path = folder / f"clip {number:06d}{EXTENSIONS[number % len(EXTENSIONS)]}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if sized and file_size(number):
                os.ftruncate(fd, file_size(number))  # a hole: the size without the blocks
        finally:
            os.close(fd)
    marker.write_text(json.dumps(shape))
    return library


def walk_tree(root: str) -> int:
    """The reference walk: bare ``os.scandir`` + ``stat`` of every entry; returns how many it saw."""
    seen = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as listing:
            for entry in listing:
                st = entry.stat(follow_symlinks=False)
                seen += 1
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return seen


def timed_walk_s(library: Library) -> float:
    """The reference walk of ``library`` (``walk_tree``): its wall time in seconds."""
    started = time.perf_counter()
    walk_tree(str(library.root))
    return time.perf_counter() - started
