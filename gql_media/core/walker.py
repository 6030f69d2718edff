"""The walk's process of a first index (``core/sync/walk_process.py`` is the server's side).

It imports the scanner and nothing of the sync, nor ``multiprocessing`` (the messages are plain
pickles on two pipes): a fresh interpreter is ready in about 70 ms (with the sync package, whose
engine imports asyncio and the ports: 130 ms). One ``WalkRequest``
comes in; the batches ``Scanner.walk`` emits go out pickled, as ``("batch", seen, ScanResult)``,
then ``("done", seen, ScanResult)`` (the last batch) or ``("error", seen, words)``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
from dataclasses import dataclass

from gql_media.core.scanner import FolderVideos, KnownVideo, Scanner, ScanResult

__all__ = ["WalkRequest", "serve_walk"]


@dataclass(frozen=True, slots=True)
class WalkRequest:
    """What the walk's process walks: ``Scanner(root_path, ignore_paths).walk`` of a scope, recursive,
    with nothing indexed under it, handing a batch on each ``batch_entries`` (the first at
    ``first_batch_entries``)."""

    root_path: str
    ignore_paths: tuple[str, ...]
    path: str
    raw_path: bytes | None
    batch_entries: int
    first_batch_entries: int


class _NothingIndexed:
    """``KnownByFolder`` of a first index: no folder holds an indexed video."""

    def take(self, rel_dir: str, left: list[KnownVideo]) -> FolderVideos | None:
        return None


class _ServerGone(Exception):
    """The pipe to the server broke: it stopped the walk (or died)."""


def serve_walk(request_fd: int, reply_fd: int) -> None:
    """The walk's process: one ``WalkRequest`` in (``request_fd``), its batches out (``reply_fd``)."""
    try:
        with os.fdopen(request_fd, "rb") as requests:
            request: WalkRequest = pickle.load(requests)
    except (EOFError, OSError, pickle.UnpicklingError, KeyboardInterrupt):
        return  # the server stopped before it had a walk for this process
    # The walk makes no cycles: what it makes is freed by reference counts (no collection to run).
    gc.disable()
    scanner = Scanner(request.root_path, request.ignore_paths)
    replies = os.fdopen(reply_fd, "wb")

    def send(kind: str, value: object) -> None:
        try:
            pickle.dump((kind, scanner.seen, value), replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()
        except (OSError, ValueError) as error:
            raise _ServerGone from error

    result = ScanResult()
    try:
        scanner.walk(request.path, True, result, request.raw_path, by_folder=_NothingIndexed(),
                     emit=lambda batch: send("batch", batch), batch_entries=request.batch_entries,
                     first_batch_entries=request.first_batch_entries)  # fmt: skip
        send("done", result)
    except (_ServerGone, KeyboardInterrupt):
        return
    except Exception as error:  # a bug or an odd tree: the server's job fails with these words
        with contextlib.suppress(_ServerGone):
            send("error", f"{type(error).__name__}: {error}")
    finally:
        with contextlib.suppress(OSError):
            replies.close()
