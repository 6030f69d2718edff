"""A real server's log says when each thing happened: our lines and uvicorn's (requests, start, stop)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.reliability.conftest import Server

# logging's default asctime: "2026-12-03 01:23:45,678"
_STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def test_every_line_a_server_logs_starts_with_its_time(tmp_path: Path, make_server: Callable[..., Server]) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "clip.mp4").write_bytes(b"")
    server = make_server([library], env={"GQL_MEDIA_LOG_LEVEL": "info"}).start()
    server.wait_idle()
    assert server.data("{ roots { rootPath } }")["roots"][0]["rootPath"] == str(library)
    server.stop()
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    logged = [line for line in lines if not line.startswith("gql-media: ")]  # the CLI's own prints
    assert any('"POST /graphql HTTP/1.1" 200' in line for line in logged), lines  # uvicorn's access log
    assert any("gql_media" in line for line in logged), lines  # ours
    unstamped = [line for line in logged if not _STAMPED.match(line)]
    assert not unstamped, unstamped
