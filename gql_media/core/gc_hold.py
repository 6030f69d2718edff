"""Keep the cyclic garbage collector off the server's own long-lived objects.

The job runner holds it around each job (the sync and every step after it), so nothing else
needs to: a full collection walks every tracked object with the GIL held, and with the server's
own objects (modules, schema) plus a sync's rows that stalled the event loop 80-110 ms (bench
P9's max lag).

The first hold collects once and freezes what exists then (modules, schema, services: objects
that live as long as the process), for good. That collection is of the young generations only:
the first hold is the start-up sync's, on the way to the server's first answers, and a full
collection there walked every object of the imports (95k, 55 ms of CPU at load 8 with a 1M
index) to find nothing the young collection (14 ms) had not freed; what the imports leave behind
has long been through full collections by then. A freeze per job, undone at the job's end, leaked:
under churn jobs run back to back, so each freeze caught the garbage the last job had left
before a full collection could run, and a server with 20 live subscribers grew by about
100 MB a minute (issue 20). Objects made after the first hold stay in the collector's reach.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["collections_paused", "old_objects_left_alone", "young_collections_spaced"]

_frozen = False


@contextmanager
def old_objects_left_alone() -> Iterator[None]:
    """While the block runs (and after it), the cyclic GC skips the objects that existed before the first hold."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect(1)  # once: what is frozen must not be garbage (the old generation was collected during the imports)
        gc.freeze()
    yield


# While full collections are held, the oldest generation's threshold: none is due.
_NO_FULL_COLLECTION = 2**30
# The longest a hold keeps full collections off at a stretch: past it CPython's own rule decides
# again until the next full collection, which holds them off for as long again.
FULL_COLLECTION_HOLD_S = 2.0

# A first index's young collections this many allocations apart (``young_collections_spaced``).
SPACED_YOUNG_COLLECTIONS = 50_000

_pauses = 0
_threshold: tuple[int, int, int] | None = None
_held_since = 0.0
_young: int | None = None  # the young generation's threshold while spaced, else None


def _on_collection(
    phase: str,
    info: dict[str, int],
    now: Callable[[], float] = time.monotonic,
    set_threshold: Callable[..., None] = gc.set_threshold,
) -> None:
    """Each collection's start, while a hold lasts: a full one starts the hold again, a young one ends
    it when it has lasted ``FULL_COLLECTION_HOLD_S``. (Its functions are bound here: a hold still
    open at interpreter exit sees a collection after the modules' names are gone.)"""
    global _held_since
    if phase != "start" or _threshold is None:
        return
    young = _threshold[0] if _young is None else _young
    if info["generation"] == 2:
        _held_since = now()
        set_threshold(young, _threshold[1], _NO_FULL_COLLECTION)
    elif now() - _held_since > FULL_COLLECTION_HOLD_S:
        set_threshold(young, _threshold[1], _threshold[2])


@contextmanager
def collections_paused() -> Iterator[None]:
    """Few full cyclic collections while the block runs (nested holds are counted); young ones go on.

    A sync makes a few objects per file (100k for a first index) and keeps them to its end: each
    growth by a quarter set off a full collection walking all of them again (7 of them, over a
    second, in a first index of 100k). So full collections wait, but ``FULL_COLLECTION_HOLD_S`` at
    most at a stretch, and young ones (which walk only what was made since the last) go on: the
    rest of the server (queries, subscription events) runs during a sync, and the cyclic garbage it
    leaves is freed only by collections, by full ones when it lived through two young ones (a
    request of a busy server does). With every collection off for the whole sync, under churn
    (jobs back to back, a FULL sync a minute: the soak) that garbage piled up to 1.3 million
    objects (~100 MB) at a time, and the allocators kept each peak after it was freed: the
    server's RSS rose by steps, 124 -> 178 MB in 4 minutes on a loaded machine, against 104 ->
    110 MB with this hold.
    """
    global _pauses, _threshold, _held_since
    if _pauses == 0:
        _threshold = gc.get_threshold()
        _held_since = time.monotonic()
        gc.set_threshold(_threshold[0], _threshold[1], _NO_FULL_COLLECTION)
        gc.callbacks.append(_on_collection)
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _threshold is not None:
            gc.callbacks.remove(_on_collection)
            gc.set_threshold(*_threshold)
            _threshold = None


@contextmanager
def young_collections_spaced(threshold: int = SPACED_YOUNG_COLLECTIONS) -> Iterator[None]:
    """Young collections at most every ``threshold`` allocations while the block runs (a first index).

    A first index's objects (each file's entry, its row, its parameters) live from the walk to the
    write, a batch at a time. With CPython's 700 every one of them was walked by two young
    collections on the way, while it was alive, holding the GIL that the walk waits for: 310 young
    collections and 28 of the middle generation, 0.2 s of a first index of 100k files. This far apart,
    most have been freed by their references before a collection reaches them (a first index of
    100k: 2.23 s against 2.54 s, as with the collector off). The garbage the rest of the server makes
    meanwhile waits for a collection a little longer, and goes with it.
    """
    global _young
    outer = _young
    _young = threshold if outer is None else max(outer, threshold)
    held = gc.get_threshold()
    gc.set_threshold(_young, held[1], held[2])
    try:
        yield
    finally:
        _young = outer
        now = gc.get_threshold()
        gc.set_threshold(held[0] if outer is None else outer, now[1], now[2])
