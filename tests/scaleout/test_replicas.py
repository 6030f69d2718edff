"""Two real replicas on one PostgreSQL database (events over Redis or LISTEN/NOTIFY): sharing, forwarding, failover.

The failover time and the cross-replica event latency are measured and written to
test-artifacts/scaleout-metrics.json; they are reported, never asserted.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write
from tests.processes import REPO
from tests.scaleout.conftest import Cluster, Replica, Subscriber, leader_of, percentile, subscriber, wait_until
from tests.video_sql import VIDEOS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHANGES = "subscription { libraryChanged { sequence kind path } }"
PROGRESS = "subscription { syncProgress { jobId sequence state phase added } }"
METRICS = REPO / "test-artifacts" / "scaleout-metrics.json"


def added_paths(client: Subscriber, op_id: str = "c") -> set[str]:
    return {e["libraryChanged"]["path"] for e in client.of(op_id) if e["libraryChanged"]["kind"] == "ADDED"}


async def until_subscribed(client: Subscriber, leader: Replica, library: Path) -> None:
    """Add probe files through the leader until the client's libraryChanged stream shows one.

    A subscription is live on the server some time after the client asked for it; this proves it is.
    """
    for attempt in range(30):
        name = f"probe-{attempt}.mp4"
        write(library / "probes" / name)
        await leader.data("mutation { syncLibrary { id } }")
        try:
            await client.wait_for(lambda c, n=name: f"probes/{n}" in added_paths(c), timeout_s=2)
            return
        except TimeoutError:
            continue
    raise AssertionError("the subscription never delivered a probe change")


def save_metrics(**values: Any) -> None:
    METRICS.parent.mkdir(exist_ok=True)
    current = json.loads(METRICS.read_text()) if METRICS.exists() else {}
    current.update(values)
    METRICS.write_text(json.dumps(current, indent=2))


async def test_events_cross_replicas_and_the_follower_takes_over(cluster: Cluster) -> None:
    library = cluster.library
    write(library / "start" / "one.mp4")
    # The folders exist from the start: a new folder and 200 new files in it, seen by the watcher
    # and a manual sync at once, hit a sync bug on PostgreSQL (a video row before its folder row).
    for folder in ("probes", "batch", "forwarded", "after-kill"):
        write(library / folder / "seed.mp4")
    a = cluster.start("A")
    await cluster.wait_healthy(a)
    b = cluster.start("B")
    await cluster.wait_healthy(b)
    # A came first, so A leads, and B knows it.
    assert await wait_until(lambda: leader_of(a)) == "A"
    assert await wait_until(lambda: leader_of(b)) == "A"

    async with subscriber(a) as on_a, subscriber(b) as on_b:
        await on_a.subscribe("c", CHANGES)
        await on_b.subscribe("c", CHANGES)
        await on_b.subscribe("p", PROGRESS)
        await until_subscribed(on_a, a, library)
        await until_subscribed(on_b, a, library)

        # The watcher stops (asked of the follower, run by the leader) so that the one sync below
        # sees all 200 files: a file written while a covering job runs is not synced again by it.
        stopped = (await b.data("mutation { stopWatcher { enabled leader } }"))["stopWatcher"]
        assert stopped == {"enabled": False, "leader": "A"}
        await wait_until(lambda: idle(a))

        # A sync triggered through the leader: B sees its progress and its changes.
        names = [f"batch/v{i:03}.mp4" for i in range(200)]
        for name in names:
            write(library / name)
        job = (await a.data("mutation { syncLibrary { id } }"))["syncLibrary"]
        await on_b.wait_for(lambda c: {f"{n}" for n in names} <= added_paths(c))
        await on_b.wait_for(
            lambda c: any(
                e["syncProgress"]["jobId"] == job["id"] and e["syncProgress"]["state"] == "SUCCEEDED" for e in c.of("p")
            )
        )
        await on_a.wait_for(lambda c: {f"{n}" for n in names} <= added_paths(c))
        # The same change has the same sequence on both replicas: B's delay is the broadcast's.
        seen_a = {e[2]["libraryChanged"]["sequence"]: e[0] for e in on_a.events if e[1] == "c"}
        seen_b = {e[2]["libraryChanged"]["sequence"]: e[0] for e in on_b.events if e[1] == "c"}
        batch = {
            e[2]["libraryChanged"]["sequence"]
            for e in on_b.events
            if e[1] == "c" and e[2]["libraryChanged"]["path"] in set(names)
        }
        assert batch <= seen_a.keys()
        latencies_ms = [(seen_b[s] - seen_a[s]) * 1000 for s in sorted(batch)]
        b_progress = [e["syncProgress"] for e in on_b.of("p") if e["syncProgress"]["jobId"] == job["id"]]
        assert [p["sequence"] for p in b_progress] == sorted({p["sequence"] for p in b_progress})

        # A sync asked of the follower is forwarded and run by the leader.
        write(library / "forwarded" / "f.mp4")
        forwarded = (await b.data('mutation { syncLibrary(path: "forwarded") { id state } }'))["syncLibrary"]
        await on_b.wait_for(lambda c: "forwarded/f.mp4" in added_paths(c))
        assert forwarded["state"] in ("QUEUED", "RUNNING", "SUCCEEDED")
        requests = await cluster.sql("SELECT kind, state, requested_by, taken_by FROM job_requests")
        assert sorted((r["kind"], r["requested_by"], r["taken_by"]) for r in requests) == [
            ("sync", "B", "A"),
            ("watcher", "B", "A"),
        ]
        await wait_until(lambda: _request_states(cluster, {"DONE"}))

        # The leader dies; the follower takes over, reconciles, and watches.
        killed_at = time.monotonic()
        a.kill()
        assert await wait_until(lambda: leader_of(b), timeout_s=30, step_s=0.02) == "B"
        failover_s = time.monotonic() - killed_at
        await wait_until(lambda: idle(b))
        write(library / "after-kill" / "late.mp4")
        await on_b.wait_for(lambda c: "after-kill/late.mp4" in added_paths(c), timeout_s=60)
        # B's subscribers were told to refetch: the old leader may have died mid-stream.
        assert any(e["libraryChanged"]["kind"] == "RESYNC" for e in on_b.of("c"))
        sequences = [e["libraryChanged"]["sequence"] for e in on_b.of("c")]

    videos = {r["path"] for r in await cluster.sql(f"SELECT path FROM {VIDEOS}")}
    assert {"after-kill/late.mp4", "forwarded/f.mp4", "start/one.mp4", *names} <= videos
    # The new leader numbers changes on from the old one's (a RESYNC repeats the last number).
    assert sequences == sorted(sequences)
    await assert_no_job_ran_twice(cluster)
    save_metrics(
        failover_s=round(failover_s, 3),
        cross_replica_latency_ms={
            "events": len(latencies_ms),
            "p50": round(percentile(latencies_ms, 0.50), 2),
            "p95": round(percentile(latencies_ms, 0.95), 2),
            "max": round(max(latencies_ms), 2),
        },
    )


async def idle(replica: Replica) -> bool:
    return (await replica.data("{ currentSync { id } }"))["currentSync"] is None


async def _request_states(cluster: Cluster, wanted: set[str]) -> bool:
    rows = await cluster.sql("SELECT state FROM job_requests")
    return all(r["state"] in wanted for r in rows)


async def assert_no_job_ran_twice(cluster: Cluster) -> None:
    """One writer at a time across the cluster: no two jobs ran at once, none is left running twice."""
    rows = await cluster.sql("SELECT id, state, started_at, finished_at FROM sync_jobs ORDER BY started_at")
    ran = [r for r in rows if r["started_at"] is not None]
    assert ran
    for earlier, later in itertools.pairwise(ran):
        assert earlier["finished_at"] is not None, earlier
        assert earlier["finished_at"] <= later["started_at"], (earlier, later)
    # What the dead leader had queued or running is FAILED by the new leader, not run again.
    assert all(r["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") for r in rows if r["id"] != ran[-1]["id"])


async def test_forwarded_watcher_toggle_and_a_late_follower(cluster: Cluster) -> None:
    write(cluster.library / "a.mp4")
    a, b = await cluster.start_leader_and_follower()
    stopped = (await b.data("mutation { stopWatcher { enabled leader } }"))["stopWatcher"]
    assert stopped == {"enabled": False, "leader": "A"}
    assert (await a.watcher())["enabled"] is False
    started = (await b.data("mutation { startWatcher { enabled leader } }"))["startWatcher"]
    assert started == {"enabled": True, "leader": "A"}
    # Jobs are read from the shared database on every replica.
    job = (await b.data("mutation { syncLibrary(mode: FULL) { id } }"))["syncLibrary"]

    async def finished_on_b() -> bool:
        found = await b.data("query($id: ID!) { node(id: $id) { ... on SyncJob { state } } }", {"id": job["id"]})
        return found["node"] is not None and found["node"]["state"] == "SUCCEEDED"

    await wait_until(finished_on_b)
    requests = await cluster.sql("SELECT kind, state FROM job_requests ORDER BY id")
    assert [(r["kind"], r["state"]) for r in requests] == [("watcher", "DONE"), ("watcher", "DONE"), ("sync", "DONE")]
