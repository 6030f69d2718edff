"""The client subcommands: ``sync``, ``watch``, ``status`` and ``roots`` against a running server, over GraphQL only.

Exit codes: 0 done (``sync --wait``: the job SUCCEEDED), 1 the job FAILED, 2 it was CANCELLED,
3 the server could not be reached or refused (the reason is printed), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import sys
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from gql_media.client.connection import ClientError, GraphQLClient, ServerAddress
from gql_media.client.progress import counts, progress_view


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    CANCELLED = 2
    UNAVAILABLE = 3
    INTERRUPTED = 130


_EXIT_BY_STATE = {"SUCCEEDED": ExitCode.OK, "FAILED": ExitCode.FAILED, "CANCELLED": ExitCode.CANCELLED}
_PROGRESS_FIELDS = "sequence jobId state phase done total currentPath added updated removed moved failed elapsedSeconds"
START_SYNC = f"""mutation StartSync($mode: SyncMode!, $path: String) {{
  syncLibrary(mode: $mode, path: $path) {{ id state mode paths progress {{ {_PROGRESS_FIELDS} }} }}
}}"""
FOLLOW_SYNC = f"subscription FollowSync($id: ID!) {{ syncProgress(jobId: $id) {{ {_PROGRESS_FIELDS} }} }}"
SYNC_RESULT = f"""query SyncResult($id: ID!) {{
  node(id: $id) {{ ... on SyncJob {{ id state mode paths startedAt finishedAt
    progress {{ {_PROGRESS_FIELDS} }} errors {{ path message }} }} }}
}}"""
LIBRARY_CHANGES = """subscription LibraryChanges($under: String) {
  libraryChanged(underPath: $under) { sequence kind id path oldPath rootPath jobId }
}"""
STATUS = f"""query Status {{
  watcher {{ enabled mode error roots pendingPaths settleMs lastEventAt lastSyncAt leader }}
  currentSync {{ id state mode trigger paths progress {{ {_PROGRESS_FIELDS} }} }}
  roots {{ name path rootPath videoCount(recursive: true) totalSize(recursive: true) }}
}}"""
ROOTS = "query Roots { roots { rootPath videoCount(recursive: true) totalSize(recursive: true) } }"
ADD_ROOT = "mutation AddRoot($path: String!) { addRoot(path: $path) { rootPath } }"
REMOVE_ROOT = "mutation RemoveRoot($path: String!) { removeRoot(path: $path) }"
_ERRORS_SHOWN = 20


@dataclass
class ClientRun:
    """One client subcommand's run: what it started, so an interruption can say what goes on."""

    address: ServerAddress
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    job_id: str | None = None

    def run(self, command: Coroutine[Any, Any, ExitCode]) -> int:
        """Run ``command``; a ClientError becomes exit code 3 with its reason, Ctrl-C exit code 130."""
        try:
            return int(asyncio.run(command))
        except ClientError as error:
            print(f"gql-media: {error}", file=self.err)
            return ExitCode.UNAVAILABLE
        except KeyboardInterrupt:
            if self.job_id is not None:
                print(
                    f"gql-media: interrupted; sync job {self.job_id} keeps running on the server "
                    "(`gql-media status` shows it)",
                    file=self.err,
                )
            else:
                print("gql-media: interrupted", file=self.err)
            return ExitCode.INTERRUPTED

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ------------------------------------------------------------------ sync

    async def sync(self, path: str | None, *, full: bool, wait: bool) -> ExitCode:
        """Start ``syncLibrary``; with ``wait``, follow ``syncProgress`` to the end and exit by its state."""
        variables = {"mode": "FULL" if full else "INCREMENTAL", "path": _server_path(path)}
        async with GraphQLClient(self.address) as client:
            job = (await client.execute(START_SYNC, variables))["syncLibrary"]
            self.job_id = job["id"]
            scope = ", ".join(job["paths"]) or "every root"
            self.say(f"sync job {job['id']}: {job['state']} ({job['mode']}: {scope})")
            if not wait:
                return ExitCode.OK
            last: Mapping[str, Any] = job["progress"]
            async with client.subscription(FOLLOW_SYNC, {"id": job["id"]}) as events:
                with progress_view(self.out) as view:
                    async for event in events:
                        last = event["syncProgress"]
                        view.show(last)
            if last["state"] not in _EXIT_BY_STATE:
                raise ClientError(f"the server ended the progress of sync job {job['id']} before its end")
            # The server stores a job's end before its last event: this read finds it ended.
            result = (await client.execute(SYNC_RESULT, {"id": job["id"]}))["node"]
        self._summarize(job["id"], last, result)
        return _EXIT_BY_STATE[last["state"]]

    def _summarize(self, job_id: str, progress: Mapping[str, Any], job: Mapping[str, Any] | None) -> None:
        self.say(
            f"sync job {job_id}: {progress['state']} in {progress['elapsedSeconds']:.2f} s; "
            f"added {progress['added']}, updated {progress['updated']}, removed {progress['removed']}, "
            f"moved {progress['moved']}, errors {progress['failed']}"
        )
        errors = [] if job is None else job["errors"]
        for error in errors[:_ERRORS_SHOWN]:
            self.say(f"  error: {error['path']}: {error['message']}")
        if len(errors) > _ERRORS_SHOWN:
            self.say(f"  ... and {len(errors) - _ERRORS_SHOWN} more errors")

    # ------------------------------------------------------------------ watch

    async def watch(self, under: str | None) -> ExitCode:
        """Print every ``libraryChanged`` event as one JSON line, until interrupted or the server goes."""
        async with (
            GraphQLClient(self.address) as client,
            client.subscription(LIBRARY_CHANGES, {"under": under}) as events,
        ):
            print(f"gql-media: watching {self.address.base_url} (Ctrl-C stops)", file=self.err, flush=True)
            async for event in events:
                self.say(json.dumps(event["libraryChanged"], separators=(",", ":")))
        raise ClientError("the server ended the subscription")

    # ------------------------------------------------------------------ status

    async def status(self, *, as_json: bool) -> ExitCode:
        """The watcher, the current job and the roots: a table, or one JSON document."""
        async with GraphQLClient(self.address) as client:
            data = await client.execute(STATUS)
        if as_json:
            self.say(json.dumps(data, indent=2))
        else:
            _print_status(data, Console(file=self.out, width=120 if not self.out.isatty() else None))
        return ExitCode.OK

    # ------------------------------------------------------------------ roots

    async def roots_list(self, *, as_json: bool) -> ExitCode:
        """The library roots with their video counts and sizes: a table, or one JSON document."""
        async with GraphQLClient(self.address) as client:
            data = await client.execute(ROOTS)
        if as_json:
            self.say(json.dumps(data["roots"], indent=2))
        else:
            _print_roots(data["roots"], Console(file=self.out, width=120 if not self.out.isatty() else None))
        return ExitCode.OK

    async def roots_add(self, path: str) -> ExitCode:
        """Add a library folder (indexed and watched by the server at once); a refusal says which rule."""
        async with GraphQLClient(self.address) as client:
            added = (await client.execute(ADD_ROOT, {"path": _server_path(path)}))["addRoot"]
        self.say(f"library root added: {added['rootPath']} (indexing; `gql-media status` shows the job)")
        return ExitCode.OK

    async def roots_remove(self, path: str) -> ExitCode:
        """Remove a library folder added at run time: the server forgets its index; its files stay."""
        async with GraphQLClient(self.address) as client:
            await client.execute(REMOVE_ROOT, {"path": _server_path(path)})
        self.say(f"library root removed: {_server_path(path)} (its files were not touched)")
        return ExitCode.OK


