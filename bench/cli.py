"""``python -m bench [--quick] [--only P1,P2] [--output FILE]``: run the measures, print the table, write JSON.

``python -m bench soak [--minutes N] ...``: the soak alone (``bench.soak``).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.measures import FULL, MEASURES, QUICK, Bench, Row

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="gql_media's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute in total)")
    parser.add_argument("--only", help="comma-separated measure ids, e.g. P1,P2")
    parser.add_argument(
        "--scale",
        type=int,
        nargs="?",
        const=0,
        metavar="N",
        help="P15/P16 only: queries and peak RSS on N files (default 1,000,000; --quick: 100,000)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON results")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gql_media_bench",
                        help="where libraries (kept between runs) and data dirs live")  # fmt: skip
    return parser


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _ours(row: Row) -> str:
    if row.value is not None:
        return f"{row.value:g} {row.unit}"
    return _fmt_s(row.ours_s) if row.status == "measured" else row.status


def render(rows: Sequence[Row], console: Console, title: str) -> None:
    table = Table(title=title)
    for column in ("id", "measure", "ours", "reference", "ratio", "goal", "ok"):
        table.add_column(column, justify="right" if column in ("ours", "reference", "ratio") else "left")
    for row in rows:
        ok = "-" if row.ok is None else ("[green]yes[/]" if row.ok else "[red]NO[/]")
        table.add_row(
            row.id,
            row.title if not row.note else f"{row.title} ({row.note})",
            _ours(row),
            _fmt_s(row.reference_s),
            "-" if row.ratio is None else f"{row.ratio:.2f}",
            row.goal,
            ok,
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["soak"]:
        from bench.soak import main as soak

        return soak(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log file or a pipe: keep rows on one line
    sizes = QUICK if args.quick else FULL
    wanted = [m.strip().upper() for m in args.only.split(",")] if args.only else list(MEASURES)
    unknown = [m for m in wanted if m not in MEASURES]
    if unknown:
        console.print(f"unknown measure(s): {', '.join(unknown)}; known: {', '.join(MEASURES)}")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.workdir, sizes, lambda message: console.log(message))
    started = time.perf_counter()
    rows: list[Row] = []
    if args.scale is not None:
        from bench.scale import run_scale

        files = args.scale or (100_000 if args.quick else 1_000_000)
        rows.extend(run_scale(bench, files))
        wanted = []
    for measure_id in wanted:
        measure = MEASURES[measure_id]
        if measure.run is None:
            rows.append(measure.pending_row())
            continue
        console.log(f"[bold]{measure.id}[/]: {measure.title}")
        try:
            rows.append(measure.run(bench))
        except Exception as error:  # one broken measure must not lose the others' figures
            logging.getLogger("bench").exception("%s failed", measure.id)
            rows.append(Row(measure.id, measure.title, measure.goal, ok=False, status="failed", note=str(error)[:300]))
    elapsed_s = time.perf_counter() - started
    mode = "quick" if args.quick else "full"
    if args.scale is not None:
        mode = f"scale {files:,}"
    render(rows, console, f"gql_media bench ({mode}, {elapsed_s:.0f} s, {platform.node()})")
    results: dict[str, Any] = {row.id: row.to_json() for row in rows}
    if args.scale is not None and args.output.is_file():  # the other measures' figures are kept
        results = json.loads(args.output.read_text()) | results
    results["_run"] = {
        "mode": mode,
        "elapsed_s": round(elapsed_s, 1),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "ratio = median(ours) / median(reference), both timed side by side in this run",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results written to {args.output}")
    return 0
