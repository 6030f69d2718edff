"""Subscriptions over a real uvicorn server and a real websockets client, in both subprotocols."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gql_media.adapters.store.reads import LibraryReads, VideoRow
from gql_media.api.context import Context
from gql_media.api.ids import VIDEO, from_global_id
from gql_media.api.schema import create_schema
from gql_media.core.models import ChangeKind, EntryKind, LibraryChange
from tests.api.conftest import TOKEN, Api, serve
from tests.conftest import write

TRANSPORT_WS = Subprotocol("graphql-transport-ws")
LEGACY_WS = Subprotocol("graphql-ws")


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next message that is not a keep-alive."""
    while True:
        message = json.loads(await ws.recv())
        if message["type"] not in ("ka", "ping", "pong"):
            return message  # type: ignore[no-any-return]


async def open_ws(url: str, protocol: Subprotocol, payload: dict[str, Any] | None = None) -> ClientConnection:
    ws = await connect(f"{url}/graphql", subprotocols=[protocol])
    await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
    assert (await receive(ws))["type"] == "connection_ack"
    return ws


async def start(ws: ClientConnection, protocol: Subprotocol, op_id: str, query: str, variables: dict[str, Any]) -> None:
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    await ws.send(json.dumps({"type": kind, "id": op_id, "payload": {"query": query, "variables": variables}}))


async def wait_for_subscribers(api: Api, count: int) -> None:
    """Until the server's resolvers hold ``count`` bus subscriptions (no event can be missed after)."""
    while api.services.bus.subscriber_count < count:  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)


@pytest.fixture
async def url(api: Api) -> AsyncIterator[str]:
    async with serve(api.app) as base:
        yield base


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_sync_progress_until_the_terminal_event(api: Api, url: str, protocol: Subprotocol) -> None:
    job = (await api.data("mutation { syncLibrary(mode: FULL) { id } }"))["syncLibrary"]
    async with await open_ws(url, protocol) as ws:
        await start(
            ws, protocol, "1", "subscription($id: ID) { syncProgress(jobId: $id) { sequence jobId state phase } }",
            {"id": job["id"]},
        )  # fmt: skip
        events = []
        while True:
            message = await receive(ws)
            if message["type"] == "complete":
                break
            assert message["type"] in ("next", "data"), message
            events.append(message["payload"]["data"]["syncProgress"])
    assert all(e["jobId"] == job["id"] for e in events)
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(set(sequences))
    assert events[-1]["state"] == "SUCCEEDED" and events[-1]["phase"] == "DONE"


