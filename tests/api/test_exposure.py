"""Safe by default, against real `gql-media serve` processes: the Host allowlist (DNS rebinding), the
Origin of HTTP mutations, and a server bound beyond loopback without a token (read-only).

Every request goes to an address of this machine; nothing leaves it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gql_media.api.hosts import hostname_of, is_own_address, listens_beyond_loopback
from tests.reliability.conftest import Server

pytestmark = pytest.mark.e2e

MUTATION = "mutation { startWatcher { enabled } }"
QUERY = "{ roots { name } watcher { enabled } }"
SUBSCRIPTION = "subscription { watcherStatus { enabled } }"
CORS_ORIGIN = "http://ui.example.test:5173"
PROXY_NAME = "media.example.test"


@dataclass
class BoundServer(Server):
    """A server process bound to ``host`` (the reliability suite's Server, which binds 127.0.0.1)."""

    host: str = "127.0.0.1"

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.netloc}"

    def start(self, timeout_s: float = 60.0) -> Server:
        self.env["GQL_MEDIA_HOST"] = self.host
        return super().start(timeout_s)


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (`hostname -I`), or None."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for candidate in out.split():
        if ":" not in candidate and not candidate.startswith("127.") and is_own_address(candidate):
            return candidate
    return None


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def start(tmp_path: Path, name: str, **kwargs: Any) -> BoundServer:
    library = tmp_path / f"{name}-library"
    (library / "sub").mkdir(parents=True)
    (library / "sub" / "a.mp4").write_bytes(b"A" * 100)
    server = BoundServer(
        roots=[library], data_dir=tmp_path / f"{name}-data", log_path=tmp_path / f"{name}.log", watch=False, **kwargs
    )
    server.start()
    return server


def post(server: BoundServer, query: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.base + "/graphql", json={"query": query}, headers=headers or {}, timeout=30)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body.get("errors"), body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def subscribe(
    url: str, *, host: str | None = None, port: int | None = None, origin: str | None = None
) -> list[dict[str, Any]]:
    """Open a graphql-transport-ws socket (to ``host``:``port`` when given, whatever ``url`` names),
    subscribe to the watcher status and return the messages up to the first result or error."""
    extra: dict[str, Any] = {} if host is None else {"host": host, "port": port}
    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        origin=None if origin is None else websockets.Origin(origin),
        open_timeout=20,
        **extra,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        messages = [json.loads(await asyncio.wait_for(ws.recv(), 20))]
        assert messages[0]["type"] == "connection_ack", messages
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        return messages


async def refused_handshake(url: str, host: str, port: int) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await subscribe(url, host=host, port=port)
    status: int = refused.value.response.status_code
    return status


# --------------------------------------------------------------------------------------------
# The rules, in process


def test_host_values() -> None:
    assert hostname_of("LocalHost:8000") == "localhost"
    assert hostname_of("[::1]:8000") == "::1"
    assert hostname_of("[::1]") == "::1"
    assert hostname_of("media.example.test.") == "media.example.test"
    for bad in ("", "::1", "a b", "evil@localhost", "localhost:x", "[nope]:80", "localhost/x", "[::1"):
        assert hostname_of(bad) is None, bad


def test_what_counts_as_loopback() -> None:
    for loopback in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert not listens_beyond_loopback(loopback), loopback
    for exposed in ("0.0.0.0", "::", "", "192.0.2.7", "fd00::9"):
        assert listens_beyond_loopback(exposed), exposed
    assert is_own_address("127.0.0.1")
    assert not is_own_address("0.0.0.0")  # "0.0.0.0 day": reaches loopback, never a name of ours
    assert not is_own_address("203.0.113.9")  # TEST-NET-3, nobody's
    assert not is_own_address("localhost")


# --------------------------------------------------------------------------------------------
# Loopback (the default): rebinding refused, a proxy's name by setting, origins of mutations


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoundServer]:
    server = start(
        tmp_path_factory.mktemp("loopback"),
        "loopback",
        env={"GQL_MEDIA_ALLOWED_HOSTS": f"{PROXY_NAME},*.lan", "GQL_MEDIA_CORS_ORIGINS": CORS_ORIGIN},
    )
    try:
        yield server
    finally:
        server.stop()


