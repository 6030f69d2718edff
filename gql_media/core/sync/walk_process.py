"""A first index's walk in a process of its own: ``WalkBatches`` whose walk is another interpreter's.

A first index is two jobs at once on two cores: the walk (a stat per file) and the writer (SQLite
storing it). In one process they shared one GIL, and each stat gives the GIL up: the writer's
Python (binding rows, the event loop between statements) took it, and the walk waited for it back,
some 1,500-1,900 times per 100k files. A first index of 100k files walked in 0.62 s what a bare
walk does in 0.24 s, and everything after waited for it (bench P1).

So the walk of a first index runs in a fresh interpreter (``python -c``, as the media workers:
never a fork of a threaded server, no re-import of its main module), and the batches it hands on
come back over a pipe, pickled. A batch is what ``Scanner.walk`` emits, as in a thread: a first
index's videos travel as runs (``VideoRun``, a folder's names and stamps as lists), so unpickling
one costs the server a few milliseconds per 20k files, with the GIL, and nothing per file in
Python. The walk's process has nothing indexed to compare with (a first index), so it needs no
rows from the server; it knows the root, the scope and the folders to ignore.

Only a first index walks so: a resync's walk compares every folder with rows the server reads
beside it (``feed``), which would have to cross the pipe the other way.

The server's side is ``WalkBatches`` itself, with the thread relaying the pipe instead of walking:
the same room for batches ahead (the pipe's buffer holds the walk back beyond it), the same end,
the same cancel (``Scanner.cancel`` on the server's scanner, checked at each batch; ``stop`` kills
the process). A process that cannot be started leaves the walk to a thread, as before; one that
fails or dies fails the job with its words, and nothing is written for what it did not send.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
from collections.abc import Iterable

from gql_media.core.interpreters import start_interpreter
from gql_media.core.models import Scope
from gql_media.core.scanner import ScanCancelled, Scanner, ScanResult
from gql_media.core.sync.feed import FolderFeed
from gql_media.core.sync.stream import WalkBatches
from gql_media.core.walker import WalkRequest

logger = logging.getLogger(__name__)

__all__ = ["ProcessWalkBatches", "WalkFailed", "WalkProcess"]

# The walk's process (``interpreters.start_interpreter``): it imports ``core.walker``, the scanner
# alone, not the sync package and its engine.
_WALK_CODE = "\n".join(
    (
        "import sys",
        "from gql_media.core.walker import serve_walk",
        "serve_walk(int(sys.argv[1]), int(sys.argv[2]))",
    )
)
# How long a walk's process may take to end once its pipes are done with.
_REAP_TIMEOUT_S = 5.0


class WalkFailed(RuntimeError):
    """The walk's process failed (its words) or ended before its walk did."""


class WalkProcess:
    """A walk's process, started and waiting for its ``WalkRequest`` (``core.walker``).

    Started ahead of a first index (with the server, when a root is empty: ``SyncEngine``'s
    ``walk_ahead``), its interpreter's start (about 70 ms, mostly imports) is not the job's.
    Raises ``OSError`` when it cannot start.
    """

    def __init__(self) -> None:
        self.process, request_write, reply_read = start_interpreter(_WALK_CODE)
        self._requests = os.fdopen(request_write, "wb")
        self._replies = os.fdopen(reply_read, "rb")

    def send(self, request: WalkRequest) -> None:
        """Hand the process its walk (a few hundred bytes: the pipe takes them at once)."""
        try:
            with self._requests:
                pickle.dump(request, self._requests, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            pass  # the process is gone already: ``receive`` says so

    def receive(self) -> tuple[str, int, object]:
        """The next message of the walk (``core.walker``). Raises ``EOFError`` once the process is gone."""
        message: tuple[str, int, object] = pickle.load(self._replies)
        return message

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()

    def close(self) -> None:
        """Close the pipes and wait for the process to end (killed past ``_REAP_TIMEOUT_S``); again: nothing.

        One never handed a walk ends by itself: its request's pipe closes empty.
        """
        for pipe in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self.process.wait(_REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()

    def ending(self) -> str:
        """How the process ended, in words (for a walk it left unfinished)."""
        try:
            return f"exit code {self.process.wait(_REAP_TIMEOUT_S)}"
        except subprocess.TimeoutExpired:
            return "still running"


class ProcessWalkBatches(WalkBatches):
    """``WalkBatches`` of a first index, walked by a process of its own (see the module's docstring):
    ``spare``, one started ahead, or a new one."""

    def __init__(
        self,
        scanner: Scanner,
        scope: Scope,
        feed: FolderFeed,
        batch_entries: int,
        *,
        ignore_paths: Iterable[str] = (),
        ahead: int = 2,
        first_batch: int = 0,
        spare: WalkProcess | None = None,
    ) -> None:
        super().__init__(scanner, scope, feed, batch_entries, ahead, first_batch)
        self.ignore_paths = tuple(ignore_paths)
        self.process = spare

    async def stop(self) -> None:
        """Stop the walk (an error or a cancel): its process is killed, the relay's thread waited for."""
        self._stopped.set()
        if self.process is not None:
            self.process.kill()
        await super().stop()

    def _walk(self) -> None:
        try:
            process = self.process = self.process or WalkProcess()
        except OSError as error:
            logger.warning("the walk's process could not start (%s): the walk runs in a thread", error)
            super()._walk()
            return
        try:
            scope = self.scope
            process.send(WalkRequest(self.scanner.root_path, self.ignore_paths, scope.path, scope.raw_path,
                                     self.batch_entries, self.first_batch))  # fmt: skip
            self._relay(process)
        except BaseException:
            process.kill()  # (a cancel, or an error here: the walk is not wanted any more)
            raise
        finally:
            process.close()
            self.feed.walk_done()
            self._loop.call_soon_threadsafe(self._batches.put_nowait, None)

    def _relay(self, process: WalkProcess) -> None:
        """Hand the process's batches on, as ``_emit`` hands a thread's walk's on, until its last."""
        scanner = self.scanner
        while True:
            try:
                kind, seen, value = process.receive()
            except (EOFError, OSError, pickle.UnpicklingError):
                if scanner.stopped() or self._stopped.is_set():
                    raise ScanCancelled from None
                raise WalkFailed(f"the walk's process ended ({process.ending()}) before its walk did") from None
            if scanner.stopped():
                raise ScanCancelled
            scanner.seen = seen
            if kind == "error":
                raise WalkFailed(f"the walk failed: {value}")
            assert isinstance(value, ScanResult)
            self._emit(value)
            if kind == "done":
                return
