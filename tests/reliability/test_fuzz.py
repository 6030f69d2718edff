"""Schemathesis against the GraphQL endpoint of a real server: no 5xx, no unmasked internal error.

Bounded: FUZZ_EXAMPLES per operation (13 operations: about 300 examples in all).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from tests.reliability.conftest import Server

FUZZ_EXAMPLES = int(os.environ.get("GQL_MEDIA_FUZZ_EXAMPLES", "25"))
TRIED: list[int] = []

schemathesis.graphql.scalar("Long", st.integers(min_value=-(2**70), max_value=2**70).map(nodes.Int))
schemathesis.graphql.scalar("DateTime", st.just("2024-01-01T00:00:00").map(nodes.String))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("fuzz")
    library = base / "library"
    (library / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.mkv", "sub/c d.webm"):
        (library / name).write_bytes(b"not really a video")
    server = Server.indexed(base, library)
    try:
        yield server
    finally:
        print(f"fuzz: {len(TRIED)} examples")
        server.stop()


@pytest.mark.slow
def test_graphql_fuzz(fuzz_server: Server) -> None:
    schema = schemathesis.graphql.from_url(fuzz_server.base + "/graphql")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case: Any) -> None:
            TRIED.append(1)
            response = case.call(timeout=60)
            assert response.status_code < 500, (case.body, response.text[:500])
            body = response.json()
            messages = [error.get("message") for error in body.get("errors") or []]
            assert "Internal server error." not in messages, (case.body, body)
            assert "Traceback" not in response.text
            assert str(fuzz_server.data_dir) not in response.text

        run()


def test_server_survived(fuzz_server: Server) -> None:
    assert fuzz_server.data("{ roots { path } }")["roots"]
    assert fuzz_server.proc is not None and fuzz_server.proc.poll() is None
    assert Path(fuzz_server.log_path).exists()
