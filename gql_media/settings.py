"""All configuration, read once: environment variables ``GQL_MEDIA_*`` and CLI flags on top."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_PACKAGE = Path(__file__).resolve().parent
# A source checkout's build (`make frontend`), else the UI a wheel carries (setup.py puts it there).
_FRONTEND_DIST = _PACKAGE.parent / "frontend-example" / "dist"
_PACKAGED_UI = _PACKAGE / "static"


def _default_frontend_dir() -> Path:
    """The checkout's frontend-example/dist when built, else the wheel's gql_media/static when present."""
    if not (_FRONTEND_DIST / "index.html").is_file() and (_PACKAGED_UI / "index.html").is_file():
        return _PACKAGED_UI
    return _FRONTEND_DIST


def _split_list(value: object, separators: tuple[str, ...] = (",", os.pathsep)) -> object:
    """Lists in the environment are comma- or os.pathsep-separated (JSON lists work too)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        for sep in separators:
            if sep in text:
                return [part.strip() for part in text.split(sep) if part.strip()]
        return [text] if text else []
    return value


class Settings(BaseSettings):
    """gql_media's settings. Every field can be set as ``GQL_MEDIA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GQL_MEDIA_", extra="ignore")

    roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # Where addRoot may add library folders (path prefixes); empty: anywhere the server can read.
    root_allow: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    data_dir: Path = Path(".gql_media")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    # Sync and watching.
    watch: bool = True
    watch_mode: Literal["native", "polling"] = "native"
    poll_delay_ms: int = 1000
    settle_ms: int = 300
    max_wait_ms: int = 3000
    file_settle_ms: int = 2000
    watch_retry_delay_s: float = 2.0
    watch_queue_size: int = 10_000
    reconcile_interval_s: float = 6 * 3600.0
    sync_batch_size: int = 2000
    # A job adding, removing or moving more entries than this publishes one SUBTREE_CHANGED per
    # changed folder subtree instead of one change per entry.
    sync_summary_threshold: int = Field(default=2000, ge=0)
    # A first index's walk runs in a process of its own beside the writer (``core/sync/walk_process.py``);
    # off: in a thread of the server's.
    sync_walk_process: bool = True

    # Media.
    media_workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    media_timeout_s: float = 60.0
    # How much lower the media workers run than the server (os.nice): queries get the CPU first.
    media_worker_nice: int = Field(default=10, ge=0, le=19)
    # On Linux the media workers also run under SCHED_IDLE: they get only the CPU time nothing else
    # wants, and a query's threads take a core from them as soon as they wake (bench P9; the curve
    # of workers and priority: ``python -m bench.p9_curve``). Off: the niceness alone.
    media_worker_idle: bool = True
    thumbnail_width: int = 320
    thumbnail_format: Literal["jpeg", "webp"] = "jpeg"
    hls_auto_merge: bool = True
    hls_delete_source: bool = False

    # Playback (issue 14): HLS made on the fly for what browsers cannot play as it is.
    transcode: bool = True
    transcode_max_height: int = Field(default=1080, ge=144)
    transcode_preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
    ] = "veryfast"
    # Segments made at once (worker processes of their own, apart from probes and thumbnails).
    transcode_workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1) // 2), ge=1)
    # A segment request waits this long for a free worker, then gets 503 + Retry-After.
    transcode_wait_s: float = 5.0
    # A segment whose viewer left is made on this long, for a player's retry to join (0: stopped at once).
    transcode_abandoned_grace_s: float = Field(default=5.0, ge=0)
    transcode_cache_mb: int = Field(default=2048, ge=0)

    # API.
    api_token: str | None = None
    public_read: bool = False
    signed_url_ttl_s: int = 6 * 3600
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Host names the server answers besides loopback, --host and (off loopback) the machine's own:
    # e.g. a reverse proxy's name. Every other Host gets a 400 (DNS rebinding).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Off loopback with no api_token, mutations and subscriptions are refused unless this is set.
    allow_unauthenticated: bool = False
    max_query_depth: int = 15
    max_aliases: int = 100
    max_tokens: int = 10_000
    # The executor's fast paths (api/execution.py); off, the API runs on graphql-core's and
    # Strawberry's plain paths (same results, slower): for a library upgrade or to rule them out.
    fast_paths: bool = True
    frontend_dir: Path = Field(default_factory=_default_frontend_dir)

    # Scale-out.
    broadcast_url: str = "memory://"
    # Redis channel or PostgreSQL NOTIFY channel; replicas of one library share it.
    broadcast_channel: str = "gql_media_events"
    # This replica's name in the watcher status and the logs; default "<host>:<port>/<pid>".
    instance_name: str | None = None
    # How often a follower tries the leader lock (failover takes about this plus the leader's start).
    leader_poll_s: float = 1.0

    @field_validator("roots", "root_allow", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _parse_comma_list(cls, value: object) -> object:
        # Commas only: origins and hosts hold ":" ("http://host:8080", "[::1]"), the path separator of roots.
        return _split_list(value, (",",))

    @field_validator("roots", "root_allow")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        return [Path(os.path.abspath(os.path.expanduser(p))) for p in value]

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return Path(os.path.abspath(os.path.expanduser(value)))

    @property
    def effective_database_url(self) -> str:
        """``database_url``, or the SQLite file ``<data_dir>/library.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'library.db'}"

    @property
    def instance(self) -> str:
        """``instance_name``, or ``<host>:<port>/<pid>``."""
        return self.instance_name or f"{socket.gethostname()}:{self.port}/{os.getpid()}"

    @property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def transcode_cache_dir(self) -> Path:
        return self.data_dir / "transcode-cache"

    @property
    def root_paths(self) -> list[str]:
        return [str(p) for p in self.roots]
