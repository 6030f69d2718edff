"""The executor's fast paths (api/execution.py, ``GQL_MEDIA_FAST_PATHS``) change no result.

A corpus of operations (pages, cursors, unions, fragments, directives, aliases, variables, enums,
nulls, errors of each kind, introspection, a refused mutation) runs against two apps on the same
services, one with the fast paths and one without, and their JSON answers must be equal; so must
the events of the subscriptions, including one shared by two subscribers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request

from gql_media.api import routes
from gql_media.api.context import Context
from gql_media.api.execution import EventExecutor, FastExecutor
from gql_media.api.schema import ApiSchema, create_schema
from gql_media.core.models import ChangeKind, EntryKind, JobState, LibraryChange, SyncPhase, SyncProgress
from tests.api.conftest import Api

VIDEO_FIELDS = """
  __typename id name path rootPath size modifiedAt createdAt durationSeconds width height
  videoCodec audioCodec container status error thumbnailUrl streamUrl folder { id name path }
"""
FOLDER_FIELDS = "__typename id name path rootPath modifiedAt parent { id } videoCount totalSize"

# (query, variables); ``$AFTER`` is replaced by the end cursor of the corpus's first page of videos.
CORPUS: list[tuple[str, dict[str, Any]]] = [
    (f"{{ videos(first: 3) {{ edges {{ cursor node {{ {VIDEO_FIELDS} }} }} pageInfo {{ hasNextPage "
     "hasPreviousPage startCursor endCursor } totalCount } }", {}),
    (f'{{ videos(first: 3, after: "$AFTER") {{ edges {{ node {{ {VIDEO_FIELDS} }} }} pageInfo {{ endCursor }} }} }}',
     {}),
    ("query($order: VideoOrder) { videos(orderBy: $order) { edges { cursor node { name size status } } } }",
     {"order": {"field": "SIZE", "direction": "DESC"}}),
    ('{ videos(orderBy: {field: DURATION}, filter: {nameContains: "a"}) { edges { node { name durationSeconds } } } }',
     {}),
    ("{ small: videos(first: 1) { edges { node { name } } } big: videos(first: 5) { edges { node { size } } } }", {}),
    # The soak's and load clients' page (bench/clients.py): folders completed from the page's prefetch.
    ("{ videos(first: 50) { edges { node { id name size folder { path } } } } }", {}),
    ("{ videos(first: 2) { edges { cursor node { folder { id } again: folder { name } } } pageInfo { endCursor } } }",
     {}),
    (f"{{ roots {{ {FOLDER_FIELDS} folders {{ name videoCount(recursive: true) totalSize(recursive: false) }} "
     f"entries(first: 4) {{ edges {{ cursor parentId node {{ ...on Folder {{ {FOLDER_FIELDS} }} "
     f"...on Video {{ {VIDEO_FIELDS} }} }} }} pageInfo {{ hasNextPage endCursor }} totalCount }} }} }}", {}),
    ("query { roots { descendants(first: 50) { edges { parentId node { ...F ...V } } totalCount } } }\n"
     "fragment F on Folder { __typename name path }\nfragment V on Video { __typename name folder { name } }", {}),
    ('{ folder(path: "") { descendants(first: 500) { edges { node { ... on Folder { id } ... on Video { id } } } } } }',
     {}),
    ('{ folder(path: "") { descendants(first: 3) { edges { cursor parentId node { __typename ... on Video { id '
     "folder { id parent { id } } } } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
     "totalCount } } }", {}),
    ("{ roots { name videos(first: -1) { totalCount } } }", {}),
    ("{ roots { descendants(first: 2000) { totalCount } } }", {}),
    ('{ folder(path: "") { name descendants(after: "bm90IGEgY3Vyc29y") { edges { cursor } } } }', {}),
    ("query($all: Boolean!, $none: Boolean!) { videos(first: 4) { edges { node { name size @include(if: $all) "
     "path @skip(if: $all) status @include(if: $none) } } } }", {"all": True, "none": False}),
    ('{ folder(path: "Alpha") { name videos { edges { node { name folder { name } } } } } }', {}),
    ("{ watcherStatus { enabled mode error roots pendingPaths settleMs lastEventAt leader } currentSync { id } "
     "syncJobs(first: 5) { id state progress { sequence state phase done total } errors { path } } }", {}),
    ('{ node(id: "Rm9sZGVyOjE=") { __typename id ... on Folder { name } } }', {}),
    ('{ node(id: "not an id") { id } }', {}),
    ('{ videos(first: 2, after: "bm90IGEgY3Vyc29y") { edges { node { id } } } }', {}),
    ("{ videos(first: -1) { edges { node { id } } } }", {}),
    ("{ videos { edges { node { nope } } } }", {}),
    ("{ roots { folders { folders { folders { folders { folders { folders { folders { folders { folders { folders "
     "{ folders { folders { folders { folders { folders { name } } } } } } } } } } } } } } } }", {}),
    ('{ __type(name: "Video") { name kind fields { name type { name kind ofType { name } } } } }', {}),
    ("{ __schema { queryType { name } types { name kind } } }", {}),
    ('mutation { syncLibrary(mode: INCREMENTAL, path: "/nowhere/at/all") { id } }', {}),
    ("{ videos(first: 2) { edges { node { playback { method url mimeType reason } subtitles { label } } } } }", {}),
]  # fmt: skip


async def _post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    return response.status_code, response.json()


def test_the_setting_chooses_the_executor() -> None:
    assert create_schema(fast_paths=True).execution_context_class is FastExecutor
    plain = create_schema(fast_paths=False).execution_context_class
    assert plain is EventExecutor and not issubclass(plain, FastExecutor)


async def test_queries_give_the_same_answers_with_and_without_fast_paths(api: Api) -> None:
    plain_settings = api.settings.model_copy(update={"fast_paths": False})
    plain_app = Starlette(routes=routes(plain_settings, lambda: api.services))
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        first = await api.data(CORPUS[0][0])
        after = first["videos"]["pageInfo"]["endCursor"]
        for query, variables in CORPUS:
            query = query.replace("$AFTER", after)
            fast_answer = await _post(api.client, query, variables)
            plain_answer = await _post(plain, query, variables)
            assert fast_answer == plain_answer, query
    answers = [await _post(api.client, q.replace("$AFTER", after), v) for q, v in CORPUS]
    assert sum(1 for _, body in answers if body.get("errors")) >= 9  # the corpus's error cases are errors
    assert sum(1 for _, body in answers if body.get("data")) >= 12


CHANGES = """subscription {
  libraryChanged { sequence kind id path oldPath jobId entry { __typename ... on Video { name size status } } }
}"""
PROGRESS = "subscription { syncProgress { jobId sequence state phase done total currentPath elapsedSeconds } }"


async def _subscribe(schema: ApiSchema, api: Api, query: str) -> Any:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"", "server": ("t", 80)}
    stream = await schema.subscribe(query, context_value=Context.create(api.services, Request(scope), None, True))
    assert hasattr(stream, "__anext__"), stream
    return stream


async def test_subscription_events_are_the_same_with_and_without_fast_paths(api: Api) -> None:
    events = 10
    videos = await api.data("{ videos(first: 3) { edges { node { id } } } }")
    assert videos["videos"]["edges"]
    fast, plain = create_schema(fast_paths=True), create_schema(fast_paths=False)
    bus = api.services.bus
    before = bus.subscriber_count  # type: ignore[attr-defined]
    # Two subscribers of the same progress operation on the fast schema: the second gets the shared result.
    streams = {
        "fast changes": await _subscribe(fast, api, CHANGES),
        "plain changes": await _subscribe(plain, api, CHANGES),
        "fast progress": await _subscribe(fast, api, PROGRESS),
        "fast progress again": await _subscribe(fast, api, PROGRESS),
        "plain progress": await _subscribe(plain, api, PROGRESS),
    }
    pending = {name: asyncio.create_task(stream.__anext__()) for name, stream in streams.items()}
    while bus.subscriber_count < before + len(streams):  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
    results: dict[str, list[Any]] = {name: [] for name in streams}
    kinds = [ChangeKind.UPDATED, ChangeKind.REMOVED, ChangeKind.ADDED, ChangeKind.MOVED, ChangeKind.RESYNC]
    for number in range(events):
        change = LibraryChange(kinds[number % len(kinds)], EntryKind.VIDEO, 1 + number % 3, None, None,
                               f"v{number}.mp4", old_path="old.mp4" if number % 2 else None)  # fmt: skip
        await bus.publish_change(change)
        progress = SyncProgress(job_id=7, sequence=number, state=JobState.RUNNING, phase=SyncPhase.SCANNING,
                                total=None if number else 10, current_path=None if number % 2 else "a/b.mp4",
                                elapsed_s=0.5)  # fmt: skip
        await bus.publish_progress(progress)
        for name, stream in streams.items():
            result = await pending[name]
            results[name].append((result.data, result.errors))
            pending[name] = asyncio.create_task(stream.__anext__())
    for task in pending.values():
        task.cancel()
    await asyncio.gather(*pending.values(), return_exceptions=True)
    for stream in streams.values():
        await stream.aclose()
    assert results["fast changes"] == results["plain changes"]
    assert results["fast progress"] == results["fast progress again"] == results["plain progress"]
    assert all(errors is None for _, errors in results["fast changes"] + results["fast progress"])
    assert len(results["fast progress"]) == events
