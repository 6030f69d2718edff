"""``python -m bench.profile P1|P2|P3 [--quick]``: one sync of a bench library under pyinstrument.

pyinstrument samples the event loop's thread; work sent to threads shows up as the await on it,
so the thread-side functions (walk, diff, plan) are also timed on their own with ``--threads``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pyinstrument import Profiler
from rich.console import Console

from bench.measures import FULL, QUICK, Bench, _settings, _sync
from gql_media.core.models import SyncTarget
from gql_media.services import open_services


async def _profile(bench: Bench, measure: str, profiler: Profiler) -> float:
    library = bench.main_library()
    async with open_services(_settings(library, bench.fresh_data_dir(f"profile-{measure}")), media=False) as services:
        target = SyncTarget(str(library.root))
        if measure == "P1":
            profiler.start()
            started = time.perf_counter()
            await _sync(services, target)
        else:
            await _sync(services, target)
            if measure == "P3":
                folder = library.folder(3)
                (folder / "profiled.mp4").write_bytes(b"")
                target = SyncTarget(str(folder), False)
            profiler.start()
            started = time.perf_counter()
            try:
                await _sync(services, target)
            finally:
                (library.folder(3) / "profiled.mp4").unlink(missing_ok=True)
        elapsed = time.perf_counter() - started
        profiler.stop()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("measure", choices=["P1", "P2", "P3"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()
    console = Console()
    workdir = Path(tempfile.gettempdir()) / "gql_media_bench"
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(workdir, QUICK if args.quick else FULL, lambda message: console.log(message))
    profiler = Profiler(interval=0.001, async_mode="disabled")
    elapsed = asyncio.run(_profile(bench, args.measure, profiler))
    console.print(profiler.output_text(unicode=True, color=False, show_all=False))
    console.print(f"{args.measure}: {elapsed:.3f} s")
    if args.html:
        args.html.write_text(profiler.output_html())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
