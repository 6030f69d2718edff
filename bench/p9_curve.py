"""P9's trade-off curve: the media workers' count and priority against the query p99 during a sync.

``python -m bench.p9_curve [--quick] [--reps N] [--workdir DIR]`` runs P9 (``bench.lag``) once per
configuration and repetition, the configurations alternating within each repetition (a machine
whose load drifts shifts them all alike), each in a process of its own with the server's settings
from the environment (``GQL_MEDIA_MEDIA_WORKERS``, ``_MEDIA_WORKER_NICE``, ``_MEDIA_WORKER_IDLE``).
It prints, per configuration, the medians of P9's ratio (query p99 during the sync / idle), the
max loop lag, both p99s and the sync's duration: its thumbnails and probes are the media work,
so a longer sync is the media work's share going down. P6 (thumbnails alone, no queries) does
not depend on the priority on a machine with nothing else to run; its N/1 is the worker count's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measures import FULL, QUICK, Bench

CONFIGURATIONS: tuple[tuple[str, dict[str, str]], ...] = tuple(
    (f"{workers} worker{'s' * (workers > 1)}, {priority}",
     {"GQL_MEDIA_MEDIA_WORKERS": str(workers), "GQL_MEDIA_MEDIA_WORKER_NICE": nice,
      "GQL_MEDIA_MEDIA_WORKER_IDLE": idle})
    for workers in (1, 2)
    for priority, nice, idle in (("nice 10", "10", "false"), ("nice 19", "19", "false"), ("idle", "10", "true"))
)  # fmt: skip


def _one(workdir: Path, quick: bool) -> dict[str, Any]:
    from bench.lag import measure_p9

    row = measure_p9(Bench(workdir, QUICK if quick else FULL, lambda _line: None))
    return row.to_json()


def _run(workdir: Path, quick: bool, env: dict[str, str]) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "bench.p9_curve", "--one", "--workdir", str(workdir)]
    done = subprocess.run(command + (["--quick"] if quick else []), env=os.environ | env, capture_output=True,
                          text=True, check=False, timeout=1200)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"  failed ({done.returncode}): {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.p9_curve", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="P9's quick sizes")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every configuration")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gql_media_bench")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # one P9 run, as JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.workdir, args.quick)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _env in CONFIGURATIONS}
    for rep in range(args.reps):
        for name, env in CONFIGURATIONS:
            result = _run(args.workdir, args.quick, env)
            if result is not None:
                results[name].append(result)
                print(f"rep {rep + 1} {name}: ratio {result['ratio']:.2f}, max lag {result['max_lag_ms']} ms, "
                      f"p99 {result['query_p99_sync_ms']} / {result['query_p99_idle_ms']} ms, "
                      f"sync {result['sync_s']} s, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    print(f"{'configuration':18} {'ratio':>6} {'max lag ms':>10} {'p99 sync ms':>11} {'p99 idle ms':>11} {'sync s':>7}")
    for name, runs in results.items():
        if not runs:
            continue

        def median(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(float(run[key]) for run in runs)

        print(f"{name:18} {median('ratio'):6.2f} {median('max_lag_ms'):10.1f} {median('query_p99_sync_ms'):11.1f} "
              f"{median('query_p99_idle_ms'):11.1f} {median('sync_s'):7.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
