"""The ``gql-media`` command: ``serve``, ``scan`` and ``export-schema``; and ``sync``, ``watch`` and
``status``, clients of a running server (``gql_media.client``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gql_media.core.models import JobState, SyncJob, SyncMode, SyncRequest, SyncTarget, SyncTrigger
from gql_media.settings import Settings

logger = logging.getLogger(__name__)


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "database_url", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "roots", None):
        overrides["roots"] = [Path(r) for r in args.roots]
    if getattr(args, "no_watch", False):
        overrides["watch"] = False
    return Settings(**overrides)


def _check_roots(settings: Settings) -> str | None:
    for root in settings.roots:
        if not root.is_dir():
            return f"gql-media: {root} is not a folder"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gql-media", description="A GraphQL server for a local video library.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (a demo library when no ROOT is given)")
    serve.add_argument("roots", nargs="*", metavar="ROOT", help="library folders")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--database-url")
    serve.add_argument("--no-watch", action="store_true", help="do not watch the roots for changes")

    scan = commands.add_parser("scan", help="sync the index with the disk once, in the foreground")
    scan.add_argument("roots", nargs="+", metavar="ROOT", help="library folders")
    scan.add_argument("--full", action="store_true", help="a FULL sync instead of INCREMENTAL")
    scan.add_argument("--data-dir", type=Path)
    scan.add_argument("--database-url")

    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    _add_client_commands(commands)
    return parser


def _add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands that talk to a running server over its GraphQL API (never to the database)."""
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--server", help="the server's URL (default: $GQL_MEDIA_SERVER, else http://127.0.0.1:8000)")
    client.add_argument("--token", help="the API token (default: $GQL_MEDIA_API_TOKEN)")
    exits = "exit codes: 0 succeeded, 1 failed, 2 cancelled, 3 server unreachable or refused, 130 interrupted"
    sync = commands.add_parser(
        "sync", parents=[client], help="start a sync on a running server (--wait: follow it)", epilog=exits
    )
    sync.add_argument("path", nargs="?", metavar="PATH", help="a folder inside a root (default: every root)")
    sync.add_argument("--full", action="store_true", help="a FULL sync instead of INCREMENTAL")
    sync.add_argument("--wait", action="store_true", help="follow the job to its end; the exit code tells how it went")
    watch = commands.add_parser("watch", parents=[client], help="print library changes as JSON lines")
    watch.add_argument("--under", metavar="PATH", help="only changes under this folder")
    status = commands.add_parser("status", parents=[client], help="a running server's watcher, current job and roots")
    status.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    roots = commands.add_parser("roots", help="list, add or remove library folders of a running server")
    actions = roots.add_subparsers(dest="roots_command", required=True)
    listing = actions.add_parser("list", parents=[client], help="the library folders, their videos and sizes")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    add = actions.add_parser("add", parents=[client], help="add a library folder: indexed and watched at once")
    add.add_argument("path", metavar="PATH", help="the folder (absolute on the server; a local one is made absolute)")
    remove = actions.add_parser(
        "remove", parents=[client], help="forget a library folder added at run time (its files are never touched)"
    )
    remove.add_argument("path", metavar="PATH", help="the library folder")


