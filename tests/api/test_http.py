"""HTTP: media with Range and ETag, thumbnails, traversal attempts, health, metrics, limits, masked errors."""

from __future__ import annotations

from pathlib import Path

from gql_media.api.http import GraphQLApp
from tests.api.conftest import Api
from tests.conftest import run_sync
from tests.video_sql import video_ids_at

VIDEO_QUERY = "query($p: String!) { videos(filter: {underPath: $p}) { edges { node { streamUrl thumbnailUrl } } } }"


async def urls_of(api: Api, folder: str, token: str | None = None) -> tuple[str, str]:
    data = await api.data(VIDEO_QUERY, {"p": folder}, token)
    node = data["videos"]["edges"][0]["node"]
    return node["streamUrl"], node["thumbnailUrl"]


async def test_media_streams_with_range_and_etag(api: Api, library: Path) -> None:
    stream_url, _ = await urls_of(api, "Alpha/sub")
    content = (library / "Alpha/sub/deep.mp4").read_bytes()
    full = await api.client.get(stream_url)
    assert full.status_code == 200 and full.content == content
    assert full.headers["accept-ranges"] == "bytes" and full.headers["etag"]
    single = await api.client.get(stream_url, headers={"Range": "bytes=10-19"})
    assert single.status_code == 206 and single.content == content[10:20]
    assert single.headers["content-range"] == f"bytes 10-19/{len(content)}"
    suffix = await api.client.get(stream_url, headers={"Range": "bytes=-5"})
    assert suffix.status_code == 206 and suffix.content == content[-5:]
    past = await api.client.get(stream_url, headers={"Range": f"bytes={len(content) + 10}-"})
    assert past.status_code == 416
    stale = await api.client.get(stream_url, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == content
    fresh = await api.client.get(stream_url, headers={"Range": "bytes=0-1", "If-Range": full.headers["etag"]})
    assert fresh.status_code == 206 and fresh.content == content[:2]
    cached = await api.client.get(stream_url, headers={"If-None-Match": full.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""


async def test_traversal_and_unknown_ids_are_404(api: Api) -> None:
    for path in (
        "/media/999999", "/thumbnails/999999", "/media/..%2f..%2fetc%2fpasswd", "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/media/../../etc/passwd", "/thumbnails/%2e%2e%2fsecret", "/media/1/../../x", "/media/-1", "/media/abc",
    ):  # fmt: skip
        response = await api.client.get(path)
        assert response.status_code == 404, path


async def test_a_file_moved_out_of_its_root_is_not_served(api: Api, library: Path, tmp_path: Path) -> None:
    stream_url, _ = await urls_of(api, "beta")
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret")
    (library / "beta/b1.mp4").unlink()
    (library / "beta/b1.mp4").symlink_to(outside)
    assert (await api.client.get(stream_url)).status_code == 404


async def test_thumbnail_placeholder_then_the_file(api: Api) -> None:
    _, thumbnail_url = await urls_of(api, "beta")
    placeholder = await api.client.get(thumbnail_url)
    assert placeholder.status_code == 200 and placeholder.headers["content-type"].startswith("image/svg+xml")
    api.settings.thumbnails_dir.mkdir(parents=True, exist_ok=True)
    (api.settings.thumbnails_dir / "b1.jpg").write_bytes(b"\xff\xd8jpeg")
    async with api.services.db.writing() as conn:
        await conn.execute(f"UPDATE videos SET thumbnail_key = 'b1.jpg' WHERE id IN {video_ids_at('beta/b1.mp4')}")
        await conn.execute(f"UPDATE videos SET thumbnail_key = '../library.db' WHERE id IN {video_ids_at('zeta.mp4')}")
    image = await api.client.get(thumbnail_url)
    assert image.status_code == 200 and image.content == b"\xff\xd8jpeg"
    assert "max-age" in image.headers["cache-control"] and image.headers["etag"]
    data = await api.data('{ videos(filter: {nameContains: "zeta"}) { edges { node { thumbnailUrl } } } }')
    escaping = data["videos"]["edges"][0]["node"]["thumbnailUrl"]
    response = await api.client.get(escaping)
    assert response.headers["content-type"].startswith("image/svg+xml")


async def test_health_and_metrics(api: Api) -> None:
    health = await api.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    await api.data("{ roots { name } }")
    metrics = await api.client.get("/metrics")
    assert metrics.status_code == 200 and "gql_media_graphql_operations_total" in metrics.text


async def test_graphql_over_get_and_graphiql(api: Api) -> None:
    response = await api.client.get("/graphql", params={"query": "{ roots { name } }"})
    assert response.status_code == 200 and response.json()["data"]["roots"]
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    mutation = await api.client.get("/graphql", params={"query": "mutation { stopWatcher { enabled } }"})
    assert mutation.status_code in (400, 405)
    assert (await api.client.post("/graphql", json={"query": "{ roots { name } }"})).status_code == 200


async def test_limits_refuse_and_leave_the_server_unharmed(api: Api) -> None:
    deep = "{ roots { " + "parent { " * 20 + "name" + " }" * 20 + " } }"
    body = await api.post(deep)
    assert "depth" in body["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: roots {{ name }}" for i in range(150)) + " }"
    body = await api.post(aliases)
    assert "aliases" in body["errors"][0]["message"].lower()
    tokens = "{ roots { " + " ".join(["name"] * 12_000) + " } }"
    body = await api.post(tokens)
    assert "token" in body["errors"][0]["message"].lower()
    assert (await api.data("{ roots { name } }"))["roots"]


async def test_internal_errors_are_masked_and_logged(api: Api, caplog: object) -> None:
    class Exploding:
        async def merge_hls(self, path: str, delete_source: bool) -> None:
            raise RuntimeError(f"cannot open /very/secret/host/path {path}")

    body = await api.post('mutation { mergeHls(path: "Alpha") { ok } }')
    assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    api.services.media = Exploding()
    body = await api.post('mutation { mergeHls(path: "Alpha") { ok } }')
    assert body["errors"][0]["message"] == "Internal server error."
    assert "secret" not in str(body) and "Traceback" not in str(body)
    assert "secret" in caplog.text  # type: ignore[attr-defined]


def _graphql_app(tmp_path: Path) -> GraphQLApp:
    """The GraphQL app alone, for its encoding (no services behind it)."""
    from gql_media.api.schema import schema_for
    from gql_media.settings import Settings

    settings = Settings(roots=[tmp_path], data_dir=tmp_path / "data", watch=False)
    return GraphQLApp(schema_for(settings), settings, lambda: None)  # type: ignore[arg-type,return-value]


def test_websocket_messages_are_strawberrys_json_with_shared_event_data_encoded_once(tmp_path: Path) -> None:
    import json

    app = _graphql_app(tmp_path)
    data = {"syncProgress": {"jobId": "U3luY0pvYjox", "sequence": 3, "total": None, "path": 'é "quoted"\n'}}
    messages = [
        {"id": "1", "type": "next", "payload": {"data": data}},
        {"id": 'op "2"', "type": "next", "payload": {"data": data}},  # the same event to another subscriber
        {"id": "3", "type": "next", "payload": {"data": None, "errors": [{"message": "x"}]}},
        {"id": "4", "type": "complete"},
        {"type": "ping"},
    ]
    for message in messages:
        assert app.encode_json(message) == json.dumps(message, separators=(",", ":"))
    data["syncProgress"]["sequence"] = 4  # a new event is a new object: this one is never changed in place
    assert json.loads(app.encode_json({"id": "1", "type": "next", "payload": {"data": dict(data)}})) == {
        "id": "1", "type": "next", "payload": {"data": {"syncProgress": data["syncProgress"]}}}  # fmt: skip


def test_http_results_are_utf8_json_bytes_and_what_orjson_refuses_is_encoded_as_before(tmp_path: Path) -> None:
    import json

    app = _graphql_app(tmp_path)
    result = {"data": {"videos": [{"name": 'é 視頻 "quoted"\n\u2028', "size": 2**62, "duration": 1.5}]}, "errors": None}
    encoded = app.encode_json(result)
    assert isinstance(encoded, bytes)
    assert json.loads(encoded.decode("utf-8")) == result
    huge = {"data": {"n": 2**70}}  # past 64 bits: orjson refuses it, json.dumps writes it
    assert app.encode_json(huge) == json.dumps(huge, separators=(",", ":"))


async def test_a_page_of_non_ascii_names_reads_back_over_http(api: Api) -> None:
    (api.settings.roots[0] / "Alpha" / "été – 視頻.mp4").write_bytes(b"")
    await run_sync(api.services)
    response = await api.client.post(
        "/graphql", json={"query": '{ videos(first: 50, filter: {nameContains: "視頻"}) { edges { node { name } } } }'}
    )
    assert response.headers["content-type"] == "application/json"
    assert "été – 視頻.mp4".encode() in response.content  # UTF-8 as it is, not escaped
    assert [edge["node"]["name"] for edge in response.json()["data"]["videos"]["edges"]] == ["été – 視頻.mp4"]
