"""Every query of the outline on a real, synced library."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.api.conftest import TREE, Api
from tests.video_sql import video_ids_at

FOLDER_FIELDS = "id name path rootPath modifiedAt"


async def test_roots_and_the_tree(api: Api, library: Path) -> None:
    data = await api.data(
        "{ roots { id name path rootPath parent { id } folders { name path parent { path } }"
        " videoCount total: totalSize direct: totalSize(recursive: false) all: videoCount(recursive: true) } }"
    )
    (root,) = data["roots"]
    assert root["path"] == "" and root["rootPath"] == str(library) and root["parent"] is None
    # By name, byte-wise: "Alpha" < "Alpha b" < "beta".
    assert [f["name"] for f in root["folders"]] == ["Alpha", "Alpha b", "beta"]
    assert all(f["parent"]["path"] == "" for f in root["folders"])
    assert root["videoCount"] == 2 and root["all"] == len(TREE)
    assert root["total"] == sum(TREE.values()) and root["direct"] == 1010


async def test_folder_by_relative_and_absolute_path(api: Api, library: Path) -> None:
    query = (
        "query($p: String!, $r: String) { folder(path: $p, rootPath: $r) { path name videoCount(recursive: true) } }"
    )
    relative = await api.data(query, {"p": "Alpha"})
    absolute = await api.data(query, {"p": str(library / "Alpha")})
    named = await api.data(query, {"p": "Alpha/sub", "r": str(library)})
    assert relative == absolute
    assert relative["folder"] == {"path": "Alpha", "name": "Alpha", "videoCount": 3}
    assert named["folder"]["path"] == "Alpha/sub"
    assert (await api.data(query, {"p": "nope"}))["folder"] is None
    for outside in ("/etc", str(library.parent), "../x", "Alpha/../../etc"):
        body = await api.post(query, {"p": outside})
        assert body["data"] is None or body["data"]["folder"] is None
        assert body["errors"][0]["extensions"]["code"] in ("OUTSIDE_ROOTS", "BAD_PATH"), outside


async def test_entries_folders_first_then_videos_each_by_name(api: Api) -> None:
    query = (
        'query($after: String) { folder(path: "") { entries(first: 2, after: $after) { totalCount'
        " pageInfo { hasNextPage hasPreviousPage endCursor startCursor }"
        " edges { cursor parentId node { __typename ... on Folder { name } ... on Video { name } } } } } }"
    )
    names: list[tuple[str, str]] = []
    after = None
    pages = 0
    while True:
        entries = (await api.data(query, {"after": after}))["folder"]["entries"]
        assert entries["totalCount"] == 5
        assert entries["pageInfo"]["hasPreviousPage"] is (after is not None)
        names += [(e["node"]["__typename"], e["node"]["name"]) for e in entries["edges"]]
        pages += 1
        if not entries["pageInfo"]["hasNextPage"]:
            break
        after = entries["pageInfo"]["endCursor"]
    assert pages == 3
    assert names == [
        ("Folder", "Alpha"),
        ("Folder", "Alpha b"),
        ("Folder", "beta"),
        ("Video", "zeta.mp4"),
        ("Video", "ÉMILE.mp4"),
    ]


async def test_descendants_depth_first_with_parent_ids(api: Api) -> None:
    query = (
        'query($after: String) { folder(path: "") { id descendants(first: 4, after: $after) { totalCount'
        " pageInfo { hasNextPage endCursor }"
        " edges { parentId node { ... on Folder { id path } ... on Video { id path } } } } } }"
    )
    paths: list[str] = []
    parents: dict[str, str | None] = {}
    ids: dict[str, str] = {}
    after = None
    while True:
        folder = (await api.data(query, {"after": after}))["folder"]
        page = folder["descendants"]
        assert page["totalCount"] == len(TREE) + 5  # Alpha, Alpha/sub, Alpha b, beta, beta/empty
        for edge in page["edges"]:
            paths.append(edge["node"]["path"])
            parents[edge["node"]["path"]] = edge["parentId"]
            ids[edge["node"]["path"]] = edge["node"]["id"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # A folder, then its videos by name, then its sub-folders' subtrees by name.
    assert paths == [
        "zeta.mp4", "ÉMILE.mp4", "Alpha", "Alpha/A2.MKV", "Alpha/a1.mp4", "Alpha/sub", "Alpha/sub/deep.mp4",
        "Alpha b", "Alpha b/x.mp4", "beta", "beta/b1.mp4", "beta/empty",
    ]  # fmt: skip
    assert parents["Alpha"] == folder["id"]
    assert parents["Alpha/sub/deep.mp4"] == ids["Alpha/sub"]
    sub = await api.data(
        '{ folder(path: "Alpha") { descendants { totalCount edges { node { ... on Video { name } } } } } }'
    )
    assert sub["folder"]["descendants"]["totalCount"] == 4


async def test_videos_filter_and_order(api: Api, library: Path) -> None:
    async with api.services.db.writing() as conn:
        await conn.execute("UPDATE videos SET duration_s = size / 10.0, status = 'READY' WHERE size >= 200")
        await conn.execute(f"UPDATE videos SET status = 'BROKEN', error = 'bad' WHERE id IN {video_ids_at('zeta.mp4')}")
    query = (
        "query($f: VideoFilter, $o: VideoOrder) { videos(filter: $f, orderBy: $o) { totalCount"
        " edges { node { name path durationSeconds status } } } }"
    )

    async def names(filter: dict[str, object] | None = None, order: dict[str, object] | None = None) -> list[str]:
        result = (await api.data(query, {"f": filter, "o": order}))["videos"]
        assert result["totalCount"] == len(result["edges"])
        return [e["node"]["name"] for e in result["edges"]]

    assert await names() == sorted(n.rsplit("/", 1)[-1] for n in TREE)
    assert await names({"nameContains": "émile"}) == ["ÉMILE.mp4"]
    assert await names({"nameContains": "a"}) == ["A2.MKV", "a1.mp4", "zeta.mp4"]
    assert await names({"nameContains": "%"}) == []
    assert await names({"underPath": "Alpha"}) == ["A2.MKV", "a1.mp4", "deep.mp4"]
    assert await names({"underPath": str(library / "Alpha" / "sub")}) == ["deep.mp4"]
    assert await names({"minDurationSeconds": 25, "maxDurationSeconds": 45}) == ["b1.mp4", "deep.mp4"]
    assert await names({"status": "BROKEN"}) == ["zeta.mp4"]
    assert await names({"status": "PENDING"}) == ["a1.mp4", "x.mp4", "ÉMILE.mp4"]
    assert await names(order={"field": "SIZE", "direction": "DESC"}) == [
        "zeta.mp4", "b1.mp4", "deep.mp4", "A2.MKV", "a1.mp4", "x.mp4", "ÉMILE.mp4",
    ]  # fmt: skip
    by_duration = await names(order={"field": "DURATION"})
    assert by_duration[-3:] == ["deep.mp4", "b1.mp4", "zeta.mp4"]
    assert len(await names(order={"field": "MODIFIED_AT", "direction": "DESC"})) == len(TREE)


async def test_a_nul_in_a_name_or_path_matches_nothing(api: Api) -> None:
    # No stored name or path holds one; PostgreSQL rejects it in a text parameter.
    count = "query($f: VideoFilter) { videos(filter: $f) { totalCount edges { node { name } } } }"
    for filter in ({"nameContains": "a\u0000"}, {"underPath": "Alpha\u0000"}):
        assert await api.data(count, {"f": filter}) == {"videos": {"totalCount": 0, "edges": []}}, filter
    assert await api.data("query($p: String!) { folder(path: $p) { id } }", {"p": "Alpha\u0000"}) == {"folder": None}


async def test_video_fields_and_node(api: Api, library: Path) -> None:
    data = await api.data(
        '{ videos(filter: {underPath: "Alpha/sub"}) { edges { node { id name path rootPath size modifiedAt createdAt'
        " durationSeconds width height videoCodec audioCodec container status error thumbnailUrl streamUrl"
        " folder { path } } } } }"
    )
    video = data["videos"]["edges"][0]["node"]
    assert video["path"] == "Alpha/sub/deep.mp4" and video["size"] == 300 and video["status"] == "PENDING"
    assert video["folder"]["path"] == "Alpha/sub" and video["rootPath"] == str(library)
    assert video["streamUrl"].startswith("http://testserver/media/")
    assert video["thumbnailUrl"].startswith("http://testserver/thumbnails/")
    assert "+00:00" in video["modifiedAt"] or video["modifiedAt"].endswith("Z")
    node = await api.data("query($id: ID!) { node(id: $id) { id ... on Video { name } } }", {"id": video["id"]})
    assert node["node"] == {"id": video["id"], "name": "deep.mp4"}
    folder_id = (await api.data('{ folder(path: "Alpha") { id } }'))["folder"]["id"]
    node = await api.data("query($id: ID!) { node(id: $id) { ... on Folder { path } } }", {"id": folder_id})
    assert node["node"] == {"path": "Alpha"}


async def test_pagination_edges_and_bad_cursors(api: Api) -> None:
    query = (
        "query($first: Int, $after: String) { videos(first: $first, after: $after) { totalCount"
        " pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { name } } } }"
    )
    everything = (await api.data(query, {"first": 100}))["videos"]
    assert everything["pageInfo"]["hasNextPage"] is False and everything["pageInfo"]["hasPreviousPage"] is False
    last = everything["edges"][-1]["cursor"]
    after_last = (await api.data(query, {"first": 3, "after": last}))["videos"]
    assert after_last["edges"] == [] and after_last["pageInfo"]["hasNextPage"] is False
    assert after_last["pageInfo"]["endCursor"] is None
    exactly = (await api.data(query, {"first": len(TREE)}))["videos"]
    assert exactly["pageInfo"]["hasNextPage"] is False
    one_less = (await api.data(query, {"first": len(TREE) - 1}))["videos"]
    assert one_less["pageInfo"]["hasNextPage"] is True
    rest = (await api.data(query, {"first": 5, "after": one_less["pageInfo"]["endCursor"]}))["videos"]
    assert [e["node"]["name"] for e in rest["edges"]] == [everything["edges"][-1]["node"]["name"]]
    zero = (await api.data(query, {"first": 0}))["videos"]
    assert zero["edges"] == [] and zero["totalCount"] == len(TREE)
    for bad in ("garbage!", "bm90IGpzb24=", everything["edges"][0]["cursor"][:-4]):
        body = await api.post(query, {"first": 2, "after": bad})
        assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR", bad
    entries_cursor = (await api.data('{ folder(path: "") { entries(first: 1) { edges { cursor } } } }'))["folder"]
    wrong_list = entries_cursor["entries"]["edges"][0]["cursor"]
    body = await api.post(query, {"first": 2, "after": wrong_list})
    assert "does not belong" in body["errors"][0]["message"]
    sized = (await api.data(query, {"first": 1}))["videos"]["edges"][0]["cursor"]
    body = await api.post(
        "query($a: String) { videos(after: $a, orderBy: {field: SIZE}) { totalCount } }", {"a": sized}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR"
    for first in (-1, 100_000):
        body = await api.post(query, {"first": first})
        assert body["errors"][0]["extensions"]["code"] == "BAD_PAGE_SIZE"
    body = await api.post('{ node(id: "not-an-id") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_ID"


async def test_cursors_with_values_of_the_wrong_type_are_bad_cursors(api: Api) -> None:
    # Well-formed JSON a client could forge: PostgreSQL rejects such parameters (SQLite compares them).
    def forged(*key: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()

    videos = "query($a: String, $o: VideoOrder) { videos(first: 2, after: $a, orderBy: $o) { totalCount } }"
    for order, cursor in (
        (None, forged("video:NAME:a", 5, 1)),
        (None, forged("video:NAME:a", "a\u0000", 1)),
        (None, forged("video:NAME:a", "a", 2**70)),
        (None, forged("video:NAME:a", "a", True)),
        ({"field": "SIZE"}, forged("video:SIZE:a", "big", 1)),
        ({"field": "SIZE"}, forged("video:SIZE:a", 1.5, 1)),
        ({"field": "MODIFIED_AT"}, forged("video:MODIFIED_AT:a", 2**64, 1)),
        ({"field": "DURATION"}, forged("video:DURATION:a", "long", 1)),
    ):
        body = await api.post(videos, {"a": cursor, "o": order})
        assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR", (order, body)
    assert (await api.data(videos, {"a": forged("video:DURATION:a", 3, 1), "o": {"field": "DURATION"}})) == {
        "videos": {"totalCount": len(TREE)}
    }
    entries = 'query($a: String) { folder(path: "") { entries(after: $a) { totalCount } } }'
    for cursor in (forged("entry", 1, "a", 2**70), forged("entry", 1, "a\u0000", 1)):
        body = await api.post(entries, {"a": cursor})
        assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR", body
    folder_id = (await api.data('{ folder(path: "") { id } }'))["folder"]["id"]
    root_id = int(base64.b64decode(folder_id).decode().split(":")[1])
    descendants = 'query($a: String) { folder(path: "") { descendants(after: $a) { totalCount } } }'
    for cursor in (forged(f"descendant:{root_id}", "a\u0000", 1), forged(f"descendant:{root_id}", "a", 2)):
        body = await api.post(descendants, {"a": cursor})
        assert body["errors"][0]["message"].startswith("invalid cursor"), body
    # A cursor of the order before (the path alone) is refused, not misread.
    body = await api.post(descendants, {"a": forged(f"descendant:{root_id}", "a")})
    assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR", body


async def test_watcher_jobs_and_current_sync(api: Api) -> None:
    data = await api.data(
        "{ watcher { enabled mode error roots pendingPaths settleMs lastEventAt lastSyncAt }"
        " syncJobs { id mode trigger paths state startedAt finishedAt progress { sequence jobId state phase done"
        " total currentPath added updated removed moved failed elapsedSeconds } errors { path message } }"
        " currentSync { id } }"
    )
    assert data["watcher"]["roots"] == [str(p) for p in api.settings.roots]
    (job,) = data["syncJobs"]
    assert job["state"] == "SUCCEEDED" and job["progress"]["jobId"] == job["id"]
    assert job["progress"]["added"] == len(TREE) + 5
    assert data["currentSync"] is None
    node = await api.data("query($id: ID!) { node(id: $id) { ... on SyncJob { state } } }", {"id": job["id"]})
    assert node["node"] == {"state": "SUCCEEDED"}
    older = await api.data("query($a: String) { syncJobs(after: $a) { id } }", {"a": job["id"]})
    assert older["syncJobs"] == []
