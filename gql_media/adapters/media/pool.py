"""A pool of worker processes that run named operations, each call bounded by a timeout.

Decoding never runs in the server's process: a busy Python thread there starved a decode 20x
(stack-facts), and a decoder that hangs or crashes must not take the server with it. So each
worker is a process on its own pipe; a call that times out or whose worker dies gets the worker
killed and replaced, and the call an error. Workers are fresh interpreters (``python -c``, ~0.2 s
to start) talking over two pipes: never forks of a threaded server, and unlike multiprocessing's
spawn they never re-import the server's main module.

A worker says ``("ready", None)`` once its table is loaded (its imports done: ``av`` takes most of
a second on a busy machine) and its setup has run. A call waits for that before its own limit
starts, so a worker's start never counts against a call; ``wait_ready`` waits for every worker
(a benchmark starts its clock after it).

The pool knows no media library. It is handed its operation table (name -> function) and an
optional per-worker setup; both go to each worker pickled, i.e. by reference, so they must be
module-level functions the worker can import. New operations (a transcoder, a segmenter) are
added by registering them in the table; tests register their own (a crash, a sleep).

A call past its timeout whose worker was starved (waiting for a CPU or the disk, or stopped), not
hung, waits more, up to ``starved_periods`` timeouts (``starvation``); past that it fails with
``WorkerStarved``: not the file's fault. (Past ~400 lines: both ends of the worker protocol live here.)

An operation's outcome comes back as a reply ``(kind, value)``, sent with the worker's CPU time so
far (``_cpu_s``; so is ``ready``): the next call's starting point for ``starvation``, which then
reads ``/proc`` only at a deadline, not at every call (that read was half the server's CPU per
call: ~55 of ~105 us for a call that does nothing, bench P6's parent per thumbnail).
- ``("ok", result)``;
- ``("unreadable", reason)`` when it raised ``Unreadable`` (the file cannot be read at all);
- ``("error", reason)`` for ``MediaError``/``HlsError`` (their text), an ``OSError`` (explained:
  disk full, permission denied...) or any other exception (its type and text; the worker stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import pickle
import subprocess
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeAlias

from gql_media.adapters.media.starvation import STARVED_PERIODS, Patience
from gql_media.core.hls import HlsError
from gql_media.core.interpreters import start_interpreter
from gql_media.core.ports import MediaError

logger = logging.getLogger(__name__)

__all__ = [
    "STARVED_PERIODS",
    "Operation",
    "OperationTable",
    "Unreadable",
    "WorkerCrashed",
    "WorkerFailure",
    "WorkerPool",
    "WorkerSetup",
    "WorkerStarved",
    "serve_worker",
]

# An operation runs in a worker with the call's arguments (picklable) and returns a picklable value.
Operation: TypeAlias = Callable[..., object]
OperationTable: TypeAlias = Mapping[str, Operation]
# Run once in each worker before its first operation (log levels, niceness).
WorkerSetup: TypeAlias = Callable[[], None]
Reply: TypeAlias = tuple[str, Any]


class Unreadable(Exception):
    """Raised by an operation: the file cannot be read at all (gone, no permission), whatever it holds."""


class WorkerFailure(MediaError):
    """The call timed out or its worker crashed (the worker was replaced)."""


class WorkerCrashed(WorkerFailure):
    """The worker died during the call (the worker was replaced)."""


class WorkerStarved(WorkerFailure):
    """The call's worker got too little CPU (or waited on the disk) to answer within the wall cap.

    Not the file's fault: a caller must not record the file as broken. The worker was replaced.
    """


class _WorkerLost(Exception):
    """The worker died or was killed before it answered."""


# --------------------------------------------------------------------------------------------
# Worker side.


def explain_os_error(error: OSError) -> str:
    """A short reason for a failed file operation, as a user reads it."""
    if error.errno == errno.ENOSPC:
        return "disk full (no space left on device)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.EROFS:
        return "read-only file system"
    return error.strerror or str(error)


def _run(operations: OperationTable, operation: str, args: tuple[Any, ...]) -> Reply:
    try:
        function = operations[operation]
    except KeyError:
        return ("error", f"unknown media operation {operation!r}")
    try:
        return ("ok", function(*args))
    except Unreadable as error:
        return ("unreadable", str(error))
    except (MediaError, HlsError) as error:
        return ("error", str(error))
    except OSError as error:
        return ("error", explain_os_error(error))
    except Exception as error:  # a bug or an odd file: the worker itself stays healthy
        return ("error", f"{type(error).__name__}: {error}")


def _cpu_s() -> float:
    """This process's CPU time, its reaped children's included: ``/proc/<pid>/stat``'s utime+stime+cutime+cstime."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def serve_worker(request_fd: int, reply_fd: int) -> None:
    """A worker process's loop: its table first, then one request in, one reply out, until the pipe closes."""
    requests = Connection(request_fd, writable=False)
    replies = Connection(reply_fd, readable=False)
    try:
        operations, setup = pickle.loads(requests.recv_bytes())
    except (EOFError, OSError, KeyboardInterrupt):
        return
    if setup is not None:
        setup()
    try:
        replies.send(("ready", None, _cpu_s()))
    except (OSError, ValueError):
        return
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if request is None:
            return
        operation, args = request
        kind, value = _run(operations, operation, args)
        try:
            replies.send((kind, value, _cpu_s()))
        except (OSError, ValueError):
            return