async def test_a_job_read_on_its_last_progress_event_has_ended(api: Api, url: str, library: Path) -> None:
    """The job's end is stored before its last event goes out: a client reading it at once sees it ended."""
    read = (
        "query($id: ID!) { node(id: $id) { ... on SyncJob { state finishedAt progress { phase } } }"
        " syncJobs(first: 1) { id state finishedAt } currentSync { id } }"
    )
    async with (
        httpx.AsyncClient(base_url=url.replace("ws://", "http://", 1)) as http,
        await open_ws(url, TRANSPORT_WS) as ws,
    ):
        for attempt in range(5):
            write(library / f"ended-{attempt}.mp4", b"x" * (attempt + 1))
            job = (await api.data("mutation { syncLibrary(mode: FULL) { id } }"))["syncLibrary"]
            await start(
                ws, TRANSPORT_WS, str(attempt), "subscription($id: ID) { syncProgress(jobId: $id) { state } }",
                {"id": job["id"]},
            )  # fmt: skip
            while True:
                message = await receive(ws)
                assert message["type"] == "next", message
                if message["payload"]["data"]["syncProgress"]["state"] != "SUCCEEDED":
                    continue
                # At once, with no wait: the first read after the final event.
                body = (await http.post("/graphql", json={"query": read, "variables": {"id": job["id"]}})).json()
                break
            assert not body.get("errors"), body
            node = body["data"]["node"]
            assert node["state"] == "SUCCEEDED" and node["finishedAt"] is not None, node
            assert node["progress"]["phase"] == "DONE", node
            newest = body["data"]["syncJobs"][0]
            assert newest == {"id": job["id"], "state": "SUCCEEDED", "finishedAt": node["finishedAt"]}, newest
            assert (await receive(ws)) == {"type": "complete", "id": str(attempt)}


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_library_changes_and_watcher_status(api: Api, url: str, library: Path, protocol: Subprotocol) -> None:
    async with await open_ws(url, protocol) as ws:
        before = api.services.bus.subscriber_count  # type: ignore[attr-defined]
        await start(
            ws, protocol, "c",
            "subscription($u: String) { libraryChanged(underPath: $u) { sequence kind id path rootPath jobId"
            " entry { __typename ... on Video { name size folder { path } streamUrl thumbnailUrl } } } }",
            {"u": "beta"},
        )  # fmt: skip
        await start(ws, protocol, "w", "subscription { watcherStatus { enabled } }", {})
        first_status = await receive(ws)
        assert first_status["id"] == "w" and first_status["payload"]["data"]["watcherStatus"]["enabled"] is False
        await wait_for_subscribers(api, before + 2)
        write(library / "beta" / "new.mp4", b"12345")
        write(library / "zeta-2.mp4")  # outside underPath: not sent
        await api.data("mutation { syncLibrary { id } }")
        change = await receive(ws)
        assert change["id"] == "c"
        event = change["payload"]["data"]["libraryChanged"]
        assert event["kind"] == "ADDED" and event["path"] == "beta/new.mp4" and event["rootPath"] == str(library)
        entry = event["entry"]
        # File URLs sent over the websocket are plain http URLs a <video> can fetch.
        assert entry.pop("streamUrl").startswith("http://") and entry.pop("thumbnailUrl").startswith("http://")
        assert entry == {"__typename": "Video", "name": "new.mp4", "size": 5, "folder": {"path": "beta"}}
        await api.data("mutation { startWatcher { enabled } }")
        status = await receive(ws)
        while status["id"] != "w":  # the watcher's first reconcile may report changes first
            status = await receive(ws)
        assert status["payload"]["data"]["watcherStatus"]["enabled"] is True
        await api.data("mutation { stopWatcher { enabled } }")
        await ws.send(json.dumps({"type": "complete" if protocol == TRANSPORT_WS else "stop", "id": "c"}))
    # The server lets go of the bus subscriptions when the client leaves.
    while api.services.bus.subscriber_count > before:  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websocket_tokens(secured_api: Api, protocol: Subprotocol) -> None:
    async with serve(secured_api.app) as base:
        for payload in ({}, {"token": "wrong"}, {"Authorization": "Bearer wrong"}):
            async with connect(f"{base}/graphql", subprotocols=[protocol]) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        for payload in ({"token": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}):
            async with await open_ws(base, protocol, payload) as ws:
                await start(ws, protocol, "1", "subscription { watcherStatus { enabled } }", {})
                message = await receive(ws)
                assert message["payload"]["data"]["watcherStatus"] == {"enabled": False}


async def test_a_slow_subscriber_gets_resync_while_a_fast_one_misses_nothing(api: Api) -> None:
    schema = create_schema()
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"", "server": ("t", 80)}
    query = "subscription { libraryChanged { sequence kind path } }"
    bus = api.services.bus
    bus.change_queue_size = 1000  # type: ignore[attr-defined]  # for the subscriptions made below
    fast = await schema.subscribe(query, context_value=Context.create(api.services, Request(scope), None, True))
    slow = await schema.subscribe(query, context_value=Context.create(api.services, Request(scope), None, True))
    received: list[dict[str, Any]] = []

    async def consume() -> None:
        async for result in fast:  # type: ignore[union-attr]
            received.append(result.data["libraryChanged"])

    before = bus.subscriber_count  # type: ignore[attr-defined]
    consumer = asyncio.create_task(consume())
    slow_first = asyncio.create_task(slow.__anext__())  # type: ignore[union-attr]
    await wait_for_subscribers(api, before + 2)
    count = 1500  # more than a subscriber's queue holds
    published = []
    for i in range(count):
        change = LibraryChange(ChangeKind.ADDED, EntryKind.VIDEO, i + 1, None, None, f"p{i}.mp4")
        published.append((await bus.publish_change(change)).sequence)
        while len(received) <= i:
            await asyncio.sleep(0)
    assert [r["sequence"] for r in received] == published
    assert all(r["kind"] == "ADDED" for r in received)
    slow_events = [(await slow_first).data["libraryChanged"]]  # type: ignore[attr-defined]
    while not slow_events or slow_events[-1]["kind"] != "RESYNC":
        slow_events.append((await slow.__anext__()).data["libraryChanged"])  # type: ignore[union-attr]
    assert slow_events[0]["sequence"] == published[0]
    assert slow_events[-1]["kind"] == "RESYNC" and len(slow_events) == 2
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await fast.aclose()  # type: ignore[union-attr]
    await slow.aclose()  # type: ignore[union-attr]


