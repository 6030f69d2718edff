"""Most of a one-track MPEG-TS download demuxed by a helper process, its packets muxed by the merge as they come.

A merge's CPU is FFmpeg's TS demux (its H.264 parser scans every byte) and MP4 mux, on one
thread. Two threads of one process cannot share it (the GIL changes hands several times a packet:
more CPU and a longer wall, measured), nor can a pipeline of two processes (a child demuxing
every packet into a pipe cost as much CPU as the whole remux, measured). Here the merge's own
process demuxes and muxes the segments before ``start`` while a helper demuxes the segments from
``start`` on into shared memory (each packet's header, side data and bytes, copied once),
reporting over its pipe what it wrote every ``_REPORT_BYTES``. Once done with its own segments,
the merge muxes the helper's packets straight from that memory (no copy) as they are reported,
through the same clock and checks as its own (``remux``): the merged file is the one a single
process makes (tested byte for byte). The mux is the longer half of the work (FFmpeg's MP4 muxer
scans every H.264 byte again to write length-prefixed NAL units), so the helper takes most of
the segments and the merge muxes while the helper demuxes: 60 s 720p, per merge, the worker's
CPU then runs beside the helper's instead of after it (perf and CPU time in the commit).

MPEG-TS segments start afresh (HLS has each begin with its tables and a key frame), so a demuxer
opened at ``start`` gives the packets one opened at the first segment gives from there.

The helper (``TailHelper``) is a fork of the media worker, made at its first such merge and kept:
a fork per merge cost more than it gained, the parent paying a copy-on-write fault for each page
it wrote while the child lived (measured: +10 ms of CPU for a 60 s 720p remux). It:
- is only forked from a process with one thread (a media worker): a fork of a threaded process
  may inherit a lock another thread held;
- never writes a file, ends with ``os._exit`` (none of the parent's clean-up runs twice), and
  dies with its parent (``PR_SET_PDEATHSIG``, and the end of its request pipe): a worker killed
  mid-merge leaves no process;
- keeps its shared memory mapped, in both processes, between requests, and its first
  ``KEPT_MEMORY_BYTES`` filled (the rest is emptied after each merge): a memory file emptied after
  each merge cost a page fault and a zeroed page for each 4 KB, in the helper as it wrote and in
  the worker as it mapped (measured, 60 s 720p: about 30% of the helper's CPU and 7% of the worker's).

Whatever the helper cannot give exactly (a stream layout other than the parent's, a packet flag
other than key frame, more bytes than the memory holds, any error) it reports, and the caller
merges in one process instead (``TailUnavailable``, before its first packet or after some: the
temp file is then written afresh), so a damaged segment is named by that run.

Past 400 lines, kept whole: the worker's side and the helper's side of one protocol (the record
layout, the reports, the memory file's life) change together.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import functools
import mmap
import os
import pickle
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from av.packet import Packet, PacketSideData, packet_sidedata_type_from_literal

__all__ = ["TailHelper", "TailOpener", "TailUnavailable", "fork_available", "segment_finder", "tail_start"]

# What the helper opens for a request (in the helper): the streams to demux, their packets in
# order, and the track's segment holding a byte position.
TailOpener = Callable[[Any, int, contextlib.ExitStack], tuple[Sequence[Any], Iterator[Any], Callable[[int], int]]]

# A packet's record in the shared memory: its stream (position among the demuxed streams), pts,
# dts, duration, key frame flag, segment (-1: no byte position), side data bytes, data bytes.
_RECORD = struct.Struct("<iqqqiiII")
_SIDE = struct.Struct("<iI")
_LENGTH = struct.Struct("<Q")
_NO_VALUE = -(1 << 63)  # FFmpeg's AV_NOPTS_VALUE
# Side data only FFmpeg's MPEG-TS muxer reads (the PES stream id the TS demuxer puts on every
# packet), by its name in FFmpeg (``av_packet_side_data_name``: "MPEGTS Stream ID").
_TS_ONLY_SIDE_DATA_NAME = PacketSideData(packet_sidedata_type_from_literal("mpegts_stream_id"), 0).data_desc  # type: ignore[call-arg]
# Shared memory per byte of the helper's segments: the packets' bytes are fewer than the
# segments' (TS headers), and there is a record per 188-byte TS packet at most.
_MEMORY_PER_BYTE = 1 + _RECORD.size / 188
_MEMORY_SLACK_BYTES = 1 << 20
# What the memory file keeps filled between merges: a download of up to about twice this is
# demuxed into pages already there; an idle worker holds this much shared memory at most.
KEPT_MEMORY_BYTES = 32 << 20
# The helper reports what it wrote after each this many bytes (about 64 packets of 720p): the
# parent muxes them meanwhile. A report is a pipe write; a merge's stay far below a pipe's buffer.
_REPORT_BYTES = 256 << 10
_PR_SET_PDEATHSIG = 1
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2


def _fallocate() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    function.restype = ctypes.c_int
    return function


_FALLOCATE = _fallocate() if sys.platform.startswith("linux") else None


_Owner = TypeVar("_Owner")


class TailUnavailable(Exception):
    """The helper could not give its segments' packets exactly: merge in one process."""


