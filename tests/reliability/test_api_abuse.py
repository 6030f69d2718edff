"""Abuse of a real server: bad GraphQL input, path traversal, tokens, signed URLs, CORS, leaks.

Every answer must be a clear refusal (never a 5xx, never "Internal server error" for a client's
mistake), carry no traceback and no host path outside the library, and leave the server healthy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gql_media.api.security import sign
from tests.reliability.conftest import Server

TOKEN = "abuse-test-token"
ORIGIN = "http://allowed.example"
SECRET = b"TOP-SECRET-OUTSIDE-THE-LIBRARY"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("abuse")
    library = base / "library"
    (library / "sub").mkdir(parents=True)
    (library / "a.mp4").write_bytes(b"A" * 1000)
    (library / "sub" / "b.mp4").write_bytes(b"B" * 500)
    (library / "later-a-link.mp4").write_bytes(b"C" * 10)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(SECRET)
    (library / "escape.mp4").symlink_to(outside / "secret.mp4")
    (library / "escape-dir").symlink_to(outside)
    server = Server.indexed(base, library, token=TOKEN, env={"GQL_MEDIA_CORS_ORIGINS": ORIGIN})
    # Indexed as a plain file, then swapped for a link leading out of the library.
    (library / "later-a-link.mp4").unlink()
    (library / "later-a-link.mp4").symlink_to(outside / "secret.mp4")
    try:
        yield server
    finally:
        server.stop()


def leak_free(server: Server, response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    text = response.text
    assert "Traceback" not in text
    assert 'File "' not in text
    assert SECRET.decode() not in text
    assert str(server.data_dir) not in text
    assert str(server.data_dir.parent / "outside") not in text


def video_ids(server: Server) -> dict[str, str]:
    edges = server.data("{ videos(first: 50) { edges { node { id path streamUrl thumbnailUrl } } } }")
    return {e["node"]["path"]: e["node"] for e in edges["videos"]["edges"]}


def numeric(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().partition(":")[2])


# --------------------------------------------------------------------------------------------
# GraphQL bad input


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BAD_QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("query($id: ID!) { node(id: $id) { id } }", {"id": ""}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "!!!not base64"}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": b64("Video:abc")}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": b64("Video:99999999999999999999999999")}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": b64("Video:-1")}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": b64("Nope:1")}),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "é"}),
    ("query($a: String) { videos(first: 5, after: $a) { totalCount } }", {"a": "garbage"}),
    (
        "query($a: String) { videos(first: 5, after: $a) { totalCount } }",
        {"a": base64.urlsafe_b64encode(b"[1,2]").decode()},
    ),
    (
        "query($a: String) { videos(first: 5, after: $a) { edges { cursor } } }",
        {"a": base64.urlsafe_b64encode(json.dumps(["video-name", {"x": 1}, [2]]).encode()).decode()},
    ),
    (
        "query($a: String) { videos(first: 5, after: $a) { edges { cursor } } }",
        {"a": base64.urlsafe_b64encode(json.dumps(["video-name", "a", 99999999999999999999999]).encode()).decode()},
    ),
    ("{ videos(first: 1000000000) { totalCount } }", {}),
    ("{ videos(first: -1) { totalCount } }", {}),
    ("{ videos(first: 99999999999) { totalCount } }", {}),
    ("{ syncJobs(first: 1000000000) { id } }", {}),
    ("{ syncJobs(first: -5) { id } }", {}),
    ("{ node(id: 5) { id } }", {}),
    ('{ videos(first: "ten") { totalCount } }', {}),
    ("query($f: Int) { videos(first: $f) { totalCount } }", {"f": "ten"}),
    ("query($f: Int) { videos(first: $f) { totalCount } }", {"f": 2**40}),
    ("query($p: String!) { folder(path: $p) { id } }", {"p": "x" * 1_000_000}),
    ("query($p: String!) { folder(path: $p) { id } }", {"p": "../../etc"}),
    ("query($p: String!) { folder(path: $p) { id } }", {"p": "/etc"}),
    ("query($p: String!) { folder(path: $p) { id } }", {"p": "\x00"}),
    ("query($n: String) { videos(first: 3, filter: {nameContains: $n}) { totalCount } }", {"n": "%_\\" * 1000}),
    ("query($d: Float) { videos(first: 3, filter: {minDurationSeconds: $d}) { totalCount } }", {"d": 1e308}),
    ("{ unknownField }", {}),
    ("{ videos(first: 1) { totalCount } ", {}),
    ("", {}),
    ('mutation { mergeHls(path: "/etc/passwd") { ok error } }', {}),
    ('mutation { syncLibrary(path: "/etc") { id } }', {}),
    ("mutation($id: ID!) { regenerateThumbnail(id: $id) { id } }", {"id": b64("Video:424242")}),
    ("mutation($id: ID!) { cancelSync(id: $id) { id } }", {"id": b64("SyncJob:99999999999999999999")}),
]


@pytest.mark.parametrize(("query", "variables"), BAD_QUERIES)
def test_bad_graphql_input_is_refused_clearly(site: Server, query: str, variables: dict[str, Any]) -> None:
    response = site.post(query, variables)
    leak_free(site, response)
    if response.status_code >= 400 and not response.headers.get("content-type", "").startswith("application/json"):
        return  # refused before GraphQL (e.g. no query at all)
    body = response.json()
    errors = body.get("errors") or []
    assert "Internal server error." not in [e.get("message") for e in errors], body
    assert errors or body.get("data") is not None


def test_huge_deep_and_wide_queries_are_refused(site: Server) -> None:
    deep = "{ roots { " + "folders { " * 40 + "id" + " }" * 40 + " } }"
    aliases = "{ " + " ".join(f"a{i}: roots {{ id }}" for i in range(500)) + " }"
    wide = "{ roots { " + " ".join(["id name path"] * 3000) + " } }"
    fragments = "{ roots { ...F } } fragment F on Folder { folders { ...F } }"
    batch = json.dumps([{"query": "{ roots { id } }"}] * 200)
    for query in (deep, aliases, wide, fragments):
        response = site.post(query)
        leak_free(site, response)
        assert response.json().get("errors"), query[:80]
    response = httpx.post(
        site.base + "/graphql", content=batch, headers={**site.headers(), "content-type": "application/json"}
    )
    leak_free(site, response)
    for raw in (b"{not json", b"\xff\xfe", b"[]", b'{"query": 5}', b'{"query": "{ roots { id } }", "variables": 7}'):
        response = httpx.post(
            site.base + "/graphql", content=raw, headers={**site.headers(), "content-type": "application/json"}
        )
        leak_free(site, response)
    assert httpx.get(site.base + "/healthz").status_code == 200
    assert site.data("{ roots { path } }")["roots"]


# --------------------------------------------------------------------------------------------
# Path traversal on every route

TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "..\\..\\..\\etc\\passwd",
    "..%5C..%5Cetc%5Cpasswd",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "//etc/passwd",
    "1/../../../../etc/passwd",
    "1%00",
    "-1",
    "99999999999999999999999",
    "escape.mp4",
]


@pytest.mark.parametrize("route", ["media", "thumbnails", "graphql", "healthz", "metrics", ""])
def test_path_traversal_on_every_route(site: Server, route: str) -> None:
    for attack in TRAVERSALS:
        url = f"{site.base}/{route}/{attack}" if route else f"{site.base}/{attack}"
        with httpx.Client() as client:
            request = client.build_request("GET", url, headers=site.headers())
            # Keep the attack bytes as they are (no client-side normalisation of "..").
            request.url = httpx.URL(url.replace("/../", "/%2E%2E/")) if "/../" in url else request.url
            response = client.send(request)
        leak_free(site, response)
        assert b"root:x:0" not in response.content
        assert SECRET not in response.content


def test_links_out_of_the_library_are_never_served(site: Server) -> None:
    videos = video_ids(site)
    assert "escape.mp4" not in videos  # never indexed
    linked = videos["later-a-link.mp4"]  # indexed as a file, now a link leading out
    response = httpx.get(linked["streamUrl"])
    leak_free(site, response)
    assert response.status_code == 404 and SECRET not in response.content


# --------------------------------------------------------------------------------------------
# Token, signed URLs, CORS


@pytest.mark.parametrize(
    "query",
    [
        "{ roots { id } }",
        "{ videos(first: 1) { totalCount } }",
        "{ watcher { enabled } }",
        "{ syncJobs { id } }",
        "{ currentSync { id } }",
        "mutation { syncLibrary { id } }",
        "mutation { startWatcher { enabled } }",
        "mutation { stopWatcher { enabled } }",
        'mutation { mergeHls(path: "x") { ok } }',
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, "Bearer"])
def test_every_operation_needs_the_token(site: Server, query: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.post(site.base + "/graphql", json={"query": query}, headers=headers)
    leak_free(site, response)
    body = response.json()
    assert body.get("errors"), body
    assert all(e.get("extensions", {}).get("code") == "UNAUTHENTICATED" for e in body["errors"]), body
    assert not any(v for v in (body.get("data") or {}).values()), body


def test_files_need_a_signature_bound_to_their_id(site: Server) -> None:
    videos = video_ids(site)
    a, b = videos["a.mp4"], videos["sub/b.mp4"]
    assert httpx.get(a["streamUrl"]).content == b"A" * 1000
    a_id, b_id = numeric(a["id"]), numeric(b["id"])
    query = a["streamUrl"].split("?", 1)[1]
    for url in (
        f"{site.base}/media/{a_id}",
        f"{site.base}/media/{b_id}?{query}",  # another id with a's signature
        f"{site.base}/thumbnails/{a_id}?{query}",  # another route
        a["streamUrl"].replace("sig=", "sig=0"),
        a["streamUrl"].replace("exp=", "exp=9"),
    ):
        response = httpx.get(url)
        leak_free(site, response)
        assert response.status_code == 403, url
    expired_at, signature = sign(TOKEN, f"media/{a_id}", 10, now_s=time.time() - 3600)
    response = httpx.get(f"{site.base}/media/{a_id}?exp={expired_at}&sig={signature}")
    assert response.status_code == 403


def test_cors_only_for_configured_origins(site: Server) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = httpx.options(site.base + "/graphql", headers={"Origin": ORIGIN, **preflight})
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    for origin in ("http://evil.example", "null", ORIGIN + ".evil.example", "http://allowed.example:8080"):
        refused = httpx.options(site.base + "/graphql", headers={"Origin": origin, **preflight})
        leak_free(site, refused)
        assert refused.headers.get("access-control-allow-origin") not in (origin, "*")
        simple = httpx.post(
            site.base + "/graphql", json={"query": "{ roots { id } }"}, headers={"Origin": origin, **site.headers()}
        )
        assert simple.headers.get("access-control-allow-origin") not in (origin, "*")
    for route in ("/media/1", "/thumbnails/1", "/healthz", "/metrics"):
        response = httpx.get(site.base + route, headers={"Origin": "http://evil.example"})
        assert response.headers.get("access-control-allow-origin") not in ("http://evil.example", "*")


async def _subscribe(url: str, token: str | None) -> tuple[websockets.ClientConnection, dict[str, Any] | None]:
    ws = await websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")])
    payload = {} if token is None else {"Authorization": f"Bearer {token}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    try:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    except websockets.ConnectionClosed:
        return ws, None
    return ws, reply


async def test_websocket_needs_the_token_even_an_open_one_after_a_restart(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    server = Server(roots=[library], data_dir=tmp_path / "data", log_path=tmp_path / "log", watch=False, token="one")
    await asyncio.to_thread(server.start)
    url = f"ws://127.0.0.1:{server.port}/graphql"
    try:
        for bad in (None, "wrong", ""):
            ws, reply = await _subscribe(url, bad)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert reply is None or reply.get("type") != "connection_ack"
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        ws, reply = await _subscribe(url, "one")
        assert reply == {"type": "connection_ack"}
        await ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": "subscription { watcherStatus { enabled } }"}}
            )
        )
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "next", first
        # The token changes with a restart: the open socket ends, and the old token no longer opens one.
        await asyncio.to_thread(server.stop)
        server.token = "two"
        await asyncio.to_thread(server.start)
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(100):
                await asyncio.wait_for(ws.recv(), 10)
        old, reply = await _subscribe(url, "one")
        assert reply is None or reply.get("type") != "connection_ack"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(old.recv(), 10)
        new, reply = await _subscribe(url, "two")
        assert reply == {"type": "connection_ack"}
        await new.close()
    finally:
        await asyncio.to_thread(server.stop)
    assert os.path.exists(server.log_path)
