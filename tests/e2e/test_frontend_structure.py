"""The web UI's source stays modular: main.ts is boot code, each module owns one part of the page.

No Node needed: this reads the TypeScript sources only.
"""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "frontend-example" / "src"
MAIN_MAX_LINES = 200
MODULES = [
    "dom.ts",
    "banner.ts",
    "tree/model.ts",
    "tree/view.ts",
    "tree/load.ts",
    "search.ts",
    "player.ts",
    "live.ts",
    "syncPanel.ts",
    "watcherPanel.ts",
    "auth.ts",
]


def test_main_is_boot_code() -> None:
    lines = (SRC / "main.ts").read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAIN_MAX_LINES, f"main.ts has {len(lines)} lines; move logic into a module"


def test_each_part_has_its_module() -> None:
    missing = [m for m in MODULES if not (SRC / m).is_file()]
    assert missing == []


def test_rows_take_callbacks() -> None:
    # A row reports a click through the callback it was given; it never reaches into the search
    # or the tree to find out what it shows.
    rows = (SRC / "rows.ts").read_text(encoding="utf-8")
    assert "from './search'" not in rows
    assert "from './tree" not in rows
    assert "onPlay" in rows
