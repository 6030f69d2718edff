"""Library folders in Chromium against a real server: add by path, a refusal, remove (issue 15).

Runs tests/e2e/roots.spec.mjs (node's test runner + playwright-core driving Debian's chromium), then
checks that the removed folder's files are all still there. Skips outside CI when node or chromium
is missing, like tests/e2e/test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, require_node_and_chromium, run_spec, serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = REPO / "tests" / "e2e" / "roots.spec.mjs"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    require_node_and_chromium()
    library = tmp_path / "library"
    (library / "inside").mkdir(parents=True)
    (library / "a.mp4").write_bytes(b"a" * 100)
    extra = tmp_path / "extra shows"
    (extra / "season").mkdir(parents=True)
    (extra / "season" / "e1.mp4").write_bytes(b"e" * 100)
    with serve(library, tmp_path, "e2e-roots-server.log") as base:
        yield base, library, extra


def test_roots_in_chromium(server: tuple[str, Path, Path]) -> None:
    base, library, extra = server
    run_spec(SPEC, base, {"GQL_MEDIA_E2E_LIBRARY": str(library), "GQL_MEDIA_E2E_EXTRA": str(extra)})
    # Removed from the library, never from the disk.
    assert (extra / "season" / "e1.mp4").read_bytes() == b"e" * 100