# --------------------------------------------------------------------------------------------
# Server side.

# The worker is a fresh interpreter: no fork of a threaded server, no re-import of its main module.
_WORKER_CODE = "\n".join(
    (
        "import sys",
        "from gql_media.adapters.media.pool import serve_worker",
        "serve_worker(int(sys.argv[1]), int(sys.argv[2]))",
    )
)


# How long a fresh worker may take to import its table and run its setup (a loaded machine is slow).
_START_TIMEOUT_S = 120.0


class _Worker:
    """One worker process and its two pipes (requests in, replies out)."""

    def __init__(self, table: bytes) -> None:
        self.process, request_write, reply_read = start_interpreter(_WORKER_CODE)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)
        self.ready = False
        # The worker's CPU time (s) as of its last message: where the next call's CPU count starts.
        self.cpu_s: float | None = None
        # A table is a few hundred bytes (functions pickle by name): the pipe takes it at once.
        with contextlib.suppress(OSError):
            self.requests.send_bytes(table)

    async def wait_ready(self) -> None:
        """Wait until the worker has loaded its table and run its setup. Raises ``_WorkerLost``."""
        if self.ready:
            return
        try:
            kind, value = await self._receive(_START_TIMEOUT_S)
        except TimeoutError:
            raise _WorkerLost(f"the media worker did not start within {_START_TIMEOUT_S:g} s") from None
        if kind != "ready":
            raise _WorkerLost(f"the media worker did not start: {kind} {value}")
        self.ready = True

    async def request(self, operation: str, args: tuple[Any, ...], patience: Patience) -> Reply:
        """One call on a ready worker. Raises ``TimeoutError`` past its deadlines (``patience``), ``_WorkerLost``."""
        try:
            # Requests are a few hundred bytes: the pipe takes them without blocking.
            self.requests.send((operation, args))
        except (OSError, ValueError) as error:
            raise _WorkerLost("the media worker is gone") from error
        return await self._receive(patience.timeout_s, patience)

    async def _receive(self, timeout_s: float, patience: Patience | None = None) -> Reply:
        loop = asyncio.get_running_loop()
        fd = self.replies.fileno()
        # One future woken by the pipe (True) or by the period's deadline (False): the reply wakes
        # the call in one turn of the loop (asyncio.wait took two, and more objects, per call).
        waiter: asyncio.Future[bool] = loop.create_future()

        def wake(readable: bool) -> None:
            if not waiter.done():
                waiter.set_result(readable)

        loop.add_reader(fd, wake, True)
        try:
            while True:
                deadline = loop.call_later(timeout_s, wake, False)
                try:
                    readable = await waiter
                finally:
                    deadline.cancel()
                if readable:
                    break
                if patience is None or not patience.wait_more():
                    raise TimeoutError
                if patience.waited_periods == 1:
                    logger.info(
                        "media worker pid %s starved (%.2f cpu_s in %g s): waiting up to %g s more",
                        self.process.pid, patience.used_cpu_s, timeout_s, timeout_s * (patience.periods - 1),
                    )  # fmt: skip
                waiter = loop.create_future()  # the next period (``wake`` sees the new one)
        finally:
            loop.remove_reader(fd)
            waiter.cancel()
        try:
            kind, value, self.cpu_s = self.replies.recv()
        except (EOFError, OSError) as error:
            code = self.process.poll()
            detail = f" (exit code {code})" if code is not None else ""
            raise _WorkerLost(f"the media worker crashed{detail}") from error
        return kind, value

    def stop(self, kill: bool) -> None:
        """Blocking: ask (or force) the process to end, and reap it."""
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                self.requests.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(2.0)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5.0)
        self.requests.close()
        self.replies.close()


def _stop_all(workers: Sequence[_Worker]) -> None:
    for worker in workers:
        worker.stop(kill=False)


