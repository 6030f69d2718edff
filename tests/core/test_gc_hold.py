"""The GC holds: old objects frozen once, never the garbage jobs leave (issue 20); a sync's hold
stops full collections only, so the garbage the rest of the server makes meanwhile is still freed. A first index
spaces the young collections (its objects live from the walk to the write), and puts them back after."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from gql_media.core import gc_hold
from gql_media.core.gc_hold import (
    SPACED_YOUNG_COLLECTIONS,
    collections_paused,
    old_objects_left_alone,
    young_collections_spaced,
)
from gql_media.core.scanner import ScanResult
from gql_media.core.sync.stream import WalkBatches
from gql_media.services import Services
from tests.conftest import run_sync, write


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _garbage_cycle() -> weakref.ref[_Cycle]:
    """A reference cycle that lived long enough to reach the oldest generation, then became garbage."""
    cycle = _Cycle()
    gc.collect()  # survives a full collection: it is in the oldest generation now
    return weakref.ref(cycle)


def test_garbage_left_between_jobs_is_collected_while_the_next_job_holds() -> None:
    with old_objects_left_alone():
        pass
    refs = []
    for _ in range(5):  # jobs back to back, each leaving a long-lived object behind as garbage
        with old_objects_left_alone():
            refs.append(_garbage_cycle())
    with old_objects_left_alone():  # the next job runs: its hold must not shelter that garbage
        gc.collect()
        assert [ref() for ref in refs] == [None] * len(refs)


def test_objects_from_before_the_first_hold_stay_frozen() -> None:
    with old_objects_left_alone():
        frozen = gc.get_freeze_count()
        assert frozen > 0
    with old_objects_left_alone():
        assert gc.get_freeze_count() == frozen


def _record_collections() -> tuple[list[int], Any]:
    collected: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    return collected, record


def test_a_sync_hold_stops_full_collections_and_young_garbage_is_still_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_hold, "FULL_COLLECTION_HOLD_S", float("inf"))  # the hold never runs out here
    collected, record = _record_collections()
    before = gc.get_threshold()
    gc.callbacks.append(record)
    try:
        with collections_paused(), collections_paused():  # nested holds, as a sync inside a job step
            assert gc.isenabled()
            kept = [[n] for n in range(300_000)]  # a sync's rows, alive to its end
            young = _Cycle()
            garbage = weakref.ref(young)
            del young
            churn = [[[n]] for n in range(5_000)]  # queries meanwhile: enough to set off young collections
            del churn
            assert garbage() is None  # the rest of the server's cyclic garbage is freed during the sync
            assert collected and 2 not in collected  # young collections only: none walked ``kept``
        assert gc.get_threshold() == before
    finally:
        gc.callbacks.remove(record)
    assert len(kept) == 300_000


def test_a_hold_past_its_time_lets_a_full_collection_free_old_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Garbage that lived through young collections (a slow request's) is freed during a long sync too."""
    monkeypatch.setattr(gc_hold, "FULL_COLLECTION_HOLD_S", 0.0)  # every young collection finds it run out
    collected, record = _record_collections()
    gc.callbacks.append(record)
    try:
        with collections_paused():
            old = _garbage_cycle()  # in the oldest generation, then garbage
            assert old() is not None
            kept = [[n] for n in range(300_000)]  # enough promoted objects for CPython's own rule
            assert 2 in collected[1:]  # a full collection after the explicit one in _garbage_cycle
            assert old() is None
    finally:
        gc.callbacks.remove(record)
    assert len(kept) == 300_000


def test_a_first_index_spaces_young_collections_and_puts_them_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spaced inside a sync's hold, through the hold's own threshold changes, and as before after."""
    before = gc.get_threshold()
    with collections_paused():
        with young_collections_spaced(40_000):
            assert gc.get_threshold()[0] == 40_000
            gc.collect()  # a full collection starts the hold again: still spaced
            assert gc.get_threshold()[0] == 40_000
            monkeypatch.setattr(gc_hold, "FULL_COLLECTION_HOLD_S", 0.0)  # the next young one ends the hold
            young = _Cycle()
            garbage = weakref.ref(young)
            del young
            churn = [[[n]] for n in range(60_000)]  # past the spaced threshold: a young collection
            del churn
            assert garbage() is None  # the garbage made meanwhile still goes, a little later
            assert gc.get_threshold()[0] == 40_000
        assert gc.get_threshold()[0] == before[0]
    assert gc.get_threshold() == before


async def test_the_walk_of_a_first_index_runs_with_young_collections_spaced(
    services: Services, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As its batches reach the server (from the walk's process; a resync's from a thread of its own)."""
    write(library / "a" / "one.mp4")
    seen: list[int] = []
    emit = WalkBatches._emit

    def emit_noting_the_threshold(self: WalkBatches, batch: ScanResult) -> None:
        seen.append(gc.get_threshold()[0])
        emit(self, batch)

    monkeypatch.setattr(WalkBatches, "_emit", emit_noting_the_threshold)
    before = gc.get_threshold()
    await run_sync(services, library)  # a first index
    first = len(seen)
    write(library / "a" / "two.mp4")
    await run_sync(services, library)  # a resync
    assert first and seen[:first] == [SPACED_YOUNG_COLLECTIONS] * first
    assert len(seen) > first and seen[first:] == [before[0]] * (len(seen) - first)
    assert gc.get_threshold() == before
