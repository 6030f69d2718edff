"""How ``gql-media sync --wait`` shows a job's progress: a rich bar on a terminal, plain lines in a pipe."""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

# In a pipe, a line on every change of state or phase, and otherwise at most one this often.
PLAIN_LINE_INTERVAL_S = 1.0


def counts(progress: Mapping[str, Any]) -> str:
    """``+added ~updated -removed >moved !failed``."""
    return "+{added} ~{updated} -{removed} >{moved} !{failed}".format(
        **{key: progress.get(key, 0) for key in ("added", "updated", "removed", "moved", "failed")}
    )


class ProgressView(abc.ABC):
    """Shows the ``SyncProgress`` events of one job, inside a ``with`` block that ``close``s it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @abc.abstractmethod
    def show(self, progress: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class BarView(ProgressView):
    """A rich progress bar (for a terminal); it disappears when the job ends."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.fields[phase]:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        self._bar.start()
        self._task = self._bar.add_task("sync", total=None, phase="QUEUED", counts="")
        return self

    def close(self) -> None:
        self._bar.stop()

    def show(self, progress: Mapping[str, Any]) -> None:
        assert self._task is not None, "use the view as a context manager"
        self._bar.update(
            self._task,
            completed=progress.get("done") or 0,
            total=progress.get("total"),
            phase=str(progress.get("phase", "")),
            counts=counts(progress),
        )


class LineView(ProgressView):
    """Plain lines (for a pipe or a log): ``STATE PHASE done/total +a ~u -r >m !f``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last_key: tuple[str, str] | None = None
        self._last_at = 0.0

    def close(self) -> None:
        self._out.flush()

    def show(self, progress: Mapping[str, Any]) -> None:
        key = (str(progress.get("state")), str(progress.get("phase")))
        now = time.monotonic()
        if key == self._last_key and now - self._last_at < PLAIN_LINE_INTERVAL_S:
            return
        self._last_key, self._last_at = key, now
        total = progress.get("total")
        done = f"{progress.get('done', 0)}/{'?' if total is None else total}"
        print(f"{key[0]} {key[1]} {done} {counts(progress)}", file=self._out, flush=True)


def progress_view(out: TextIO) -> ProgressView:
    """A bar when ``out`` is a terminal, plain lines otherwise."""
    if out.isatty():
        return BarView(Console(file=out))
    return LineView(out)
