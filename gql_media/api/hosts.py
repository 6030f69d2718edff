"""Which ``Host`` headers the server answers, and whether it listens beyond loopback.

A web page can point a name of its own at 127.0.0.1 (DNS rebinding): the browser then treats the
server as that page's origin and lets it send anything. What such a request cannot hide is its
``Host`` header, which names the page's host. So every HTTP request and websocket handshake must
name one of this server's hosts, or it gets a 400 with an empty body and never reaches a route:

- ``localhost``, ``127.0.0.1`` and ``[::1]``, and the ``--host`` value;
- when listening beyond loopback: the machine's names (``gethostname``, its FQDN, ``<name>.local``)
  and any IP address of this machine (a page cannot make a browser send an IP literal of ours as
  the Host of its own origin);
- ``GQL_MEDIA_ALLOWED_HOSTS`` (a reverse proxy's name; ``*.example.com`` for a domain, ``*`` for any).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})
# Refused hosts are logged once each, up to this many (a rebinding page may try many names).
_LOGGED_REFUSALS_MAX = 64


@functools.lru_cache(maxsize=256)
def hostname_of(host: str) -> str | None:
    """The host name of a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``), lower case,
    without brackets, port or a final dot; None when it is not a valid Host value."""
    text = host.strip()
    if not text or any(c in text for c in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit("//" + text)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return None
    name = parts.hostname
    if not name or (":" in name and not text.startswith("[")):
        return None
    if ":" in name:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
    return name.rstrip(".") or None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@functools.lru_cache(maxsize=16)
def listens_beyond_loopback(bind_host: str) -> bool:
    """Whether a server bound to ``bind_host`` (the ``--host`` value) can be reached from other machines.

    A wildcard (``0.0.0.0``, ``::``) or any non-loopback address can; a name counts as loopback only
    when every address it resolves to is.
    """
    name = bind_host.strip().strip("[]").lower()
    if name in _WILDCARD_BINDS:
        return True
    if name == "localhost":
        return False
    address = _ip(name)
    if address is not None:
        return not address.is_loopback
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return True  # unknown: assume exposed (uvicorn will fail to bind anyway)
    resolved = {_ip(str(info[4][0]).split("%")[0]) for info in infos}
    return not resolved or any(a is None or not a.is_loopback for a in resolved)


@functools.lru_cache(maxsize=256)
def is_own_address(name: str) -> bool:
    """Whether ``name`` is an IP address of this machine (a socket can be bound to it; nothing is sent)."""
    address = _ip(name)
    if address is None or address.is_unspecified or address.is_multicast:
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


def machine_names() -> set[str]:
    """This machine's own names, lower case."""
    names = {socket.gethostname(), socket.getfqdn()}
    names.add(socket.gethostname().split(".")[0] + ".local")
    return {n.lower().rstrip(".") for n in names if n}


def default_hosts(bind_host: str) -> set[str]:
    """The host names a server bound to ``bind_host`` answers by default (without brackets)."""
    hosts = set(LOOPBACK_HOSTS)
    name = bind_host.strip().strip("[]").lower()
    if name not in _WILDCARD_BINDS:
        hosts.add(name)
    if listens_beyond_loopback(bind_host):
        hosts |= machine_names()
    return hosts


class HostAllowlist:
    """ASGI middleware: a request or websocket handshake whose ``Host`` is not allowed gets a bare 400.

    Like Starlette's ``TrustedHostMiddleware``, plus this machine's IP addresses when it listens beyond
    loopback, an empty body, and one log line per refused name so a proxy's missing name is easy to spot.
    """

    def __init__(self, app: ASGIApp, bind_host: str, extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self._exact = default_hosts(bind_host)
        self._suffixes: list[str] = []
        self._any = False
        for pattern in extra_hosts:
            pattern = pattern.strip().lower()
            if pattern == "*":
                self._any = True
            elif pattern.startswith("*.") and hostname_of(pattern[2:]) is not None:
                self._suffixes.append(pattern[1:])
            elif (name := hostname_of(pattern)) is not None:
                self._exact.add(name)
            else:
                raise ValueError(f"allowed_hosts: {pattern!r} is not a host name (e.g. media.example.com, *.lan)")
        self._own_addresses = listens_beyond_loopback(bind_host)
        self._logged: set[str] = set()

    def allows(self, host_header: str | None) -> bool:
        """Whether a request with this ``Host`` header value is answered."""
        if self._any:
            return True
        name = None if host_header is None else hostname_of(host_header)
        if name is None:
            return False
        if name in self._exact or any(name.endswith(suffix) for suffix in self._suffixes):
            return True
        return self._own_addresses and is_own_address(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        self._log_refusal(host)
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        await Response(status_code=400)(scope, receive, send)

    def _log_refusal(self, host: str | None) -> None:
        key = repr(host)[:200]
        if key in self._logged or len(self._logged) >= _LOGGED_REFUSALS_MAX:
            return
        self._logged.add(key)
        logger.warning(
            "refused a request for Host %s: not one of this server's names "
            "(a reverse proxy's name goes in GQL_MEDIA_ALLOWED_HOSTS)",
            key,
        )
