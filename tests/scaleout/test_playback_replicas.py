"""Playback in a cluster: a follower transcodes for its own viewers, also with the leader gone (issue 14)."""

from __future__ import annotations

from urllib.parse import urljoin

import httpx
import pytest

from tests.playback_sources import SOURCES, encode_source
from tests.scaleout.conftest import Cluster, Replica, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUERY = "{ videos { edges { node { name status playback { method url } } } } }"


async def _playback(replica: Replica) -> dict[str, str] | None:
    edges = (await replica.data(QUERY))["videos"]["edges"]
    ready = [e["node"] for e in edges if e["node"]["status"] == "READY"]
    return ready[0]["playback"] if ready else None


async def test_a_follower_streams_for_its_viewers_itself(cluster: Cluster) -> None:
    encode_source(cluster.library, SOURCES["avi_mpeg4_mp3"])
    a, b = await cluster.start_leader_and_follower()

    playback = await wait_until(lambda: _playback(b), timeout_s=60)
    assert playback["method"] == "TRANSCODE"
    url = playback["url"].replace(a.base, b.base)
    assert url.startswith(b.base)
    async with httpx.AsyncClient(timeout=60) as client:
        playlist = await client.get(url)
        assert playlist.status_code == 200
        segments = [urljoin(url, line) for line in playlist.text.splitlines() if line and not line.startswith("#")]
        assert (await client.get(segments[0])).status_code == 200
        # The leader goes: the follower's viewer goes on, made by the follower's own workers.
        a.kill()
        for segment in segments[1:]:
            response = await client.get(segment)
            assert response.status_code == 200 and response.headers["content-type"] == "video/mp2t"