def test_a_rebinding_post_gets_400_and_nothing_runs(loopback: BoundServer) -> None:
    port = loopback.port
    for host in (f"evil.example:{port}", "evil.example", f"0.0.0.0:{port}", f"localhost.evil.example:{port}", ""):
        response = post(loopback, MUTATION, {"Host": host, "Origin": f"http://{host}"})
        assert response.status_code == 400, (host, response.text)
        assert response.content == b""
    for path in ("/", "/healthz", "/metrics", "/media/1", "/thumbnails/1", "/playground"):
        response = httpx.get(loopback.base + path, headers={"Host": f"evil.example:{port}"})
        assert (response.status_code, response.content) == (400, b""), path
    # The watcher was never started by any of them.
    assert loopback.data(QUERY)["watcher"]["enabled"] is False
    assert "refused a request for Host 'evil.example:" in loopback.log()


async def test_a_rebinding_websocket_is_refused(loopback: BoundServer) -> None:
    port = loopback.port
    for host in ("evil.example", "0.0.0.0"):
        assert await refused_handshake(f"ws://{host}:{port}/graphql", "127.0.0.1", port) == 400
    # The same socket, named by a loopback name, is answered.
    messages = await subscribe(f"ws://localhost:{port}/graphql", host="127.0.0.1", port=port)
    assert messages[1]["type"] == "next"


def test_loopback_names_and_a_proxy_name_from_the_setting(loopback: BoundServer) -> None:
    port = loopback.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", PROXY_NAME, f"box.lan:{port}"):
        response = post(loopback, QUERY, {"Host": host})
        assert response.status_code == 200, (host, response.text)
        assert response.json()["data"]["roots"]
    # Behind the proxy, the browser's page is https://media.example.test: its mutations go through.
    same_site = {"Host": PROXY_NAME, "Origin": f"https://{PROXY_NAME}"}
    assert post(loopback, "mutation { stopWatcher { enabled } }", same_site).status_code == 200
    assert post(loopback, QUERY, {"Host": "other.example"}).status_code == 400


async def test_a_websocket_through_the_proxy_name(loopback: BoundServer) -> None:
    port = loopback.port
    messages = await subscribe(
        f"ws://{PROXY_NAME}:{port}/graphql", host="127.0.0.1", port=port, origin=f"http://{PROXY_NAME}:{port}"
    )
    assert messages[1]["type"] == "next"


def test_mutations_from_a_foreign_origin_get_403(loopback: BoundServer) -> None:
    netloc = loopback.netloc
    for origin in ("http://evil.example", "null", f"http://{netloc}.evil.example", "https://127.0.0.1:1"):
        response = post(loopback, "mutation { stopWatcher { enabled } }", {"Origin": origin})
        assert response.status_code == 403, origin
        assert error_code(response) == "FORBIDDEN"
        # Reading is not a change: a query from the same page is answered (CORS keeps it from reading it).
        assert post(loopback, QUERY, {"Origin": origin}).status_code == 200
    allowed = [
        {},  # not a browser
        {"Origin": f"http://{netloc}"},  # the page the server serves
        {"Origin": f"http://localhost:{loopback.port}", "Host": f"localhost:{loopback.port}"},
        {"Origin": CORS_ORIGIN},  # in CORS_ORIGINS
        # A dev server's proxy (Vite: changeOrigin) keeps the page's Origin; the browser vouches for it.
        {"Origin": "http://localhost:5173", "Sec-Fetch-Site": "same-origin"},
    ]
    for headers in allowed:
        response = post(loopback, "mutation { stopWatcher { enabled } }", headers)
        assert response.status_code == 200, (headers, response.text)
        assert response.json()["data"]["stopWatcher"]["enabled"] is False