def _server_path(path: str | None) -> str | None:
    """A relative PATH that exists here is made absolute; otherwise the server reads it (relative to its root)."""
    if path is None or os.path.isabs(path) or not os.path.exists(path):
        return path
    return os.path.abspath(path)


def _print_status(data: Mapping[str, Any], console: Console) -> None:
    watcher = data["watcher"]
    state = "on" if watcher["enabled"] else "off"
    table = Table(title="gql_media", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("watcher", f"{state} ({watcher['mode']}, settle {watcher['settleMs']} ms)")
    if watcher["error"]:
        table.add_row("watcher error", str(watcher["error"]))
    table.add_row("pending paths", str(watcher["pendingPaths"]))
    table.add_row("last sync", str(watcher["lastSyncAt"] or "-"))
    if watcher["leader"]:
        table.add_row("leader", str(watcher["leader"]))
    job = data["currentSync"]
    if job is None:
        table.add_row("current job", "none")
    else:
        progress = job["progress"]
        total = progress["total"]
        table.add_row(
            "current job",
            f"{job['id']} {job['state']} {job['mode']} ({job['trigger']}) {progress['phase']} "
            f"{progress['done']}/{'?' if total is None else total} {counts(progress)}",
        )
    console.print(table)
    _print_roots(data["roots"], console)


def _print_roots(roots: list[Mapping[str, Any]], console: Console) -> None:
    table = Table(title="roots", title_justify="left")
    for column in ("path", "videos", "size"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for root in roots:
        table.add_row(root["rootPath"], str(root["videoCount"]), _size(int(root["totalSize"])))
    console.print(table)


def _size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size_bytes} B"
