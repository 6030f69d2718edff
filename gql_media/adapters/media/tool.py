"""``PyAvMediaTool``: the ``MediaTool`` port on a pool of worker processes running PyAV.

The operation table ``MEDIA_OPERATIONS`` is what production workers can run: probe, thumbnail,
merge and the placeholder image. A new operation is a module-level function added to a table handed to the tool (see
``pool``); tests hand it a table with their own extra operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import types
from pathlib import Path
from typing import Any

from gql_media.adapters.media.pool import (
    STARVED_PERIODS,
    OperationTable,
    WorkerCrashed,
    WorkerFailure,
    WorkerPool,
    WorkerStarved,
)
from gql_media.core.hls import HlsPlaylist, temp_path_beside
from gql_media.core.models import MediaInfo, VideoStatus
from gql_media.core.ports import MediaError

__all__ = ["MEDIA_OPERATIONS", "WORKER_NICENESS", "PyAvMediaTool", "setup_media_worker"]

# Background work: the server's process (queries, events) gets the CPU first. Measured in P9
# (a sync with thumbnails): query p99 during it 7.9x idle -> 4.8x with the workers at nice 10.
# The default of settings.media_worker_nice.
WORKER_NICENESS = 10
# glibc's malloc: blocks from this size up are mmapped, and a free heap top past the trim
# threshold goes back to the kernel. These are the most glibc's own adaptive thresholds reach
# (32 MiB, and twice that) once a large frame was freed; fixed from the start (``_keep_freed_memory``).
_MALLOC_MMAP_THRESHOLD = -3
_MALLOC_TRIM_THRESHOLD = -1
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 2 * _MMAP_THRESHOLD_BYTES
# Slack for a merge beyond ``timeout_s``: the time to read the segments at a slow disk's pace.
_MERGE_BYTES_PER_S = 20_000_000


def setup_media_worker(niceness: int = WORKER_NICENESS, idle: bool = False) -> None:
    """Run once in each worker: lower its priority and silence FFmpeg's own chatter (it would flood stderr).

    ``idle``: also the SCHED_IDLE policy (Linux; elsewhere the niceness alone). A worker at nice 10
    still holds a core until its time slice ends when a query's thread wakes; an idle one gives it
    up at once, and gets only the time no other thread wants.
    """
    import av

    # The operations' modules (PyAV, Pillow) are loaded here, before the worker says it is ready:
    # a worker's start never counts against a call's time (``pool``), its first call included.
    import gql_media.adapters.media.playback_probe
    import gql_media.adapters.media.probe
    import gql_media.adapters.media.remux
    import gql_media.adapters.media.segments
    import gql_media.adapters.media.thumbnail  # noqa: F401

    _keep_freed_memory()
    with contextlib.suppress(OSError):
        os.nice(niceness)
    if idle and hasattr(os, "sched_setscheduler"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    av.logging.set_level(av.logging.PANIC)


def _keep_freed_memory() -> None:
    """Keep the memory a call frees for the next call (glibc; a no-op elsewhere).

    Every thumbnail or probe opens a decoder and frees all of it at its end. With glibc's default
    thresholds (128 KiB, adapting upwards) that memory went back to the kernel at each free and
    the next call faulted it in again: ~210 page faults a thumbnail of bench P6's 320x180 clips
    (about a tenth of its CPU), ~7,700 of a 1080p clip (~40 -> ~24 ms of CPU with the scaler on one
    thread). The cost: an idle worker holds up to its largest call's heap (1080p: RSS 67 -> 98 MB).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(_MALLOC_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    mallopt(_MALLOC_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)


# The operations import PyAV (and Pillow) when they first run, i.e. in a worker only: the server
# holds this table (pickled by reference to each worker) and never decodes anything itself.


def probe_operation(path: str | bytes) -> dict[str, Any]:
    """The "probe" operation: ``MediaInfo`` fields of one file."""
    from gql_media.adapters.media.probe import av_errors, probe_file

    with av_errors():
        return probe_file(path)


def thumbnail_operation(path: str | bytes, output_path: str, width_px: int) -> None:
    """The "thumbnail" operation: one image file."""
    from gql_media.adapters.media.probe import av_errors
    from gql_media.adapters.media.thumbnail import make_thumbnail

    with av_errors():
        make_thumbnail(path, output_path, width_px)


def merge_operation(playlist: HlsPlaylist, temp_path: str) -> str:
    """The "merge" operation: an HLS download into a verified mp4; returns its path."""
    from gql_media.adapters.media.probe import av_errors
    from gql_media.adapters.media.remux import merge_hls

    with av_errors():
        return merge_hls(playlist, temp_path)


