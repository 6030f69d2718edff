"""What runs on the leader: its workers for one term, and the dispatch table of the commands they run."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, cast

from gql_media.cluster.commands import (
    AddRoot,
    CancelJob,
    Command,
    MergeHls,
    RegenerateThumbnail,
    RemoveRoot,
    RootAnswer,
    SetWatcher,
    SubmitSync,
)
from gql_media.core.jobs import JobRunner
from gql_media.core.media_work import MediaWork
from gql_media.core.models import MergeOutcome, Root, WatcherStatus
from gql_media.core.roots import LibraryRoots, RootRefused
from gql_media.core.watching import WatchService

__all__ = ["HANDLERS", "LeaderTerm", "Workers", "execute"]

R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True)
class Workers:
    """The objects that change the library: one set per process on SQLite, one per leader's term on PostgreSQL.

    ``gql_media.services`` builds them; ``media`` is None without media work. ``roots`` adds and
    removes library roots (it keeps this runner and watcher in step).
    """

    runner: JobRunner
    watcher: WatchService
    media: MediaWork | None
    roots: LibraryRoots | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LeaderTerm:
    """This replica's workers while it leads; ``instance`` names it in the watcher's status."""

    instance: str
    workers: Workers


async def _submit_sync(term: LeaderTerm, command: SubmitSync) -> int:
    return (await term.workers.runner.submit(command.request)).id


async def _cancel_job(term: LeaderTerm, command: CancelJob) -> int | None:
    job = await term.workers.runner.cancel(command.job_id)
    return None if job is None else job.id


async def _set_watcher(term: LeaderTerm, command: SetWatcher) -> WatcherStatus:
    watcher = term.workers.watcher
    status = await (watcher.start(command.trigger) if command.enabled else watcher.stop())
    return dataclasses.replace(status, leader=term.instance)


def _media(term: LeaderTerm) -> MediaWork:
    media = term.workers.media
    if media is None:
        raise RuntimeError("the media service is not set up on the leader")
    return media


async def _regenerate_thumbnail(term: LeaderTerm, command: RegenerateThumbnail) -> str | None:
    return await _media(term).regenerate_thumbnail(command.video_id)


async def _merge_hls(term: LeaderTerm, command: MergeHls) -> MergeOutcome:
    return await _media(term).merge_hls(command.path, command.delete_source)


def _roots(term: LeaderTerm) -> LibraryRoots:
    roots = term.workers.roots
    if roots is None:
        raise RuntimeError("library roots cannot be changed on the leader")
    return roots


async def _answer(change: Awaitable[Root]) -> RootAnswer:
    """The root that ``change`` (an add or a remove) gives, or the rule that refused it, for the wire."""
    try:
        return RootAnswer(root=await change)
    except RootRefused as refused:
        return RootAnswer.refusal(refused)


async def _add_root(term: LeaderTerm, command: AddRoot) -> RootAnswer:
    return await _answer(_roots(term).add(command.path))


async def _remove_root(term: LeaderTerm, command: RemoveRoot) -> RootAnswer:
    return await _answer(_roots(term).remove(command.path))


# Each handler takes its own command type (hence Any here) and answers with that command's result.
Handler = Callable[[LeaderTerm, Any], Awaitable[object]]

HANDLERS: Mapping[type[Command[Any]], Handler] = MappingProxyType(
    {
        SubmitSync: _submit_sync,
        CancelJob: _cancel_job,
        SetWatcher: _set_watcher,
        RegenerateThumbnail: _regenerate_thumbnail,
        MergeHls: _merge_hls,
        AddRoot: _add_root,
        RemoveRoot: _remove_root,
    }
)


async def execute(term: LeaderTerm, command: Command[R]) -> R:
    """Run ``command`` with the term's workers; ``ValueError`` for a command without a handler."""
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise ValueError(f"no handler for the {command.kind!r} command")
    # The table pairs each command type with the handler answering its R.
    return cast(R, await handler(term, command))
