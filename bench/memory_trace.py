"""The soak's ``--trace-memory``: where a server's memory goes, sampled from inside it.

``python -m bench.memory_trace serve ...`` is ``python -m gql_media serve ...`` with a thread that,
every ``SAMPLE_EVERY_S`` from start-up, appends to ``memory.jsonl`` (in the directory
``BENCH_MEMORY_TRACE_DIR`` names) what holds the process's memory, by who allocated it:

- ``rss_mb`` and ``anon_mb`` (``/proc/self/smaps_rollup``): resident, and of it anonymous memory;
- ``malloc_used_mb``, ``malloc_free_mb``, ``malloc_mmap_mb`` (glibc's ``mallinfo2``, all arenas):
  what C code (SQLite, uvloop, the drivers, CPython's objects over 512 bytes) holds, what the
  allocator keeps freed inside its arenas (fragmentation, or a high-water mark not given back), and
  the big blocks it mmapped;
- ``sqlite_mb`` (``sqlite3_memory_used``): SQLite's own part of the first (page caches, schema,
  statements) across every connection;
- ``pymalloc_blocks``: CPython's small objects alive; every ``PYMALLOC_EVERY_S``, its arenas
  (``pymalloc_arenas_mb``: 1 MiB each, mmapped apart from glibc's, given back only when empty) and
  the bytes in use and free in them;
- ``threads``: a thread may take a malloc arena of its own;
- ``gc_enabled``, ``gc_young``: whether the cyclic GC may run, and the objects in its youngest
  generation (cyclic garbage waits there while collections are held off);
- ``traced_mb`` (with tracemalloc, from ``BENCH_MEMORY_TRACE_FIRST_S`` on: the soak's warm-up):
  the Python heap allocated since and still held. Every ``SNAPSHOT_EVERY_S`` a tracemalloc snapshot
  is dumped over ``last.tracemalloc`` and glibc's ``malloc_info`` (per arena) over ``malloc-info.xml``.

``BENCH_MEMORY_TRACE_PYTHON=0`` leaves tracemalloc off (the native figures cost a few system
calls every 5 s; tracing costs CPU and memory of its own, so a traced run's RSS is not the one
the goal judges).

Read beside the RSS: a Python heap that stays flat while the RSS steps up points below Python;
there, ``malloc_used`` growing points at C code keeping memory (SQLite's share is ``sqlite_mb``),
``malloc_free`` growing at the allocator keeping what was freed. One that grows with the RSS points
at a structure that keeps objects (``growth`` names the lines that allocated what is held).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DIR_ENV = "BENCH_MEMORY_TRACE_DIR"
FIRST_ENV = "BENCH_MEMORY_TRACE_FIRST_S"
PYTHON_ENV = "BENCH_MEMORY_TRACE_PYTHON"
FRAMES = 6
SAMPLE_EVERY_S = 5.0
SNAPSHOT_EVERY_S = 120.0
PYMALLOC_EVERY_S = 30.0  # sys._debugmallocstats walks every pool: a few ms
SNAPSHOT = "last.tracemalloc"
MALLOC_INFO = "malloc-info.xml"
SAMPLES = "memory.jsonl"
MB = 2**20
# The native figures ``growth`` compares at the warm-up's end and at the run's end.
FIGURES = ("rss_mb", "anon_mb", "malloc_used_mb", "malloc_free_mb", "malloc_mmap_mb", "sqlite_mb",
           "pymalloc_arenas_mb", "pymalloc_used_mb", "pymalloc_free_mb", "traced_mb")  # fmt: skip


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


class _Native:
    """glibc's and SQLite's own counters, through ctypes; a figure this libc or SQLite lacks is left out."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None)
        self._mallinfo2: Any = getattr(libc, "mallinfo2", None)
        if self._mallinfo2 is not None:
            self._mallinfo2.restype = _Mallinfo2
        self._malloc_info: Any = getattr(libc, "malloc_info", None)
        self._fopen: Any = libc.fopen
        self._fopen.restype = ctypes.c_void_p
        self._fclose: Any = libc.fclose
        self._fclose.argtypes = [ctypes.c_void_p]
        self._sqlite_used: Any = None
        import _sqlite3  # noqa: F401  (loads the SQLite library Python's sqlite3 and aiosqlite use)

        with contextlib.suppress(OSError, AttributeError):
            # The soname of the library _sqlite3 links: dlopen hands back the copy already loaded.
            self._sqlite_used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
            self._sqlite_used.restype = ctypes.c_int64

    def sample(self) -> dict[str, float]:
        figures: dict[str, float] = {}
        with contextlib.suppress(OSError):
            rollup = Path("/proc/self/smaps_rollup").read_text().splitlines()
            fields = {line.split(":")[0]: line.split()[1] for line in rollup[1:] if ":" in line}
            figures["rss_mb"] = round(int(fields["Rss"]) / 1024, 1)
            figures["anon_mb"] = round(int(fields["Anonymous"]) / 1024, 1)
        if self._mallinfo2 is not None:
            info = self._mallinfo2()
            figures["malloc_used_mb"] = round(info.uordblks / MB, 1)
            figures["malloc_free_mb"] = round(info.fordblks / MB, 1)
            figures["malloc_mmap_mb"] = round(info.hblkhd / MB, 1)
        if self._sqlite_used is not None:
            figures["sqlite_mb"] = round(self._sqlite_used() / MB, 1)
        figures["pymalloc_blocks"] = sys.getallocatedblocks()
        # The cyclic GC: whether it may run now, and the objects waiting in its youngest generation.
        figures["gc_enabled"] = int(gc.isenabled())
        figures["gc_young"] = gc.get_count()[0]
        with contextlib.suppress(OSError):
            figures["threads"] = len(os.listdir("/proc/self/task"))
        return figures

    @staticmethod
    def pymalloc(scratch: Path) -> dict[str, float]:
        """CPython's small-object allocator: its arenas (1 MiB each, given back only when empty), the
        bytes of live objects in them, and the bytes free in them (``sys._debugmallocstats``)."""
        # It prints to the C stderr: that is pointed at a file for the call (a server log line
        # written in that instant lands there too; debug only).
        saved = os.dup(2)
        try:
            with scratch.open("w+") as out:
                os.dup2(out.fileno(), 2)
                try:
                    sys._debugmallocstats()
                finally:
                    os.dup2(saved, 2)
                out.seek(0)
                text = out.read()
        finally:
            os.close(saved)
        figures: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition("=")
            number = value.strip().replace(",", "")
            if not number.isdigit():
                continue
            if name.startswith("# arenas allocated current"):
                figures["pymalloc_arenas_mb"] = int(number)  # 1 MiB each (64-bit CPython 3.10+)
            elif name.startswith("# bytes in allocated blocks"):
                figures["pymalloc_used_mb"] = round(int(number) / MB, 1)
            elif name.startswith("# bytes in available blocks"):
                figures["pymalloc_free_mb"] = round(int(number) / MB, 1)
        return figures

    def dump_malloc_info(self, path: Path) -> None:
        if self._malloc_info is None:
            return
        part = str(path) + ".part"
        stream = self._fopen(part.encode(), b"w")
        if stream:
            self._malloc_info(0, ctypes.c_void_p(stream))
            self._fclose(stream)
            os.replace(part, path)


