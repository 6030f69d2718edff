"""The merge's early writeback: best effort, never changing a byte and never keeping a descriptor."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gql_media.adapters.media.writeback import early_writeback


def _descriptors_of(path: Path) -> list[str]:
    """This process's open descriptors on ``path``. Only those: other tests' threads and garbage open
    and close descriptors of their own meanwhile (CI once saw two close during this test)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue  # closed between the listing and the link
        if target == str(path):
            found.append(fd)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts descriptors in /proc")
def test_kicks_while_a_file_grows_keep_its_bytes_and_leave_no_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "growing.mp4"
    path.touch()
    chunks = [bytes([index]) * 300_001 for index in range(8)]  # not page-aligned: partial pages get kicked
    with early_writeback(str(path)) as kick, path.open("r+b") as out:
        for chunk in chunks:
            out.write(chunk)
            out.flush()
            kick()
        out.seek(0)
        out.write(b"head")  # the mp4 muxer goes back to the start at its end: pages already written back
        out.flush()
        kick()
        assert _descriptors_of(path) != []  # the check sees the test's own descriptor while it is open
    assert _descriptors_of(path) == []
    assert path.read_bytes() == b"head" + b"".join(chunks)[4:]


def test_a_file_it_cannot_open_makes_kick_a_no_op(tmp_path: Path) -> None:
    missing = tmp_path / "gone.mp4"
    with early_writeback(str(missing)) as kick:
        kick()
    assert not missing.exists()
