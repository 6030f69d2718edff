"""addRoot and removeRoot asked of a follower: forwarded to the leader, refusals keep their code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import write
from tests.scaleout.conftest import Cluster, Replica, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ADD = "mutation($p: String!) { addRoot(path: $p) { name path rootPath } }"
REMOVE = "mutation($p: String!) { removeRoot(path: $p) }"
UNDER = "query($r: String!) { videos(filter: {rootPath: $r}) { edges { node { path } } } }"


async def errors_of(replica: Replica, query: str, path: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=replica.base, timeout=60) as client:
        response = await client.post("/graphql", json={"query": query, "variables": {"p": path}})
    errors: list[dict[str, Any]] = response.json().get("errors") or []
    return errors


async def test_a_follower_forwards_add_and_remove_to_the_leader(cluster: Cluster) -> None:
    write(cluster.library / "a.mp4")
    shows = cluster.tmp_path / "shows"
    write(shows / "pilot.mp4", b"p" * 32)
    a, b = await cluster.start_leader_and_follower()

    added = (await b.data(ADD, {"p": str(shows)}))["addRoot"]
    assert added == {"name": "shows", "path": "", "rootPath": str(shows)}

    async def indexed_on(replica: Replica) -> list[str]:
        data = await replica.data(UNDER, {"r": str(shows)})
        return [edge["node"]["path"] for edge in data["videos"]["edges"]]

    assert await wait_until(lambda: indexed_on(b), timeout_s=60) == ["pilot.mp4"]
    # The leader watches it: its watcher lists every root, and so does the follower's view of it.
    roots = (await a.data("{ watcher { roots } }"))["watcher"]["roots"]
    assert roots == [str(cluster.library), str(shows)]

    async def follower_lists_it() -> bool:
        return bool((await b.data("{ watcher { roots } }"))["watcher"]["roots"] == roots)

    await wait_until(follower_lists_it)

    # A refusal made on the leader reaches the follower's client with its own code.
    errors = await errors_of(b, ADD, str(shows / "inner"))
    assert errors and errors[0]["extensions"]["code"] == "ROOT_NOT_FOUND"
    (shows / "inner").mkdir()
    errors = await errors_of(b, ADD, str(shows / "inner"))
    assert errors and errors[0]["extensions"]["code"] == "ROOT_OVERLAP"
    errors = await errors_of(b, REMOVE, str(cluster.library))
    assert errors and errors[0]["extensions"]["code"] == "ROOT_FROM_CONFIG"

    assert (await b.data(REMOVE, {"p": str(shows)}))["removeRoot"] is True
    assert (shows / "pilot.mp4").read_bytes() == b"p" * 32
    rows = await cluster.sql("SELECT path FROM roots ORDER BY id")
    assert [r["path"] for r in rows] == [str(cluster.library)]
    requests = await cluster.sql("SELECT kind, state FROM job_requests WHERE kind LIKE '%root' ORDER BY id")
    assert [(r["kind"], r["state"]) for r in requests] == [("add_root", "DONE")] * 3 + [("remove_root", "DONE")] * 2