async def test_a_websocket_from_a_foreign_origin_is_still_refused(loopback: BoundServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await subscribe(f"ws://{loopback.netloc}/graphql", origin="http://evil.example")
    assert refused.value.response.status_code == 403


# --------------------------------------------------------------------------------------------
# IPv6 loopback


async def test_ipv6_loopback(tmp_path: Path) -> None:
    if not ipv6_loopback_works():
        pytest.skip("no IPv6 loopback on this machine (::1 cannot be bound)")
    server = await asyncio.to_thread(start, tmp_path, "v6", host="::1")
    try:
        assert server.base.startswith("http://[::1]:")
        response = await asyncio.to_thread(post, server, MUTATION, {"Origin": server.base})
        assert response.status_code == 200, response.text
        assert response.json()["data"]["startWatcher"]["enabled"] is True
        messages = await subscribe(f"ws://{server.netloc}/graphql", origin=server.base)
        assert messages[1] == {"id": "1", "type": "next", "payload": {"data": {"watcherStatus": {"enabled": True}}}}
        assert (await asyncio.to_thread(post, server, QUERY, {"Host": "evil.example"})).status_code == 400
    finally:
        await asyncio.to_thread(server.stop)


# --------------------------------------------------------------------------------------------
# Bound beyond loopback


@pytest.fixture
def lan_address() -> str:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to bind to")
    return address


async def test_beyond_loopback_without_a_token_the_server_is_read_only(tmp_path: Path, lan_address: str) -> None:
    server = await asyncio.to_thread(start, tmp_path, "lan", host=lan_address)
    try:
        assert (await asyncio.to_thread(server.data, QUERY))["roots"]
        refused = await asyncio.to_thread(post, server, MUTATION)
        assert refused.status_code == 403
        assert error_code(refused) == "READ_ONLY"
        assert "GQL_MEDIA_API_TOKEN" in refused.json()["errors"][0]["message"]
        # Subscriptions are refused too; queries still work on the same socket.
        messages = await subscribe(f"ws://{server.netloc}/graphql")
        assert messages[1]["type"] in ("error", "next")
        assert "read-only" in json.dumps(messages[1]), messages
        # The machine's own name is one of the server's hosts; a stranger's is not.
        for host in (socket.gethostname(), f"{socket.gethostname()}:{server.port}", lan_address):
            assert (await asyncio.to_thread(post, server, QUERY, {"Host": host})).status_code == 200, host
        assert (await asyncio.to_thread(post, server, QUERY, {"Host": "evil.example"})).status_code == 400
        assert "read-only" in server.log()
        assert (await asyncio.to_thread(server.data, QUERY))["watcher"]["enabled"] is False
    finally:
        await asyncio.to_thread(server.stop)


async def test_beyond_loopback_the_opt_in_makes_it_writable_with_a_warning(tmp_path: Path, lan_address: str) -> None:
    server = await asyncio.to_thread(
        start, tmp_path, "lan-open", host=lan_address, env={"GQL_MEDIA_ALLOW_UNAUTHENTICATED": "true"}
    )
    try:
        response = await asyncio.to_thread(post, server, MUTATION)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["startWatcher"]["enabled"] is True
        messages = await subscribe(f"ws://{server.netloc}/graphql")
        assert messages[1] == {"id": "1", "type": "next", "payload": {"data": {"watcherStatus": {"enabled": True}}}}
        log = server.log()
        assert "RISK" in log and "GQL_MEDIA_ALLOW_UNAUTHENTICATED=true" in log
    finally:
        await asyncio.to_thread(server.stop)


async def test_beyond_loopback_with_a_token_writes_need_it(tmp_path: Path, lan_address: str) -> None:
    server = await asyncio.to_thread(start, tmp_path, "lan-token", host=lan_address, token="lan-token")
    try:
        assert (await asyncio.to_thread(post, server, MUTATION)).status_code == 401
        response = await asyncio.to_thread(post, server, MUTATION, server.headers())
        assert response.status_code == 200, response.text
        assert "read-only" not in server.log() and "RISK" not in server.log()
    finally:
        await asyncio.to_thread(server.stop)
