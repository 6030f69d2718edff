"""Which PostgreSQL the tests use, and the embedded one started when the machine has none.

Chosen once per test session, in this order:

1. ``GQL_MEDIA_TEST_POSTGRES_URL`` when set: explicit, so a server that cannot be reached fails the run.
2. The server at 127.0.0.1:5432 when it answers.
3. An embedded PostgreSQL 16: the binaries of the ``pgserver`` wheel, a data folder in a new temp
   folder, listening on 127.0.0.1 at a free port; started on first use and always stopped.

``GQL_MEDIA_TEST_POSTGRES=embedded`` forces the embedded server, ``=0`` skips every PostgreSQL test.
The embedded server listens on TCP (pgserver's own ``get_server`` offers a Unix socket only): the
replicas of tests/scaleout and every URL the tests build need a host and a port.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from tests.processes import free_port

MACHINE_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The user an embedded server runs as when the tests run as root (PostgreSQL refuses root).
UNPRIVILEGED_USER = "nobody"


def requested_mode() -> str:
    """``off``, ``embedded``, ``explicit`` or ``auto`` from the environment."""
    forced = os.environ.get("GQL_MEDIA_TEST_POSTGRES", "").strip().lower()
    if forced in ("0", "off", "no", "false"):
        return "off"
    if forced == "embedded":
        return "embedded"
    if os.environ.get("GQL_MEDIA_TEST_POSTGRES_URL"):
        return "explicit"
    if forced not in ("", "1", "auto", "yes", "true"):
        raise ValueError(f"GQL_MEDIA_TEST_POSTGRES={forced!r}: use 0, embedded or leave it unset")
    return "auto"


def answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointing at database ``name`` instead (keeps user, host, port and query)."""
    parts = urlsplit(admin_url)
    return parts._replace(path="/" + name).geturl()


def _pgserver_bin() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "no PostgreSQL for the tests: none answers at 127.0.0.1:5432 and the `pgserver` package is not"
            " installed (`make venv` installs it; or set GQL_MEDIA_TEST_POSTGRES=0 to skip PostgreSQL)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server of the ``pgserver`` wheel's binaries in a temp folder, on 127.0.0.1."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gqlm-pg-")))
    port: int = 0
    start_s: float = 0.0
    _as_user: str | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout_s: float = 120) -> None:
        result = subprocess.run(
            list(args),
            user=self._as_user,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n{tail}")

    def start(self) -> None:
        begin = time.monotonic()
        source = _pgserver_bin().parent
        install = self.root / "pgserver" / "pginstall"
        # Its own copy (hard links where it can): as root the server runs as an unprivileged user,
        # who may not be allowed to walk into the venv's folder. The binaries find their shared
        # libraries at $ORIGIN/../../../pgserver.libs (the wheel's layout), so that comes along.
        for part in ("bin", "lib", "share"):
            shutil.copytree(source / part, install / part, symlinks=True, copy_function=_link_or_copy)
        libs = source.parent.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.root / "pgserver.libs", symlinks=True, copy_function=_link_or_copy)
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        if os.geteuid() == 0:
            self._as_user = UNPRIVILEGED_USER
            for path in (self.root, sockets):
                shutil.chown(path, UNPRIVILEGED_USER)
            self.root.chmod(0o755)
        bin_dir = install / "bin"
        self._run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                  "--no-sync")  # fmt: skip
        for _attempt in range(3):  # a free port can be taken between the check and the server's bind
            self.port = free_port()
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {sockets}"
                # A throw-away server: durability buys nothing here.
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"),
                          "-o", options, "-w", "-t", "60", "start")  # fmt: skip
                break
            except RuntimeError:
                if answers("127.0.0.1", self.port):
                    continue
                raise
        self.start_s = time.monotonic() - begin
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the server (fast shutdown; killed if it will not stop) and remove its folder."""
        data = self.root / "data"
        pid_file = data / "postmaster.pid"
        if pid_file.is_file():
            try:
                pg_ctl = self.root / "pgserver" / "pginstall" / "bin" / "pg_ctl"
                self._run(str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)


@dataclass
class PostgresForTests:
    """The session's PostgreSQL: where it is, what kind it is, and fresh databases on it."""

    mode: str
    _admin_url: str | None = None
    _embedded: EmbeddedPostgres | None = None

    @classmethod
    def choose(cls) -> PostgresForTests:
        mode = requested_mode()
        if mode == "explicit":
            return cls("explicit", os.environ["GQL_MEDIA_TEST_POSTGRES_URL"])
        if mode == "auto" and answers("127.0.0.1", 5432):
            return cls("machine", MACHINE_URL)
        return cls("off" if mode == "off" else "embedded")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def describe(self) -> str:
        """One line for pytest's header."""
        if self.mode == "off":
            return "PostgreSQL: skipped (GQL_MEDIA_TEST_POSTGRES=0)"
        if self.mode == "embedded":
            return "PostgreSQL: embedded (pgserver's PostgreSQL 16 in a temp folder, started on first use)"
        where = urlsplit(self._admin_url or "")
        label = "GQL_MEDIA_TEST_POSTGRES_URL" if self.mode == "explicit" else "the machine's server"
        return f"PostgreSQL: {label} at {where.hostname}:{where.port or 5432}"

    @property
    def embedded(self) -> EmbeddedPostgres | None:
        return self._embedded

    def admin_url(self) -> str:
        """The URL of a database to run CREATE/DROP DATABASE from; starts the embedded server once."""
        if self._admin_url is None:
            embedded = EmbeddedPostgres()
            try:
                embedded.start()
            except BaseException:
                embedded.stop()
                raise
            self._embedded, self._admin_url = embedded, embedded.admin_url
        return self._admin_url

    async def check(self) -> None:
        """Connect once; an unreachable server is a clear error that names the URL."""
        url = self.admin_url()
        try:
            connection = await asyncpg.connect(url, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            raise RuntimeError(
                f"PostgreSQL for the tests ({self.mode}) cannot be reached at {url}: {error!r}"
            ) from error
        await connection.close()

    async def execute(self, statement: str) -> None:
        connection = await asyncpg.connect(self.admin_url())
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def create_database(self, prefix: str = "gqlm_test", icu: bool = False) -> str:
        """A new empty database with a unique name; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        if icu:
            # A natural-language default collation (as on most servers, unlike C.UTF-8), so an order
            # that depends on it, not on the schema's own collations, fails here. ICU needs
            # PostgreSQL 15 and a server built with it; otherwise the server's default.
            try:
                await self.execute(
                    f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
                    " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
                )
                return database_url(self.admin_url(), name)
            except asyncpg.PostgresError:
                pass
        await self.execute(f'CREATE DATABASE "{name}"')
        return database_url(self.admin_url(), name)

    async def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        await self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