class WorkerPool:
    """``workers`` processes running the operations of ``operations``; every call times out.

    Args:
        operations: the table of what workers can run (module-level functions, sent by reference).
        workers: processes (and calls running at once).
        timeout_s: the default limit of one call: its first deadline and its CPU budget (cpu_s).
        setup: run once in each worker before its first call.
        starved_periods: a call whose worker is starved (see the module) waits up to this many
            periods of its timeout in wall time before it fails with ``WorkerStarved``.

    Use ``await pool.start()`` (the first call does it too) and ``await pool.aclose()``; ``await
    pool.wait_ready()`` before timing calls.

    Raises:
        pickle.PicklingError: a function of the table cannot be sent by reference (a lambda, a closure).
    """

    def __init__(
        self,
        operations: OperationTable,
        workers: int = 1,
        timeout_s: float = 60.0,
        setup: WorkerSetup | None = None,
        starved_periods: int = STARVED_PERIODS,
    ) -> None:
        self._table = pickle.dumps((dict(operations), setup))
        self._size = max(1, workers)
        self.timeout_s = timeout_s
        self.starved_periods = max(1, starved_periods)
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._start_lock = asyncio.Lock()
        self._closed = False
        # Workers replaced after a timeout or a crash: the pool's health, for logs and tests.
        self.replaced_workers = 0
        # Periods added to calls whose worker was starved at a deadline (for logs and tests).
        self.starved_waits = 0

    @property
    def workers(self) -> int:
        return self._size

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the current workers (for logs and tests)."""
        return sorted(worker.process.pid for worker in self._all)

    async def start(self) -> None:
        """Start the worker processes (the first call does it too)."""
        async with self._start_lock:
            if self._idle is not None:
                return
            if self._closed:
                raise MediaError("the media tool is closed")
            started = await asyncio.to_thread(self._start_workers)
            idle: asyncio.Queue[_Worker] = asyncio.Queue()
            for worker in started:
                self._all.add(worker)
                idle.put_nowait(worker)
            self._idle = idle
            logger.info("media workers started: %d", self._size)

    def _start_workers(self) -> list[_Worker]:
        return [_Worker(self._table) for _ in range(self._size)]

    async def wait_ready(self) -> None:
        """Start the workers (if not yet) and wait until every one has loaded its table.

        Raises:
            WorkerCrashed: a worker died while starting (the next call replaces it).
        """
        await self.start()
        idle = self._idle
        assert idle is not None
        # Every worker out of the queue: no call waits on the same pipe meanwhile.
        workers = [await idle.get() for _ in range(self._size)]
        try:
            outcomes = await asyncio.gather(*(worker.wait_ready() for worker in workers), return_exceptions=True)
        finally:
            for worker in workers:
                idle.put_nowait(worker)
        for outcome in outcomes:
            if isinstance(outcome, _WorkerLost):
                raise WorkerCrashed(str(outcome))
            if isinstance(outcome, BaseException):
                raise outcome

    async def aclose(self) -> None:
        """Stop every worker (a worker busy with a call is killed)."""
        self._closed = True
        workers, self._all = list(self._all), set()
        self._idle = None
        if workers:
            await asyncio.to_thread(_stop_all, workers)

    async def call(self, operation: str, *args: Any, timeout_s: float | None = None) -> Reply:
        """Run one operation; returns its (kind, value) reply. Raises ``WorkerFailure`` on timeout/crash."""
        if self._idle is None:
            await self.start()
        idle = self._idle
        assert idle is not None
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        worker = await idle.get()
        if worker.process.poll() is not None:
            # Died while idle (killed by the OOM killer or by hand): not the next file's fault.
            worker = await asyncio.shield(self._replace(worker))
        patience: Patience | None = None
        try:
            await worker.wait_ready()  # a worker's start is not the call's time
            patience = Patience(
                worker.process.pid, limit_s, self.starved_periods, self._count_starved_wait, start_cpu_s=worker.cpu_s
            )
            return await worker.request(operation, args, patience)
        except TimeoutError:
            worker = await self._replace(worker)
            waited_s = limit_s * (patience.waited_periods if patience is not None else 1)
            if patience is not None and patience.starved:
                raise WorkerStarved(
                    f"the media worker was starved: {patience.used_cpu_s:.2f} s of CPU in "
                    f"{waited_s:g} s (it was stopped; not the file's fault)"
                ) from None
            raise WorkerFailure(f"timed out after {waited_s:g} s (the media worker was stopped)") from None
        except _WorkerLost as error:
            worker = await self._replace(worker)
            raise WorkerCrashed(str(error)) from None
        except BaseException:
            # Cancelled mid-call: the worker's late reply would answer the next call. Replace it.
            worker = await asyncio.shield(self._replace(worker))
            raise
        finally:
            if not self._closed:
                idle.put_nowait(worker)

    def _count_starved_wait(self) -> None:
        self.starved_waits += 1

    async def _replace(self, worker: _Worker) -> _Worker:
        self.replaced_workers += 1
        self._all.discard(worker)
        logger.warning("replacing media worker pid %s", worker.process.pid)

        def restart() -> _Worker:
            worker.stop(kill=True)
            return _Worker(self._table)

        fresh = await asyncio.to_thread(restart)
        self._all.add(fresh)
        return fresh