def _run_client(args: argparse.Namespace) -> int:
    from gql_media.client.commands import ClientRun, ExitCode
    from gql_media.client.connection import ClientError, ServerAddress

    try:
        run = ClientRun(ServerAddress.from_options(args.server, args.token))
    except ClientError as error:
        print(f"gql-media: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    if args.command == "sync":
        return run.run(run.sync(args.path, full=args.full, wait=args.wait))
    if args.command == "watch":
        return run.run(run.watch(args.under))
    if args.command == "roots":
        if args.roots_command == "add":
            return run.run(run.roots_add(args.path))
        if args.roots_command == "remove":
            return run.run(run.roots_remove(args.path))
        return run.run(run.roots_list(as_json=args.json))
    return run.run(run.status(as_json=args.json))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Our own messages at the chosen level; the libraries' (alembic, databases) only when they warn.
    # A server's lines say when (it runs for days); a one-off command's need not.
    stamp = _TIMESTAMP if args.command == "serve" else ""
    logging.basicConfig(level=logging.WARNING, format=f"{stamp}%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gql_media").setLevel(os.environ.get("GQL_MEDIA_LOG_LEVEL", "info").upper())
    if args.command == "export-schema":
        from gql_media.api.schema import export_sdl

        sys.stdout.write(export_sdl())
        return 0
    if args.command in ("sync", "watch", "status", "roots"):
        return _run_client(args)
    settings = _settings_from(args)
    if args.command == "scan":
        problem = _check_roots(settings)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        return asyncio.run(scan(settings, full=args.full))
    return serve(settings)


# In front of every line a server logs, uvicorn's own (its requests, start and stop) included.
_TIMESTAMP = "%(asctime)s "


def _uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its lines stamped with the time like ours."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["fmt"] = _TIMESTAMP + formatter["fmt"]
    return config


def serve(settings: Settings) -> int:
    """Run the server with uvicorn until interrupted."""
    import uvicorn

    from gql_media.app import create_app

    if not settings.roots:
        from gql_media.adapters.demo import make_demo_library

        demo = settings.data_dir / "demo-library"
        make_demo_library(demo)
        settings = settings.model_copy(update={"roots": [demo]})
        print(f"gql-media: no library given; serving the demo library in {demo}", file=sys.stderr)
    problem = _check_roots(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    print(f"gql-media: http://{settings.host}:{settings.port}/  (GraphQL at /graphql)", file=sys.stderr)
    # No permessage-deflate: its zlib state (~40 KB a connection, compressor and decompressor) and
    # a compression per message cost more than they save for small JSON events on a local network.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=_uvicorn_log_config(),
        ws_per_message_deflate=False,
        # Longer than uvicorn's 5 s: while a big sync keeps the server busy, an idle keep-alive
        # connection must not be closed just as its client sends the next request.
        timeout_keep_alive=30,
    )
    return 0


async def scan(settings: Settings, *, full: bool = False) -> int:
    """Sync the roots once with a progress bar and print a summary; 1 when the job failed."""
    from rich.console import Console

    from gql_media.client.progress import BarView
    from gql_media.services import open_services

    console = Console(stderr=True)
    started = time.perf_counter()
    async with open_services(settings, media=False) as services:
        mode = SyncMode.FULL if full else SyncMode.INCREMENTAL
        progress_events = services.bus.subscribe_progress()
        job = await services.runner.submit(
            SyncRequest(mode, SyncTrigger.MANUAL, tuple(SyncTarget(r) for r in settings.root_paths))
        )
        with BarView(console) as bar:
            async for event in progress_events:
                if event.job_id != job.id:
                    continue
                bar.show(dataclasses.asdict(event))
                if event.state.is_terminal:
                    break
        await progress_events.aclose()
        final = await services.runner.wait(job.id)
        folders, videos = await services.index.count_entries()
    elapsed = time.perf_counter() - started
    assert final is not None
    _print_summary(final, elapsed, folders, videos)
    return 0 if final.state is JobState.SUCCEEDED else 1


def _print_summary(job: SyncJob, elapsed_s: float, folders: int, videos: int) -> None:
    p = job.progress
    touched = p.added + p.updated + p.removed + p.moved
    rate = (folders + videos) / elapsed_s if elapsed_s > 0 else 0.0
    print(f"sync {job.id}: {job.state.value} in {elapsed_s:.2f} s")
    print(f"  added {p.added}, updated {p.updated}, removed {p.removed}, moved {p.moved}, errors {p.failed}")
    print(f"  index: {folders} folders, {videos} videos; {touched} changes; {rate:,.0f} entries/s")
    for error in job.errors[:20]:
        print(f"  error: {error.path}: {error.message}")
    if len(job.errors) > 20:
        print(f"  ... and {len(job.errors) - 20} more errors")
