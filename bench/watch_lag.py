"""Issue 18: the event loop's lag while the native watch takes a new folder, in a tree of 20,000 folders.

``python -m bench.watch_lag [--folders 20000] [--reps 5] [--workdir /tmp/gqlb-<branch>]``

Before: every batch that brings a new folder builds the whole watch again, holding the GIL
(``side_max_folders=0``, what the watcher did until then). After: the new folder goes into the small
side watch (the default). Each rep opens a real ``WatchfilesSource`` over the tree (not measured),
then a lag probe runs on the event loop while a folder is made and, once the source reported it, a
file written in it, until the source reported the file. Before and after alternate, rep by rep.

A second table times the build of a watch over N folders, in the process's CPU time (the GIL is
held all along): what a new folder costs the server when the whole watch is built again, when the
side watch is, and when the side watch is merged at its bound.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.library import make_library
from gql_media.adapters.folder_watch import folders_under, native_watch
from gql_media.adapters.watcher import PathFilter, WatchfilesSource, WatchOptions

VARIANTS = (("before (whole watch)", 0), ("after (side watch)", WatchOptions().side_max_folders))


async def _probe(lags_s: list[float], interval_s: float = 0.005) -> None:
    """How late a short sleep wakes up, sampled all along."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval_s)
        lags_s.append(time.perf_counter() - started - interval_s)


async def _until_reported(source: WatchfilesSource, path: Path) -> None:
    async with asyncio.timeout(60):
        async for batch in source:
            if any(change.path == str(path) for change in batch):
                return


async def _rep(root: Path, side_max_folders: int, name: str) -> tuple[float, float]:
    """The event loop's worst lag (s) and the time (s) from mkdir to the new folder's file reported."""
    options = WatchOptions(side_max_folders=side_max_folders)
    source = WatchfilesSource([str(root)], path_filter=PathFilter([str(root)]), options=options)
    folder = root / name
    await source.open()
    lags_s: list[float] = []
    probe = asyncio.create_task(_probe(lags_s))
    try:
        await asyncio.sleep(0.2)  # the probe running before the change
        started = time.perf_counter()
        folder.mkdir()
        await _until_reported(source, folder)
        (folder / "clip.mp4").write_bytes(b"v")
        await _until_reported(source, folder / "clip.mp4")
        elapsed_s = time.perf_counter() - started
    finally:
        probe.cancel()
        await source.aclose()
        shutil.rmtree(folder, ignore_errors=True)
    return max(lags_s), elapsed_s


def _build_cpu_s(folders: list[str]) -> float:
    started = time.process_time()
    notify = native_watch(folders, 300)
    spent = time.process_time() - started
    notify.close()
    return spent


async def _main(folders: int, reps: int, workdir: Path) -> None:
    library = await asyncio.to_thread(make_library, workdir / "watch-lag-tree", 0, folders)
    all_folders = await asyncio.to_thread(folders_under, [str(library.root)], lambda: False)
    print(f"tree: {len(all_folders)} folders under {library.root}")
    results: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in VARIANTS}
    print(f"{'rep':>3}  {'variant':<22} {'max loop lag':>13} {'mkdir to file reported':>23}")
    for rep in range(reps):
        order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
        for label, side_max in order:
            lag_s, elapsed_s = await _rep(library.root, side_max, f"new-{rep}-{side_max}")
            results[label].append((lag_s, elapsed_s))
            print(f"{rep:>3}  {label:<22} {lag_s * 1000:>10.1f} ms {elapsed_s * 1000:>20.0f} ms")
    medians = {label: statistics.median(lag for lag, _ in rows) for label, rows in results.items()}
    (before_label, _), (after_label, _) = VARIANTS
    print(
        f"median max loop lag: before {medians[before_label] * 1000:.1f} ms, after {medians[after_label] * 1000:.1f} ms"
        f" ({medians[before_label] / max(medians[after_label], 1e-6):.0f}x less)"
    )
    print("\nbuild of a watch over N folders (process CPU time, GIL held), alternating, median of reps:")
    sizes = sorted({1, min(WatchOptions().side_max_folders, len(all_folders)), len(all_folders)})
    spent: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(reps):
        for size in sizes:
            spent[size].append(await asyncio.to_thread(_build_cpu_s, all_folders[:size]))
    for size in sizes:
        print(f"  {size:>7} folders: {statistics.median(spent[size]) * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.watch_lag", description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=20000, help="leaf folders in the tree (100 to a group)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gql_media_bench")
    args = parser.parse_args()
    asyncio.run(_main(args.folders, args.reps, args.workdir))


if __name__ == "__main__":
    main()
