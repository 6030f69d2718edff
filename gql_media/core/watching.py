"""The watcher service: changes on disk become subtree sync requests, losslessly.

Standard library only. The change source (the watchfiles adapter, or a fake in tests) is passed in
as a factory, the job runner as a ``SyncSubmitter``, the event bus as a status callback.

What it guarantees:

- ``start`` opens the watch first, then reconciles every root (an INCREMENTAL sync of each root,
  recursive), so changes made while the watcher was stopped are caught and none made after are lost.
- Each fire of the debouncer becomes one ``submit``; the job runner merges requests while a job runs.
- It never dies silently: a watch that fails is reported in ``status().error``, retried with a
  growing delay (and reconciled once it is back), and falls back to polling when the OS runs out of
  inotify watches or native watching keeps failing. A missing root is reported, left out of the
  watch and of every sync (its index is kept), and picked up again when it comes back.
- A periodic reconcile (``reconcile_interval_s``, 0 = off) catches what native watching cannot see
  (kernel queue overflow, network file systems).

The paths the server writes itself are ``own_writes.OwnWrites``; when changes fire is
``debounce.Debouncer``. What stays here is one idea, the life of one watch, and is kept whole
though it passes 400 lines: opening, the first reconcile, following, failing, retrying, falling
back to polling and waiting for a missing root are one state machine over the same fields
(``_missing``, ``_polling``, ``_failure``, the first-round event), and the fires and submits read
them too (a missing root is never synced, a failed submit shows in the status): split apart, the
halves would have to share all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import stat
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from gql_media.core.debounce import Debouncer, FileLook
from gql_media.core.models import SyncMode, SyncRequest, SyncTarget, SyncTrigger, WatcherStatus, WatchMode
from gql_media.core.ports import ChangeSource, ChangeSourceFactory, RootMissingError, SyncSubmitter, WatchLimitError

__all__ = ["WatchService"]

logger = logging.getLogger(__name__)

StatusCallback = Callable[[WatcherStatus], Awaitable[None]]

_FAILURES_BEFORE_POLLING = 3


class WatchService:
    """Follows the roots on disk and turns changes into INCREMENTAL sync requests.

    Args:
        source_factory: builds a change source over some roots (``force_polling`` asks for polling).
        submitter: the job runner.
        roots: absolute library roots.
        on_status: awaited with every status worth telling (e.g. ``EventBus.publish_watcher``).
        mode: NATIVE (default; falls back to polling when it must) or POLLING.
        settle_ms: fire after this long without a new change.
        max_wait_ms: fire at the latest this long after the first pending change.
        max_pending: most distinct changed paths kept before collapsing to root rescans.
        file_settle_ms: a changed file counts as complete once its size and mtime kept still this long;
            until then it is looked at every ``settle_ms`` and synced again when it changed.
        reconcile_interval_s: period of the full incremental reconcile; 0 turns it off.
        retry_delay_s: first delay before re-opening a failed watch (doubles up to ``max_retry_delay_s``);
            also how often a missing root is looked for.
        max_retry_delay_s: longest delay between retries.
        clock: monotonic seconds, for the debouncer.
        wall_clock: the time shown in the status.
    """

    def __init__(
        self,
        source_factory: ChangeSourceFactory,
        submitter: SyncSubmitter,
        roots: Sequence[str],
        *,
        on_status: StatusCallback | None = None,
        mode: WatchMode = WatchMode.NATIVE,
        settle_ms: int = 300,
        max_wait_ms: int = 3000,
        max_pending: int = 10_000,
        file_settle_ms: int = 2000,
        reconcile_interval_s: float = 6 * 3600,
        retry_delay_s: float = 2.0,
        max_retry_delay_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._factory = source_factory
        self._submitter = submitter
        self._roots = tuple(dict.fromkeys(posixpath.normpath(os.path.abspath(r)) for r in roots))
        self._on_status = on_status
        self._configured_mode = mode
        self._settle_ms = settle_ms
        self._reconcile_interval_s = reconcile_interval_s
        self._retry_delay_s = retry_delay_s
        self._max_retry_delay_s = max_retry_delay_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._debouncer = Debouncer(
            self._roots,
            settle_ms=settle_ms,
            max_wait_ms=max_wait_ms,
            max_pending=max_pending,
            file_settle_ms=file_settle_ms,
            clock=clock,
        )
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._mode = mode
        self._polling = mode is WatchMode.POLLING
        self._missing: tuple[str, ...] = ()
        self._fallback_reason: str | None = None
        self._failure: str | None = None
        self._submit_failures = 0
        self._last_event_at: datetime | None = None
        self._last_sync_at: datetime | None = None

    @property
    def overflows(self) -> int:
        """How many times the pending set overflowed into root rescans (since construction)."""
        return self._debouncer.overflows

    def status(self) -> WatcherStatus:
        """The watcher's state now."""
        problems = [p for p in (self._missing_text(), self._fallback_reason, self._failure) if p]
        return WatcherStatus(
            enabled=self._task is not None,
            mode=self._mode,
            roots=self._roots,
            settle_ms=self._settle_ms,
            pending_paths=self._debouncer.pending_paths,
            error="; ".join(problems) or None,
            last_event_at=self._last_event_at,
            last_sync_at=self._last_sync_at,
        )

    async def start(self, trigger: SyncTrigger = SyncTrigger.WATCHER) -> WatcherStatus:
        """Start watching (no-op when running): open the watch, then reconcile every root.

        Returns once the first attempt is done, so the status tells the mode or the error.
        ``trigger`` marks the first reconcile (STARTUP at application start-up).
        """
        async with self._lock:
            if self._task is None:
                self._polling = self._configured_mode is WatchMode.POLLING
                self._mode = self._configured_mode
                self._fallback_reason = self._failure = None
                self._missing = ()
                await self._launch(trigger, catch_up=True)
                await self._publish()
        return self.status()

    async def set_roots(self, roots: Sequence[str]) -> WatcherStatus:
        """Watch these roots from now on (a root added or removed at run time).

        A running watch is opened again over the new set, without a reconcile: whoever adds a
        root syncs it (the watcher may be stopped). Changes pending under a removed root are dropped.
        """
        async with self._lock:
            self._roots = tuple(dict.fromkeys(posixpath.normpath(r) for r in roots))
            self._debouncer.set_roots(self._roots)
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
                self._missing = ()
                await self._launch(SyncTrigger.WATCHER, catch_up=False)
            await self._publish()
        return self.status()

    async def _launch(self, trigger: SyncTrigger, *, catch_up: bool) -> None:
        """Start the watch task; returns once its first round is done (or it died, which the status says)."""
        first_round = asyncio.Event()
        self._task = asyncio.create_task(self._run(trigger, first_round, catch_up), name="gql-media-watcher")
        waiter = asyncio.create_task(first_round.wait())
        try:
            await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await asyncio.wait({waiter})
        if self._task.done():  # only a bug gets here: say so rather than pretend to watch
            exc = self._task.exception() if not self._task.cancelled() else None
            self._failure = f"the watcher could not start ({exc!r})"
            logger.error("watcher: could not start", exc_info=exc)
            self._task = None

    async def stop(self) -> WatcherStatus:
        """Stop watching (no-op when stopped): cancel the task, close the source, forget pending changes."""
        async with self._lock:
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
                self._debouncer.discard()
                self._missing = ()
                self._fallback_reason = self._failure = None
                self._mode = self._configured_mode
                await self._publish()
        return self.status()

    # --- the task ---------------------------------------------------------------------------------

    async def _run(self, trigger: SyncTrigger, first_round: asyncio.Event, catch_up: bool = True) -> None:
        helpers = [asyncio.create_task(self._fire_forever(), name="gql-media-watcher-fire")]
        if self._reconcile_interval_s > 0:
            helpers.append(asyncio.create_task(self._reconcile_forever(), name="gql-media-watcher-reconcile"))
        try:
            await self._watch_forever(trigger, first_round, catch_up)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.wait(helpers)

    async def _watch_forever(self, trigger: SyncTrigger, first_round: asyncio.Event, catch_up: bool = True) -> None:
        failures = 0
        reconcile_due = catch_up
        while True:
            present, self._missing = await asyncio.to_thread(_split_roots, self._roots)
            source: ChangeSource | None = None
            delay_s = 0.0
            try:
                if present:
                    source = self._factory(present, force_polling=self._polling)
                    await source.open()
                    self._mode = source.mode
                failures = 0
                self._failure = None
                if reconcile_due:
                    reconcile_due = False
                    await self._reconcile(present, trigger)
                    trigger = SyncTrigger.WATCHER
                first_round.set()
                await self._publish()
                await self._follow(source)
                # A missing root came back: watch it too, and catch up on it.
                reconcile_due = True
            except Exception as exc:
                reconcile_due = True
                if isinstance(exc, RootMissingError):
                    # Re-open at once: the next round leaves the missing root out and reports it.
                    logger.warning("watcher: root %s disappeared", exc.filename)
                elif isinstance(exc, WatchLimitError) and not self._polling:
                    self._fall_back_to_polling(
                        f"the OS ran out of file watches ({exc}): raise fs.inotify.max_user_watches "
                        f"(now {_read_max_user_watches()}), e.g. `sysctl fs.inotify.max_user_watches=524288`; "
                        "polling meanwhile"
                    )
                else:
                    failures += 1
                    delay_s = min(self._retry_delay_s * 2 ** (failures - 1), self._max_retry_delay_s)
                    self._failure = f"watching failed ({type(exc).__name__}: {exc}); retrying in {delay_s:g} s"
                    logger.exception("watcher: watching failed, retrying in %g s", delay_s)
                    if failures >= _FAILURES_BEFORE_POLLING and not self._polling:
                        self._fall_back_to_polling(f"native watching failed {failures} times: polling meanwhile")
                    if not first_round.is_set():
                        # Whatever the watch does, the first thing a start does is catch up with the disk.
                        await self._reconcile(present, trigger)
                        trigger = SyncTrigger.WATCHER
                        first_round.set()
                    await self._publish()
            finally:
                if source is not None:
                    await source.aclose()
            if delay_s:
                await asyncio.sleep(delay_s)

    def _fall_back_to_polling(self, reason: str) -> None:
        self._polling = True
        self._mode = WatchMode.POLLING
        self._fallback_reason = reason
        logger.warning("watcher: %s", reason)

    async def _follow(self, source: ChangeSource | None) -> None:
        """Feed the debouncer until the source fails, or until a missing root comes back."""
        tasks: set[asyncio.Task[None]] = set()
        if source is not None:
            tasks.add(asyncio.create_task(self._pump(source)))
        if self._missing:
            tasks.add(asyncio.create_task(self._wait_for_missing_roots()))
        if not tasks:
            await asyncio.Event().wait()  # no roots at all: nothing to do until stopped
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in done:
            task.result()

    async def _pump(self, source: ChangeSource) -> None:
        batches = aiter(source)
        try:
            async for batch in batches:
                if not batch:
                    continue
                was_idle = not self._debouncer.has_pending
                self._debouncer.add(batch)
                self._last_event_at = self._wall_clock()
                self._wake.set()
                if was_idle and self._debouncer.has_pending:
                    await self._publish()
        finally:
            # An async generator left suspended would be finalized later, in a task of its own.
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                await aclose()
        raise RuntimeError("the change source ended by itself")

    async def _wait_for_missing_roots(self) -> None:
        while True:
            await asyncio.sleep(self._retry_delay_s)
            _, missing = await asyncio.to_thread(_split_roots, self._missing)
            if len(missing) < len(self._missing):
                logger.info("watcher: missing root(s) back: %s", set(self._missing) - set(missing))
                return

    async def _fire_forever(self) -> None:
        while True:
            due = self._debouncer.due_at()
            if due is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay_s = due - self._clock()
            if delay_s > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay_s):
                        await self._wake.wait()
                continue
            try:
                await self._fire()
            except Exception:
                logger.exception("watcher: a fire failed")

    async def _fire(self) -> None:
        fire = self._debouncer.take()
        if fire.files_to_look:
            # Looked at before the submit, so the sync that follows sees at least what the look saw.
            self._debouncer.observe(await asyncio.to_thread(_look_at_files, fire.files_to_look))
        if fire.targets:
            await self._submit(fire.targets, SyncTrigger.WATCHER)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reconcile_interval_s)
            logger.info("watcher: periodic reconcile")
            await self._reconcile(self._roots, SyncTrigger.WATCHER)

    async def _reconcile(self, roots: Sequence[str], trigger: SyncTrigger) -> None:
        await self._submit(tuple(SyncTarget(root, recursive=True) for root in roots), trigger)

    async def _submit(self, targets: tuple[SyncTarget, ...], trigger: SyncTrigger) -> None:
        # A missing root is not synced: a sync would take it for emptied and drop its index.
        targets = tuple(t for t in targets if not self._is_missing(t.path))
        if not targets:
            return
        request = SyncRequest(mode=SyncMode.INCREMENTAL, trigger=trigger, targets=targets)
        try:
            await self._submitter.submit(request)
        except Exception as exc:
            self._submit_failures += 1
            if self._submit_failures == 1:
                logger.exception("watcher: could not queue a sync; retrying after the next quiet period")
            self._failure = f"could not queue a sync ({type(exc).__name__}: {exc}); retrying"
            self._debouncer.add_targets(targets)
            self._wake.set()
        else:
            if self._submit_failures:
                self._submit_failures = 0
                self._failure = None
            self._last_sync_at = self._wall_clock()
        await self._publish()

    async def _publish(self) -> None:
        if self._on_status is None:
            return
        try:
            await self._on_status(self.status())
        except Exception:
            logger.exception("watcher: publishing the status failed")

    def _is_missing(self, path: str) -> bool:
        return any(path == root or path.startswith(root + "/") for root in self._missing)

    def _missing_text(self) -> str | None:
        if not self._missing:
            return None
        return (
            f"root(s) missing (deleted or unmounted?): {', '.join(self._missing)}; not watched and not synced, "
            f"their index is kept; looking again every {self._retry_delay_s:g} s"
        )


def _split_roots(roots: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(roots that are folders now, roots that are not). Blocking: run in a thread."""
    present = tuple(r for r in roots if os.path.isdir(r))
    return present, tuple(r for r in roots if r not in present)


def _look_at_files(paths: Sequence[str]) -> Mapping[str, FileLook | None]:
    """Size and mtime of each regular file, None for anything else. Blocking: run in a thread."""
    looks: dict[str, FileLook | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            looks[path] = None
            continue
        looks[path] = (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None
    return looks


def _read_max_user_watches() -> str:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "unknown"
