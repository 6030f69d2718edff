"""The bench runs and writes valid JSON (a smoke run; nothing here is timed)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.video_sql import VIDEOS

ROOT = Path(__file__).resolve().parent.parent


def run_quick_bench(tmp_path: Path, measures: str) -> dict[str, Any]:
    """Run ``python -m bench --quick --only measures`` into a temp folder and return its JSON."""
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", measures, "--output", str(output),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr + completed.stdout
    results: dict[str, Any] = json.loads(output.read_text())
    return results


@pytest.mark.slow
def test_quick_p1_writes_valid_json(tmp_path: Path) -> None:
    results = run_quick_bench(tmp_path, "P1")
    p1 = results["P1"]
    assert p1["status"] == "measured"
    assert p1["n"] == 10_000
    for key in ("ours_s", "reference_s", "ratio"):
        assert isinstance(p1[key], float) and p1[key] > 0
    assert isinstance(p1["ok"], bool)
    assert p1["goal"] == "<= 3"
    assert set(results) == {"P1", "_run"}
    # SQLite alone wrote the same index again (bench/sqlite_floor.py): the same rows, indexes and search.
    assert isinstance(p1["sqlite_alone_s"], float) and p1["sqlite_alone_s"] > 0
    assert p1["sqlite_alone_ratio"] == pytest.approx(p1["sqlite_alone_s"] / p1["reference_s"], rel=0.01)
    data = tmp_path / "work" / "data" / "p1"
    match = "SELECT rowid FROM videos_search WHERE videos_search MATCH '\"0042\"' ORDER BY rowid"
    with (
        contextlib.closing(sqlite3.connect(data / "library.db")) as ours,
        contextlib.closing(sqlite3.connect(data / "floor.db")) as floor,
    ):
        for sql in (
            f"SELECT id, folder_id, path, size, mtime_ns FROM {VIDEOS} ORDER BY id",
            "SELECT id, parent_id, path FROM folders ORDER BY id",
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'videos' ORDER BY name",
            match,
        ):
            assert floor.execute(sql).fetchall() == ours.execute(sql).fetchall(), sql
        assert ours.execute("SELECT COUNT(*) FROM videos").fetchone() == (10_000,)
        assert floor.execute(match).fetchall()


@pytest.mark.slow
def test_quick_resync_and_page_measures_run(tmp_path: Path) -> None:
    """P2 and P5 read the index the way the server does (P5's reference page by its own SQL): a change of
    the schema that breaks them fails here, not in the next full bench."""
    results = run_quick_bench(tmp_path, "P2,P5")
    assert set(results) == {"P2", "P5", "_run"}
    for measure in ("P2", "P5"):
        assert results[measure]["status"] == "measured", results[measure]
        assert isinstance(results[measure]["ratio"], float) and results[measure]["ratio"] > 0


@pytest.mark.slow
def test_quick_playback_measures_write_valid_json(tmp_path: Path) -> None:
    """P11-P14 (issue 14) run end to end on small sources: a smoke run, their figures are not judged."""
    results = run_quick_bench(tmp_path, "P11,P12,P13,P14")
    assert set(results) == {"P11", "P12", "P13", "P14", "_run"}
    for measure in ("P11", "P12", "P13", "P14"):
        assert results[measure]["status"] == "measured", results[measure]
        assert isinstance(results[measure]["value"], float) and results[measure]["value"] > 0
        assert isinstance(results[measure]["ok"], bool)


def test_a_commands_peak_rss_is_its_own_not_the_bench_processes(tmp_path: Path) -> None:
    """``bench/peak_rss.py``: a child started straight from a big process reports the parent's
    peak (Linux keeps it across exec); through the launcher, the command's own."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench.peak_rss import run_measured
    finally:
        sys.path.remove(str(ROOT))
    held = bytearray(300 * 2**20)
    held[::4096] = b"\x01" * len(held[::4096])  # touched: resident
    idle = run_measured([sys.executable, "-c", "pass"])
    assert idle.exit_code == 0
    assert idle.peak_rss_mb < 100, f"an idle interpreter reported {idle.peak_rss_mb:.0f} MB: the bench's memory"
    allocates = "b = bytearray(150 * 2**20); b[::4096] = b'\\x01' * len(b[::4096])"
    grown = run_measured([sys.executable, "-c", allocates])
    assert grown.exit_code == 0
    assert 150 <= grown.peak_rss_mb < 250
    failed = run_measured([sys.executable, "-c", "raise SystemExit(3)"])
    assert failed.exit_code == 3
    del held


@pytest.mark.slow
def test_the_public_api_measure_runs_on_a_real_server(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.public_api", "--quick", "--reps", "1", "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    lines = completed.stdout.splitlines()
    assert lines[-2].startswith("P1 through the API, 10,000 files: index written"), completed.stdout
    assert lines[-1].startswith("P2 through the API:") and "x the walk" in lines[-1], completed.stdout
