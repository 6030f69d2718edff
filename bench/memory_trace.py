"""The soak's ``--trace-memory``: a server under tracemalloc, and what its heap gained after the warm-up.

``python -m bench.memory_trace serve ...`` is ``python -m gql_media serve ...`` with tracemalloc
started at ``BENCH_MEMORY_TRACE_FIRST_S`` (the soak's warm-up) by a thread that then, every
``SAMPLE_EVERY_S``, appends the Python heap tracemalloc sees (``traced_mb``: what was allocated
since and is still held) to ``memory.jsonl`` in the directory ``BENCH_MEMORY_TRACE_DIR`` names,
and every ``SNAPSHOT_EVERY_S`` dumps a snapshot over ``last.tracemalloc``. Debug only, off unless
the soak asks: tracing costs CPU and memory of its own, so a traced run's RSS is not the one the
goal judges.

Read beside the RSS: a Python heap that stays flat while the RSS steps up points below Python
(the allocator keeping freed memory), one that grows with it points at a structure that keeps
objects (``growth`` names the lines that allocated what is held).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

DIR_ENV = "BENCH_MEMORY_TRACE_DIR"
FIRST_ENV = "BENCH_MEMORY_TRACE_FIRST_S"
FRAMES = 6
SAMPLE_EVERY_S = 5.0
SNAPSHOT_EVERY_S = 120.0
SNAPSHOT = "last.tracemalloc"


def _record(directory: Path, first_s: float) -> None:
    # Tracing starts at the warm-up's end, not at start-up: the imports and the start-up sync run
    # at full speed, and what the heap holds at the end that was allocated since is the growth.
    time.sleep(first_s)
    tracemalloc.start(FRAMES)
    started = time.monotonic()
    next_snapshot = started + SNAPSHOT_EVERY_S
    with (directory / "memory.jsonl").open("a") as out:
        while True:
            time.sleep(SAMPLE_EVERY_S)
            traced, peak = tracemalloc.get_traced_memory()
            now = time.monotonic()
            out.write(json.dumps({"at_s": round(first_s + now - started, 1), "traced_mb": round(traced / 2**20, 1),
                                  "peak_mb": round(peak / 2**20, 1)}) + "\n")  # fmt: skip
            out.flush()
            if now >= next_snapshot:
                next_snapshot += SNAPSHOT_EVERY_S
                # Dumped to a temporary name first: the soak may read the snapshot while this writes it.
                tracemalloc.take_snapshot().dump(str(directory / (SNAPSHOT + ".part")))
                os.replace(directory / (SNAPSHOT + ".part"), directory / SNAPSHOT)


def growth(directory: Path, top: int = 15) -> dict[str, Any]:
    """What the Python heap held at the last snapshot of what it allocated after the warm-up: by line, by stack."""
    path = directory / SNAPSHOT
    if not path.exists():
        return {"error": f"no snapshot in {directory}"}
    snapshot = tracemalloc.Snapshot.load(str(path)).filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    by_line = snapshot.statistics("lineno")[:top]
    by_stack = snapshot.statistics("traceback")[:5]
    samples = [json.loads(line) for line in (directory / "memory.jsonl").read_text().splitlines()]
    return {
        "traced_mb": [[s["at_s"], s["traced_mb"]] for s in samples[:: max(1, len(samples) // 60)]],
        "lines": [{"kb": round(s.size / 1024), "blocks": s.count, "where": str(s.traceback[0])} for s in by_line],
        "stacks": [{"kb": round(s.size / 1024), "stack": [str(f) for f in s.traceback]} for s in by_stack],
    }


def main() -> int:
    directory = Path(os.environ[DIR_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    recorder = threading.Thread(target=_record, args=(directory, float(os.environ.get(FIRST_ENV, "300"))),
                                name="bench-memory-trace", daemon=True)  # fmt: skip
    recorder.start()
    from gql_media.cli import main as gql_media_main

    return gql_media_main(sys.argv[1:])


if __name__ == "__main__":  # a media worker re-imports this module under another name: it must not trace
    raise SystemExit(main())
