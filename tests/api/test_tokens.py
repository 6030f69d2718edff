"""GQL_MEDIA_API_TOKEN: every operation needs it, public read lets queries through, signed file URLs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gql_media.api.security import sign
from gql_media.settings import Settings
from tests.api.conftest import TOKEN, Api, open_api, write_tree
from tests.api.test_http import urls_of

QUERY = "{ roots { name } }"
MUTATION = "mutation { stopWatcher { enabled } }"


@pytest.fixture
async def public_api(make_settings: Callable[..., Settings], library: Path) -> AsyncIterator[Api]:
    write_tree(library)
    async with open_api(make_settings(api_token=TOKEN, public_read=True)) as opened:
        yield opened


async def test_operations_need_the_token(secured_api: Api) -> None:
    for token in (None, "wrong"):
        for operation in (QUERY, MUTATION):
            response = await secured_api.client.post(
                "/graphql",
                json={"query": operation},
                headers={} if token is None else {"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 401
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "UNAUTHENTICATED" and "Bearer" in error["message"]
    assert (await secured_api.data(QUERY, token=TOKEN))["roots"]
    assert (await secured_api.data(MUTATION, token=TOKEN))["stopWatcher"] == {"enabled": False}


async def test_public_read_lets_queries_through_only(public_api: Api) -> None:
    assert (await public_api.data(QUERY))["roots"]
    body = await public_api.post(MUTATION)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await public_api.data(MUTATION, token=TOKEN))["stopWatcher"]["enabled"] is False


async def test_signed_file_urls(secured_api: Api) -> None:
    stream_url, thumbnail_url = await urls_of(secured_api, "beta", TOKEN)
    query = parse_qs(urlsplit(stream_url).query)
    assert set(query) == {"exp", "sig"}
    assert int(query["exp"][0]) >= time.time() + secured_api.settings.signed_url_ttl_s - 1
    assert (await secured_api.client.get(stream_url)).status_code == 200
    assert (await secured_api.client.get(thumbnail_url)).status_code == 200
    bare = stream_url.split("?")[0]
    assert (await secured_api.client.get(bare)).status_code == 403
    assert (await secured_api.client.get(bare, headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
    wrong = stream_url[:-3] + ("000" if not stream_url.endswith("000") else "111")
    assert (await secured_api.client.get(wrong)).status_code == 403
    # A signature for another video (or for its thumbnail) does not open this one.
    video_id = urlsplit(bare).path.rsplit("/", 1)[1]
    assert (await secured_api.client.get(f"/media/{int(video_id) + 1}?{urlsplit(stream_url).query}")).status_code == 403
    assert (await secured_api.client.get(f"/thumbnails/{video_id}?{urlsplit(stream_url).query}")).status_code == 403
    ttl = secured_api.settings.signed_url_ttl_s
    expired_at, signature = sign(TOKEN, f"media/{video_id}", ttl, now_s=time.time() - 2 * ttl)
    assert expired_at < time.time()
    expired = await secured_api.client.get(f"{bare}?exp={expired_at}&sig={signature}")
    assert expired.status_code == 403
    assert (await secured_api.client.get(f"{bare}?exp=soon&sig=x")).status_code == 403
