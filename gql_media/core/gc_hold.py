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
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collections_paused", "old_objects_left_alone"]

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


_pauses = 0
_was_enabled = True


@contextmanager
def collections_paused() -> Iterator[None]:
    """No cyclic collection at all while the block runs (nested holds are counted).

    A sync makes a few objects per file (100k for a first index) and keeps them to its end: each
    growth by a quarter set off a full collection walking all of them again (7 of them, over a
    second, in a first index of 100k). Reference counting still frees what they leave; cycles
    wait for the first collection after the block.
    """
    global _pauses, _was_enabled
    if _pauses == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()
