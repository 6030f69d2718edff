"""Keep the cyclic garbage collector off the objects that existed before a job.

The job runner holds it around each job (the sync and every step after it), so nothing else
needs to: a full collection walks every tracked object with the GIL held, and with the server's
own objects (modules, schema) plus a sync's rows that stalled the event loop 80-110 ms (bench
P9's max lag).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["old_objects_left_alone"]

_holds = 0


@contextmanager
def old_objects_left_alone() -> Iterator[None]:
    """While the block runs, the cyclic GC skips the objects that existed before it.

    ``gc.freeze()`` moves the existing objects out of the collector's reach and ``gc.unfreeze()``
    gives them back (both O(1)); nested and overlapping holds share one freeze. Objects made
    inside the block are collected as usual.
    """
    global _holds
    if _holds == 0:
        gc.freeze()
    _holds += 1
    try:
        yield
    finally:
        _holds -= 1
        if _holds == 0:
            gc.unfreeze()
