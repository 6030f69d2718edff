"""A real clip, probed and thumbnailed by the media workers, seen through the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gql_media.adapters.demo import encode_clip
from gql_media.settings import Settings
from tests.api.conftest import open_api


async def test_a_real_clip_is_ready_with_a_thumbnail(make_settings: Callable[..., Settings], library: Path) -> None:
    encode_clip(library / "clips" / "real.mp4")
    async with open_api(make_settings(media_workers=1), media=True) as api:
        query = "{ videos { edges { node { id status durationSeconds width height videoCodec thumbnailUrl } } } }"
        video = (await api.data(query))["videos"]["edges"][0]["node"]
        assert video["status"] == "READY" and video["durationSeconds"] > 1 and video["width"] == 64
        image = await api.client.get(video["thumbnailUrl"])
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
        again = await api.data(
            "mutation($id: ID!) { regenerateThumbnail(id: $id) { id status thumbnailUrl } }", {"id": video["id"]}
        )
        assert again["regenerateThumbnail"]["status"] == "READY"
        assert again["regenerateThumbnail"]["thumbnailUrl"] != video["thumbnailUrl"]  # a new version
        assert (await api.client.get(again["regenerateThumbnail"]["thumbnailUrl"])).content[:2] == b"\xff\xd8"
