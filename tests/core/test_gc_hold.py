"""The GC holds: old objects frozen once, never the garbage jobs leave (issue 20); a sync's hold
stops full collections only, so the garbage the rest of the server makes meanwhile is still freed."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from gql_media.core import gc_hold
from gql_media.core.gc_hold import collections_paused, old_objects_left_alone


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
