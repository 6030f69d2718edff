"""Whether a media call past its timeout may wait more: its worker was starved, not hung.

The pool's workers run at a low priority (nice 10, SCHED_IDLE): on a busy machine a worker can
wait a minute for a CPU, and a probe past its timeout marks a good file BROKEN. At a call's
deadline ``Patience`` reads the worker's CPU time (``utime + stime``, all its threads) and its
threads' states from ``/proc``. A worker that used less CPU than the timeout and has a thread
runnable (``R``: waiting for a CPU), in disk wait (``D``) or stopped (``T``) is starved: the call
waits one more period, up to ``periods`` periods of wall time. The worker's live child processes
(a merge's ``tail_demux`` helper) count with it. Otherwise it is hung as before: it
burned its CPU budget (a decoder loop) or waits on something else (a sleep, a pipe, a FIFO: ``S``).
Where ``/proc`` is missing (not Linux) the first deadline is the limit, as before. The CPU count
starts from the worker's own figure in its last reply (``pool``): ``/proc`` is read at deadlines
only, not on every call of the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["STARVED_PERIODS", "Patience"]

# A call whose worker was starved at its deadline waits one more timeout period, up to this many
# periods of wall time in all (the default of ``WorkerPool(starved_periods=...)``).
STARVED_PERIODS = 10
# Thread states of a worker that waits for the machine, not for its operation: runnable but not
# running (a CPU), uninterruptible disk wait, stopped (by a signal or a debugger).
_STARVED_STATES = frozenset(b"RDTt")
_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _Usage:
    """A worker's CPU time so far (all its threads) and whether a thread waits for the machine."""

    __slots__ = ("cpu_s", "waiting")

    def __init__(self, cpu_s: float, waiting: bool) -> None:
        self.cpu_s = cpu_s
        self.waiting = waiting


def _stat_fields(raw: bytes) -> list[bytes]:
    # /proc/<pid>/stat: "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return raw[raw.rindex(b")") + 2 :].split()


def _read_stat(path: str) -> list[bytes] | None:
    try:
        with open(path, "rb") as stat:
            return _stat_fields(stat.read())
    except (OSError, ValueError):
        return None  # gone meanwhile


def _child_pids(pid: int) -> list[int]:
    # A merge's worker waits on its helper process (``tail_demux``): the helper's CPU and state count.
    pids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                pids.extend(int(child) for child in children.read().split())
        except OSError:
            continue  # the thread ended meanwhile, or a kernel without the children file
    return pids


def _read_usage(pid: int) -> _Usage | None:
    """The worker's usage from ``/proc``, its live child processes included; None where there is no
    ``/proc`` or the worker is gone."""
    fields = _read_stat(f"/proc/{pid}/stat")
    if fields is None:
        return None
    try:
        # utime, stime, cutime, cstime: fields 14-17 of the line, 12th-15th after comm (a child's
        # CPU moves from its own fields to the worker's cutime/cstime when it is reaped).
        ticks = sum(int(field) for field in fields[11:15])
        waiting = fields[0][0] in _STARVED_STATES
        # The main thread may sleep while its decoding threads, or its helper, wait for a CPU.
        for task in os.listdir(f"/proc/{pid}/task"):
            task_fields = _read_stat(f"/proc/{pid}/task/{task}/stat")
            waiting = waiting or (task_fields is not None and task_fields[0][0] in _STARVED_STATES)
        for child in _child_pids(pid):
            child_fields = _read_stat(f"/proc/{child}/stat")
            if child_fields is not None:
                ticks += int(child_fields[11]) + int(child_fields[12])
                waiting = waiting or child_fields[0][0] in _STARVED_STATES
    except (OSError, ValueError, IndexError):
        return None
    return _Usage(ticks / _CLOCK_TICKS_PER_S, waiting)


class Patience:
    """Whether one call past a deadline may wait one more period: its worker was starved, not hung.

    Args:
        pid: the worker's process.
        timeout_s: both the period and the call's CPU budget (in cpu_s).
        periods: the call's wall cap, in periods.
        on_wait: called each time the call is given one more period.
        start_cpu_s: the worker's CPU time (utime + stime + cutime + cstime, s) at the call's start,
            as it reported it; None: read from ``/proc`` now.
    """

    def __init__(
        self,
        pid: int,
        timeout_s: float,
        periods: int,
        on_wait: Callable[[], None],
        start_cpu_s: float | None = None,
    ) -> None:
        self.pid = pid
        self.on_wait = on_wait
        self.timeout_s = timeout_s
        self.periods = periods
        self.start = _read_usage(pid) if start_cpu_s is None else _Usage(start_cpu_s, False)
        self.waited_periods = 0
        # At the last deadline: starved (not the operation's fault), and the CPU it had used.
        self.starved = False
        self.used_cpu_s = 0.0

    def wait_more(self) -> bool:
        """Called at each deadline: True to wait one more period."""
        self.waited_periods += 1
        self.starved = False
        if self.start is None:
            return False  # no /proc: as before, the timeout is the limit
        now = _read_usage(self.pid)
        if now is None:
            return False
        self.used_cpu_s = now.cpu_s - self.start.cpu_s
        if self.used_cpu_s >= self.timeout_s or not now.waiting:
            return False  # a decoder loop burned its budget, or it waits on something else: hung
        self.starved = True
        if self.waited_periods >= self.periods:
            return False
        self.on_wait()
        return True
