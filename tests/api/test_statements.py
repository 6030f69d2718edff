"""No N+1: a page of videos with their folders costs the same number of statements at any size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gql_media.settings import Settings
from tests.api.conftest import open_api
from tests.conftest import write

PAGE_QUERY = (
    "query($first: Int!) { videos(first: $first) { totalCount pageInfo { hasNextPage endCursor }"
    " edges { cursor node { id name size streamUrl thumbnailUrl folder { id name path videoCount totalSize"
    " parent { name } folders { name } } } } } }"
)
TREE_QUERY = (
    'query($first: Int!) { folder(path: "") { descendants(first: $first) { totalCount edges { parentId'
    " node { ... on Folder { name videoCount(recursive: true) parent { name } }"
    " ... on Video { name folder { name } } } } } } }"
)


async def test_a_page_costs_the_same_statements_for_10_and_500_videos(
    make_settings: Callable[..., Settings], library: Path
) -> None:
    for folder in range(25):
        for video in range(20):
            write(library / f"f{folder:02}" / f"v{video:02}.mp4")
    async with open_api(make_settings()) as api:
        counts: dict[tuple[str, int], int] = {}
        for name, query in (("videos", PAGE_QUERY), ("descendants", TREE_QUERY)):
            for first in (10, 500):
                # Counted in this context only: on PostgreSQL the cluster's leader polls in the background.
                with api.services.db.counting() as sent:
                    data = await api.data(query, {"first": first})
                counts[(name, first)] = sent.value
                edges = data["videos"]["edges"] if name == "videos" else data["folder"]["descendants"]["edges"]
                assert len(edges) == first
    assert counts[("videos", 10)] == counts[("videos", 500)], counts
    assert counts[("descendants", 10)] == counts[("descendants", 500)], counts
    # page + count + folders + their parents + child folders + direct stats.
    assert counts[("videos", 500)] <= 7, counts