def fork_available() -> bool:
    """Whether a helper may be forked here (Linux, and this process runs one thread)."""
    return sys.platform.startswith("linux") and hasattr(os, "memfd_create") and threading.active_count() == 1


def cpu_busy(limit_percent: float = 90.0) -> bool:
    """Whether runnable tasks waited for a CPU ``limit_percent`` of the last 10 s or more (Linux PSI).

    A helper needs a free core: on a saturated machine (this one with seven sessions: 97-99%) it
    only adds its CPU (about what it saves this process, plus its copy) and the merge ends later.
    The limit is high because the 10 s average trails: a quiet machine just out of a burst (an
    encode, a thumbnail run) still reads tens of percent. Unknown (no PSI): not busy.
    """
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as handle:
            some = handle.readline().split()
        return float(some[1].partition("=")[2]) >= limit_percent
    except (OSError, IndexError, ValueError):
        return False


def tail_start(sizes: Sequence[int], min_bytes: int, max_tail_bytes: int, share: float) -> int | None:
    """The segment the helper starts at (``share`` of the bytes from it on, ``max_tail_bytes`` at most); None: none."""
    total = sum(sizes)
    if len(sizes) < 2 or total < min_bytes:
        return None
    wanted = min(total * share, max_tail_bytes)
    # The segment boundary nearest the wanted share (the helper's bytes: from ``index`` on).
    best, best_gap, tail = None, float("inf"), total
    for index, size in enumerate(sizes):
        if index > 0 and abs(tail - wanted) < best_gap and tail <= max_tail_bytes:
            best, best_gap = index, abs(tail - wanted)
        tail -= size
    return best


def segment_finder(boundaries: list[int], first_piece: int, first_segment: int) -> Callable[[int], int]:
    """The track's segment holding a byte position of a reader whose piece ``first_piece`` is ``first_segment``."""

    def segment_of(position: int) -> int:
        return bisect.bisect_right(boundaries, position) - 1 - first_piece + first_segment

    return segment_of