def placeholder_operation(thumbnails_dir: str, width_px: int, image_format: str) -> str:
    """The "placeholder" operation: the image shown for a video without a thumbnail, drawn once."""
    from gql_media.adapters.media.placeholder import ensure_placeholder

    return str(ensure_placeholder(Path(thumbnails_dir), width_px, image_format))


MEDIA_OPERATIONS: OperationTable = types.MappingProxyType(
    {
        "probe": probe_operation,
        "thumbnail": thumbnail_operation,
        "merge": merge_operation,
        "placeholder": placeholder_operation,
    }
)


class PyAvMediaTool(WorkerPool):
    """Implements ``ports.MediaTool`` with PyAV in ``workers`` processes; every call times out.

    Args:
        workers: processes (and calls running at once); settings.media_workers.
        timeout_s: the longest one probe or thumbnail may take; settings.media_timeout_s. A merge
            gets that plus the time to read its segments at 20 MB/s.
        operations: what the workers run; ``MEDIA_OPERATIONS`` unless a test adds its own.
        niceness: how much lower than this process the workers run (``os.nice``);
            settings.media_worker_nice.
        idle: the workers run under SCHED_IDLE too (``setup_media_worker``); settings.media_worker_idle.
        starved_periods: a call whose worker is starved waits up to this many ``timeout_s`` in all
            (``pool``); past that it fails, and a probe leaves the file PENDING, never BROKEN.

    Use ``async with PyAvMediaTool(...) as tool`` or ``await tool.start()`` / ``await tool.aclose()``.
    """

    def __init__(
        self,
        workers: int = 1,
        timeout_s: float = 60.0,
        operations: OperationTable | None = None,
        niceness: int = WORKER_NICENESS,
        idle: bool = False,
        starved_periods: int = STARVED_PERIODS,
    ) -> None:
        table = MEDIA_OPERATIONS if operations is None else operations
        # A partial of a module-level function pickles by reference, as the pool requires.
        setup = functools.partial(setup_media_worker, niceness, idle)
        super().__init__(table, workers, timeout_s, setup=setup, starved_periods=starved_periods)

    async def __aenter__(self) -> PyAvMediaTool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def probe(self, path: str | bytes) -> MediaInfo:
        try:
            try:
                kind, value = await self.call("probe", path)
            except WorkerCrashed:
                # Once more on a fresh worker: a killed worker is not a broken file; a file that
                # crashes the decoder crashes it again.
                kind, value = await self.call("probe", path)
        except WorkerStarved as error:
            # The machine was busy, not the file bad: it stays PENDING (the caller's MediaError),
            # and the next sync probes it again. Never BROKEN for an error of ours.
            raise MediaError(f"probe not finished: {error}") from None
        except WorkerFailure as error:
            # A file that hangs or crashes the decoder would do it again: it is broken for us.
            return MediaInfo(status=VideoStatus.BROKEN, error=f"probe failed: {error}")
        if kind == "ok":
            return MediaInfo(**value)
        if kind == "unreadable":
            raise MediaError(str(value))
        return MediaInfo(status=VideoStatus.BROKEN, error=str(value))

    async def make_thumbnail(self, path: str | bytes, output_path: str, width_px: int) -> None:
        kind, value = await self.call("thumbnail", path, output_path, width_px)
        if kind != "ok":
            raise MediaError(str(value))

    async def ensure_placeholder(self, thumbnails_dir: Path, width_px: int, image_format: str) -> None:
        """Draw the placeholder image unless it is there (in a worker: this process never imports Pillow)."""
        kind, value = await self.call("placeholder", str(thumbnails_dir), width_px, image_format)
        if kind != "ok":
            raise MediaError(str(value))

    async def merge_hls(self, playlist: HlsPlaylist) -> str:
        temp_path = temp_path_beside(os.path.dirname(playlist.folder.rstrip(os.sep)))
        timeout_s = self.timeout_s + playlist.total_bytes / _MERGE_BYTES_PER_S
        try:
            kind, value = await self.call("merge", playlist, temp_path, timeout_s=timeout_s)
        except BaseException:
            # The worker removes it on failure, but not when it was killed mid-merge.
            await asyncio.to_thread(_remove_if_present, temp_path)
            raise
        if kind != "ok":
            await asyncio.to_thread(_remove_if_present, temp_path)  # the worker's removal may have failed
            raise MediaError(str(value))
        # A merge that succeeded gave the temp file its final name: nothing left to remove, and no
        # thread round trip on the merge's path.
        return str(value)


def _remove_if_present(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