async def test_a_subscriber_behind_by_a_burst_of_thousands_catches_up_without_resync(api: Api, url: str) -> None:
    """A burst bigger than one job's per-entry changes (the summary threshold: 2,000) published at once,
    faster than the server sends them: the websocket client still gets every change, in order."""
    ws = await open_ws(url, TRANSPORT_WS)
    try:
        before = api.services.bus.subscriber_count  # type: ignore[attr-defined]
        await start(ws, TRANSPORT_WS, "1", "subscription { libraryChanged { sequence kind path } }", {})
        await wait_for_subscribers(api, before + 1)
        bus = api.services.bus
        count = 3000
        # No await yields in between: the whole burst is in the subscriber's queue before the first send.
        published = [(await bus.publish_change(
            LibraryChange(ChangeKind.ADDED, EntryKind.VIDEO, i + 1, None, None, f"burst/{i}.mp4"))).sequence
            for i in range(count)]  # fmt: skip
        received = []
        while len(received) < count:
            message = await receive(ws)
            assert message["type"] == "next", message
            change = message["payload"]["data"]["libraryChanged"]
            assert change["kind"] == "ADDED", change
            received.append(change["sequence"])
        assert received == published
    finally:
        await ws.close()


async def test_legacy_graphql_ws_tells_queries_and_mutations_where_to_go(api: Api, url: str) -> None:
    """graphql-ws carries subscriptions only: a query or a mutation gets a clear error with a code, not a masked one."""
    jobs_before = (await api.data("{ syncJobs(first: 100) { id } }"))["syncJobs"]
    async with await open_ws(url, LEGACY_WS) as ws:
        for op_id, query in (("m", "mutation Start { syncLibrary { id } }"), ("q", "{ roots { name } }")):
            await start(ws, LEGACY_WS, op_id, query, {})
            message = await receive(ws)
            assert message["type"] == "error" and message["id"] == op_id, message
            assert message["payload"]["extensions"] == {"code": "SUBSCRIPTIONS_ONLY"}, message
            said = message["payload"]["message"]
            assert said.startswith("mutations " if op_id == "m" else "queries "), said
            assert "graphql-transport-ws" in said and "HTTP" in said and "Internal" not in said, said
        # Nothing ran, and the connection still serves subscriptions.
        assert (await api.data("{ syncJobs(first: 100) { id } }"))["syncJobs"] == jobs_before
        await start(ws, LEGACY_WS, "w", "subscription { watcherStatus { enabled } }", {})
        status = await receive(ws)
        assert status["type"] == "data" and status["id"] == "w", status
        assert status["payload"]["data"]["watcherStatus"] == {"enabled": False}
    # The same mutation over graphql-transport-ws runs.
    async with await open_ws(url, TRANSPORT_WS) as ws:
        await start(ws, TRANSPORT_WS, "m", "mutation { syncLibrary { id state } }", {})
        message = await receive(ws)
        assert message["type"] == "next" and message["payload"]["data"]["syncLibrary"]["id"], message
        assert (await receive(ws)) == {"type": "complete", "id": "m"}


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_internal_error_in_an_event_is_masked_and_the_stream_goes_on(
    api: Api, url: str, protocol: Subprotocol, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An event whose entry cannot be read reaches the subscriber masked (no path, no traceback),
    is logged with its cause, and the next event arrives whole."""
    data = await api.data('{ folder(path: "Alpha") { videos(first: 1) { edges { node { id path } } } } }')
    node = data["folder"]["videos"]["edges"][0]["node"]
    video_id = from_global_id(node["id"], VIDEO)[1]
    reads = LibraryReads.videos_by_ids

    async def failing(self: LibraryReads, ids: Iterable[int]) -> dict[int, VideoRow]:
        raise RuntimeError("cannot read /very/secret/host/path")

    async with await open_ws(url, protocol) as ws:
        before = api.services.bus.subscriber_count  # type: ignore[attr-defined]
        query = "subscription { libraryChanged { kind path entry { ... on Video { name } } } }"
        await start(ws, protocol, "c", query, {})
        await wait_for_subscribers(api, before + 1)
        change = LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, video_id, None, None, node["path"])
        monkeypatch.setattr(LibraryReads, "videos_by_ids", failing)
        await api.services.bus.publish_change(change)
        masked = (await receive(ws))["payload"]
        assert [error["message"] for error in masked["errors"]] == ["Internal server error."], masked
        assert "secret" not in json.dumps(masked) and "Traceback" not in json.dumps(masked)
        assert "secret" in caplog.text
        monkeypatch.setattr(LibraryReads, "videos_by_ids", reads)
        await api.services.bus.publish_change(change)
        whole = (await receive(ws))["payload"]
        assert "errors" not in whole, whole
        assert whole["data"]["libraryChanged"]["entry"] == {"name": node["path"].split("/")[-1]}
