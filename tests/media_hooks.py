"""Operations the tests register in a media tool's table, beside the production ones.

They run inside real worker processes (the pool sends them by reference, so they live in this
importable module): a worker that dies as a segfaulting decoder would, a decode that hangs, and
a merge that stalls after its remux while a gate file exists, as a slow disk would, so that a
timeout or a kill lands mid-merge.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from gql_media.adapters.media import MEDIA_OPERATIONS, OperationTable
from gql_media.adapters.media.probe import av_errors
from gql_media.adapters.media.remux import claimed_temp_file, publish_merge, remux_to
from gql_media.adapters.media.tool import probe_operation
from gql_media.core.hls import HlsPlaylist

# The merge stalls while the file named by this variable exists (workers inherit the environment).
MERGE_GATE_ENV = "GQL_MEDIA_TEST_MERGE_GATE"
# A stalled merge goes on after this long whatever the gate says: a forgotten gate ends.
_GATE_LIMIT_S = 120.0


def crash() -> None:
    """The worker dies as a segfaulting decoder would."""
    os._exit(70)


def sleep(seconds: float) -> None:
    """A decode that hangs."""
    time.sleep(seconds)


def spin(*_args: object) -> None:
    """A decoder caught in a loop: it burns CPU forever."""
    while True:
        pass


def stopped_probe(path: str | bytes) -> dict[str, Any]:
    """The production probe, run once the worker is continued: it stops itself first (SIGSTOP), as a
    worker that gets no CPU at all; the test continues it (SIGCONT) once the call's deadline passed."""
    os.kill(os.getpid(), signal.SIGSTOP)
    return probe_operation(path)


def wait_on_stopped_child() -> str:
    """A worker waiting (asleep on a pipe) for its own helper process, as a merge waits for its
    ``tail_demux`` helper; the helper stops itself until the test continues it."""
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSTOP); print('helped')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True).stdout.strip()


def niceness() -> int:
    """The worker's own niceness."""
    return os.nice(0)


def scheduling_policy() -> int:
    """The worker's scheduling policy (``os.SCHED_*``)."""
    return os.sched_getscheduler(0)


def failing_setup() -> None:
    """A worker that dies while starting, as one whose imports fail would."""
    os._exit(71)


def _wait_for_gate() -> None:
    gate = os.environ.get(MERGE_GATE_ENV)
    deadline = time.monotonic() + _GATE_LIMIT_S
    while gate and os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)


def gated_merge(playlist: HlsPlaylist, temp_path: str) -> str:
    """The production merge, stalled between its remux and its verify while the gate file exists."""
    with av_errors(), claimed_temp_file(temp_path):
        streams = remux_to(playlist, temp_path)
        _wait_for_gate()
        return publish_merge(playlist, temp_path, streams)


TEST_OPERATIONS: OperationTable = {
    **MEDIA_OPERATIONS,
    "test_crash": crash,
    "test_sleep": sleep,
    "test_niceness": niceness,
    "test_policy": scheduling_policy,
    "test_spin": spin,
    "test_wait_on_stopped_child": wait_on_stopped_child,
}
# A probe that waits stopped until the test continues its worker.
STOPPED_PROBE_OPERATIONS: OperationTable = {**MEDIA_OPERATIONS, "probe": stopped_probe}
# A probe that never ends, burning CPU.
SPINNING_PROBE_OPERATIONS: OperationTable = {**MEDIA_OPERATIONS, "probe": spin}
GATED_OPERATIONS: OperationTable = {**MEDIA_OPERATIONS, "merge": gated_merge}


def gated_split_merge(playlist: HlsPlaylist, temp_path: str) -> str:
    """The production merge with its second half demuxed by the worker's helper whatever the download's size
    and the machine's load, stalled between its remux and its verify while the gate file exists."""
    with av_errors(), claimed_temp_file(temp_path):
        streams = remux_to(playlist, temp_path, split_min_bytes=0, when_busy=True)
        _wait_for_gate()
        return publish_merge(playlist, temp_path, streams)


def tail_helper_pid() -> int | None:
    """The worker's merge helper process (``tail_demux``), if it has one alive."""
    from gql_media.adapters.media import remux

    helper = remux._helper
    return helper.pid if helper is not None and helper.alive else None


# Per merge whose helper failed: the packets the worker had muxed from it before the failure.
_PACKETS_BEFORE_FAILURE: list[int] = []


def helper_forkable() -> bool:
    """Whether the worker may fork its merge helper now (``tail_demux.fork_available``: one thread)."""
    from gql_media.adapters.media.tail_demux import fork_available

    return fork_available()


def fail_helper_midway(dies: bool = False) -> None:
    """The helper reports each packet it writes and fails at its sixth, as at a packet whose flags
    the shared memory does not carry (or ``dies`` there, as a crashing demuxer would); the worker
    has muxed some of its packets by then (the helper is forked at the next merge, with this in place)."""
    from gql_media.adapters.media import tail_demux

    tail_demux._REPORT_BYTES = 1
    write_packets = tail_demux._write_packets

    def cut(demux: Iterator[Any]) -> Iterator[Any]:
        for count, packet in enumerate(demux):
            if count == 5:
                if dies:
                    os._exit(1)
                raise tail_demux.TailUnavailable("a packet has flags the shared memory does not carry")
            yield packet

    def failing(streams: Any, demux: Iterator[Any], *rest: Any) -> int:
        return write_packets(streams, cut(demux), *rest)

    tail_demux._write_packets = failing
    packets = tail_demux.TailHelper.packets

    def counted(self: tail_demux.TailHelper, *args: Any) -> Iterator[Any]:
        given = 0
        try:
            for entry in packets(self, *args):
                given += 1
                yield entry
        except tail_demux.TailUnavailable:
            _PACKETS_BEFORE_FAILURE.append(given)
            raise

    tail_demux.TailHelper.packets = counted  # type: ignore[method-assign]


def packets_before_failure() -> list[int]:
    return _PACKETS_BEFORE_FAILURE


SPLIT_OPERATIONS: OperationTable = {
    **MEDIA_OPERATIONS,
    "merge": gated_split_merge,
    "tail_helper_pid": tail_helper_pid,
    "helper_forkable": helper_forkable,
    "fail_helper_midway": fail_helper_midway,
    "packets_before_failure": packets_before_failure,
}
