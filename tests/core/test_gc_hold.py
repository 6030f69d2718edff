"""The GC hold freezes the process's old objects once, and never the garbage that jobs leave (issue 20)."""

from __future__ import annotations

import gc
import weakref

from gql_media.core.gc_hold import old_objects_left_alone


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