def _record(directory: Path, first_s: float, trace_python: bool) -> None:
    # Tracing starts at the warm-up's end, not at start-up: the imports and the start-up sync run
    # at full speed, and what the heap holds at the end that was allocated since is the growth.
    native = _Native()
    started = time.monotonic()
    next_snapshot = started + first_s + SNAPSHOT_EVERY_S
    tracing = False
    next_pymalloc = started
    with (directory / SAMPLES).open("a") as out:
        while True:
            time.sleep(SAMPLE_EVERY_S)
            now = time.monotonic()
            if trace_python and not tracing and now - started >= first_s:
                tracemalloc.start(FRAMES)
                tracing = True
            sample: dict[str, Any] = {"at_s": round(now - started, 1), **native.sample()}
            if now >= next_pymalloc:
                next_pymalloc += PYMALLOC_EVERY_S
                sample |= native.pymalloc(directory / "debugmallocstats.txt")
            if tracing:
                traced, peak = tracemalloc.get_traced_memory()
                sample |= {"traced_mb": round(traced / MB, 1), "peak_mb": round(peak / MB, 1)}
            out.write(json.dumps(sample) + "\n")
            out.flush()
            if now >= next_snapshot:
                next_snapshot += SNAPSHOT_EVERY_S
                native.dump_malloc_info(directory / MALLOC_INFO)
                if tracing:
                    # Dumped to a temporary name first: the soak may read the snapshot while this writes it.
                    tracemalloc.take_snapshot().dump(str(directory / (SNAPSHOT + ".part")))
                    os.replace(directory / (SNAPSHOT + ".part"), directory / SNAPSHOT)


def _median(samples: Sequence[dict[str, Any]], name: str) -> float | None:
    values = [s[name] for s in samples if name in s]
    return round(statistics.median(values), 1) if values else None


def _slope(samples: Sequence[dict[str, Any]], name: str) -> float | None:
    points = [(s["at_s"], s[name]) for s in samples if name in s]
    if len(points) < 2:
        return None
    return round(statistics.linear_regression(*zip(*points, strict=True)).slope * 60, 3)


def growth(directory: Path, warm_up_s: float, window: int = 12, top: int = 15) -> dict[str, Any]:
    """Each figure at the warm-up's end and at the end (medians of ``window`` samples), its slope in
    MB/min after the warm-up, and what the Python heap held at the last snapshot, by line and by stack."""
    path = directory / SAMPLES
    if not path.exists():
        return {"error": f"no samples in {directory}"}
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    after = [s for s in samples if s["at_s"] >= warm_up_s] or samples[-1:]
    figures: dict[str, Any] = {}
    for name in FIGURES:
        first, last = _median(after[:window], name), _median(after[-window:], name)
        if first is not None and last is not None:
            figures[name] = {"at_warm_up": first, "at_end": last, "growth": round(last - first, 1),
                             "slope_mb_per_min": _slope(after, name)}  # fmt: skip
    result: dict[str, Any] = {"figures": figures, "series": samples[:: max(1, len(samples) // 60)]}
    snapshot_path = directory / SNAPSHOT
    if snapshot_path.exists():
        snapshot = tracemalloc.Snapshot.load(str(snapshot_path))
        snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        by_line = snapshot.statistics("lineno")[:top]
        by_stack = snapshot.statistics("traceback")[:5]
        result["lines"] = [{"kb": round(s.size / 1024), "blocks": s.count, "where": str(s.traceback[0])}
                           for s in by_line]  # fmt: skip
        result["stacks"] = [{"kb": round(s.size / 1024), "stack": [str(f) for f in s.traceback]} for s in by_stack]
    return result


def main() -> int:
    directory = Path(os.environ[DIR_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    first_s = float(os.environ.get(FIRST_ENV, "300"))
    trace_python = os.environ.get(PYTHON_ENV, "1") != "0"
    recorder = threading.Thread(target=_record, args=(directory, first_s, trace_python),
                                name="bench-memory-trace", daemon=True)  # fmt: skip
    recorder.start()
    from gql_media.cli import main as gql_media_main

    return gql_media_main(sys.argv[1:])


if __name__ == "__main__":  # a media worker re-imports this module under another name: it must not trace
    raise SystemExit(main())