class TailHelper:
    """A forked process that demuxes a track's tail into shared memory on request, one request at a time."""

    def __init__(self, opener: TailOpener) -> None:
        self._memory_fd = os.memfd_create("gql-media-merge-tail", os.MFD_CLOEXEC)
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(request_write)
            os.close(reply_read)
            _serve(opener, request_read, reply_write, self._memory_fd)
        os.close(request_read)
        os.close(reply_write)
        self._requests = request_write
        self._replies = reply_read
        self._busy = False
        self._alive = True
        self._memory: mmap.mmap | None = None  # the memory file mapped here, kept across requests
        self._capacity = 0  # the memory the current request may fill

    @property
    def alive(self) -> bool:
        if self._alive:
            with contextlib.suppress(ChildProcessError):
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
                self._alive = pid == 0
        return self._alive

    def start(self, track: Any, start: int, tail_bytes: int) -> None:
        """Ask for the packets of ``track`` from segment ``start`` on; returns at once.

        The caller may ask before it opens its own segments (the helper opens its own meanwhile):
        the streams the helper finds come first, and ``packets`` checks them against the caller's.
        """
        capacity = int(tail_bytes * _MEMORY_PER_BYTE) + _MEMORY_SLACK_BYTES
        if os.fstat(self._memory_fd).st_size < capacity:  # never shrunk: an old mapping must not fault
            os.ftruncate(self._memory_fd, capacity)
        _send(self._requests, pickle.dumps((track, start, capacity)))
        self._busy = True
        self._capacity = capacity

    def packets(self, streams: Sequence[Any], owner: _Owner, first: int) -> Iterator[tuple[_Owner, Packet, int]]:  # type: ignore[type-arg]
        """Yield ``(owner, packet, first + its segment or -1)`` in demux order, ``streams`` as the parent's,
        as the helper writes them (the caller's own entries: no generator of its own per packet).

        Raises ``TailUnavailable`` if the helper cannot give them all exactly (before the first
        packet or after any): the caller then merges in one process, its output written afresh.
        """
        # The packets below refer to this memory (no copy), which lives as long as the last of them;
        # the helper writes only past what it reported.
        # No MADV_POPULATE_READ: it walked every page's table entry each merge (4% of this process's
        # CPU in perf), while the pages of the kept mapping fault in once (16 at a time) and stay.
        self._check_streams([(stream.type, stream.codec_context.name) for stream in streams])
        view = memoryview(self._mapped(self._capacity))
        time_bases = [stream.time_base for stream in streams]
        unpack = _RECORD.unpack_from
        record_size = _RECORD.size
        offset = available = 0
        done = False
        while True:
            if offset >= available:
                if done:
                    return
                available, done = self._progress()
                continue
            index, pts, dts, duration, key, segment, side_size, size = unpack(view, offset)
            offset += record_size
            side = view[offset : offset + side_size] if side_size else None
            offset += side_size
            packet = Packet(view[offset : offset + size])  # type: ignore[arg-type]
            offset += size
            packet.stream = streams[index]
            packet.time_base = time_bases[index]
            packet.pts = pts
            packet.dts = dts
            packet.duration = duration
            if key:
                packet.is_keyframe = True
            if side is not None:
                _attach_side_data(packet, side)
            yield owner, packet, first + segment if segment >= 0 else -1

    def _check_streams(self, layout: list[tuple[str, str]]) -> None:
        """The helper's first reply: the streams it found (as ``layout``), or why it cannot give any."""
        found = self._reply()
        if found[0] != "streams":
            self._busy = False  # a final reply: the helper waits for its next request
            raise TailUnavailable(str(found[1]))
        if found[1] != layout:  # the helper demuxes on: it is stopped, not reused (``busy``)
            raise TailUnavailable(f"the helper's segments hold streams {found[1]}, not {layout}")

    def _reply(self) -> tuple[str, Any]:
        reply = _receive(self._replies)
        if reply is None:
            self._busy = False
            self.stop()
            raise TailUnavailable("the merge's demuxing helper died")
        kind, value = pickle.loads(reply)
        return str(kind), value

    def _progress(self) -> tuple[int, bool]:
        """Wait for the helper's next report: the bytes of whole records written so far, and whether that is all."""
        kind, value = self._reply()
        if kind == "more":
            return int(value), False
        self._busy = False
        if kind != "ok":
            raise TailUnavailable(str(value))
        return int(value), True

    def _mapped(self, length: int) -> mmap.mmap:
        """The memory file mapped here, at least ``length`` bytes (mapped once, again only when it grew)."""
        if self._memory is None or len(self._memory) < length:
            # A mapping replaced here closes when the last packet made from it goes.
            self._memory = mmap.mmap(self._memory_fd, os.fstat(self._memory_fd).st_size, flags=mmap.MAP_SHARED)
        return self._memory

    def release(self) -> None:
        """After a merge: free the memory file's pages past ``KEPT_MEMORY_BYTES`` (a hole reads zeros, never faults)."""
        if self._memory_fd < 0:
            return  # stopped: the descriptor's number may be another file's by now
        size = os.fstat(self._memory_fd).st_size
        if size > KEPT_MEMORY_BYTES and _FALLOCATE is not None:
            hole = size - KEPT_MEMORY_BYTES
            _FALLOCATE(self._memory_fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, KEPT_MEMORY_BYTES, hole)

    def stop(self) -> None:
        """End the helper (a helper mid-request is killed) and let go of its pipes and memory."""
        if self._alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self._alive = False
        self._memory = None  # unmapped once the last packet made from it goes
        for fd in (self._requests, self._replies, self._memory_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        # Closed once: a second stop (or a release) must not reach a file that took these numbers.
        self._requests = self._replies = self._memory_fd = -1

    @property
    def busy(self) -> bool:
        """A request was made and its reply not read (the helper must be stopped, not reused)."""
        return self._busy


def _send(fd: int, data: bytes) -> None:
    data = _LENGTH.pack(len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def _receive(fd: int) -> bytes | None:
    def exactly(size: int) -> bytes | None:
        chunks, left = [], size
        while left:
            chunk = os.read(fd, left)
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    prefix = exactly(_LENGTH.size)
    return None if prefix is None else exactly(_LENGTH.unpack(prefix)[0])


def _attach_side_data(packet: Packet, side: memoryview) -> None:  # type: ignore[type-arg]
    offset = 0
    while offset < len(side):
        dtype, size = _SIDE.unpack_from(side, offset)
        offset += _SIDE.size
        item = PacketSideData(dtype, size)  # type: ignore[call-arg]
        memoryview(item)[:] = side[offset : offset + size]
        offset += size
        packet.set_sidedata(item, move=True)


# --------------------------------------------------------------------------------------------
# The helper.


def _serve(opener: TailOpener, requests: int, replies: int, memory_fd: int) -> NoReturn:
    try:
        _die_with_parent()
        # None of the worker's descriptors (its pool pipes, open files) stays open through the helper.
        keep = sorted({0, 1, 2, requests, replies, memory_fd})
        for low, high in zip(keep, [*keep[1:], os.sysconf("SC_OPEN_MAX")], strict=True):
            os.closerange(low + 1, high)
        memory: mmap.mmap | None = None  # kept across requests: its pages stay in the page table
        while (request := _receive(requests)) is not None:
            track, start, capacity = pickle.loads(request)
            reply: tuple[str, object]
            try:
                if memory is None or len(memory) < capacity:
                    if memory is not None:
                        memory.close()
                    memory = mmap.mmap(memory_fd, os.fstat(memory_fd).st_size, flags=mmap.MAP_SHARED)
                report = functools.partial(_report, replies)
                reply = ("ok", _demux_into(opener, track, start, memory, capacity, report, replies))
            except TailUnavailable as error:
                reply = ("unavailable", str(error))
            except BaseException as error:  # the one-process run names the failure
                reply = ("failed", f"{type(error).__name__}: {error}")
            _send(replies, pickle.dumps(reply))
    finally:
        os._exit(0)  # never back into the parent's stack


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the prctl
        os._exit(0)


def _report(replies: int, length: int) -> None:
    _send(replies, pickle.dumps(("more", length)))


def _demux_into(
    opener: TailOpener,
    track: Any,
    start: int,
    memory: mmap.mmap,
    capacity: int,
    report: Callable[[int], None],
    replies: int,
) -> int:
    with contextlib.ExitStack() as stack:
        streams, demux, segment_of = opener(track, start, stack)
        _send(replies, pickle.dumps(("streams", [(s.type, s.codec_context.name) for s in streams])))
        return _write_packets(streams, demux, segment_of, memory, capacity, report)


def _write_packets(
    streams: Sequence[Any],
    demux: Iterator[Any],
    segment_of: Callable[[int], int],
    memory: mmap.mmap,
    capacity: int,
    report: Callable[[int], None],
) -> int:
    """Write the packets' records into ``memory``; ``report`` the length of what is whole every so often.

    The helper's one loop per packet (its Python was a fifth of its CPU): each PyAV property read
    once, side data told apart by its C name (``data_desc``: ``data_type`` costs a ``typing``
    lookup per item, 0.3 us a packet, nearly all of which carry the PES stream id).
    """
    positions = {stream.index: position for position, stream in enumerate(streams)}
    pack_into = _RECORD.pack_into
    record_size = _RECORD.size
    offset = 0
    next_report = _REPORT_BYTES
    for packet in demux:
        # Inline, like ``remux._copy_packets``' own check (a shared function: a call per packet).
        dts, pts = packet.dts, packet.pts
        if dts is None:
            if pts is None:
                continue  # the demuxer's end-of-stream packets
            dts = _NO_VALUE
        elif pts is None:
            pts = _NO_VALUE
        if packet.is_discard or packet.is_corrupt or packet.is_disposable:
            raise TailUnavailable("a packet has flags the shared memory does not carry")
        side = b""
        for item in packet.iter_sidedata():
            if item.data_desc != _TS_ONLY_SIDE_DATA_NAME:
                side += _SIDE.pack(packet_sidedata_type_from_literal(item.data_type), item.data_size) + bytes(item)
        data = memoryview(packet)
        size = len(data)
        start = offset + record_size + len(side)
        end = start + size
        if end > capacity:
            raise TailUnavailable("the helper's packets do not fit the shared memory")
        position = packet.pos
        duration = packet.duration
        pack_into(
            memory,
            offset,
            positions[packet.stream_index],
            pts,
            dts,
            _NO_VALUE if duration is None else duration,
            packet.is_keyframe,
            segment_of(position) if position is not None and position >= 0 else -1,
            len(side),
            size,
        )
        if side:
            memory[start - len(side) : start] = side
        memory[start:end] = data
        offset = end
        if offset >= next_report:
            report(offset)
            next_report = offset + _REPORT_BYTES
    return offset
