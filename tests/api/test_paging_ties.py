"""Every video order pages through the GraphQL API without gaps or duplicates across ties (issue 18).

The library is full of ties on every order's value: the same names in several folders, sizes of
three values, one modification time for all, durations of two values or none, statuses of three.
Each order, both directions, with and without a filter, is read 4 videos at a time by following
``endCursor``; the pages together are the one big page of the same order, each video once, and
the order's values never go backwards. The cursors carry each order's value as JSON (strings,
integers, floats, None), so this is also their round trip through ``api/paging.py``. On both backends.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gql_media.settings import Settings
from tests.api.conftest import open_api
from tests.conftest import write

ORDERS = {"NAME": "name", "MODIFIED_AT": "modifiedAt", "SIZE": "size", "DURATION": "durationSeconds"}
QUERY = (
    "query($first: Int!, $after: String, $o: VideoOrder, $f: VideoFilter) {"
    " videos(first: $first, after: $after, orderBy: $o, filter: $f) {"
    " totalCount pageInfo { hasNextPage endCursor } edges { node { id name size modifiedAt durationSeconds } } } }"
)
MTIME_NS = 1_700_000_000_123_456_789


def _write_ties(library: Path) -> int:
    rng = random.Random(18)
    count = 0
    for folder in ("a", "b", "b/c", "d é"):
        for name in ("same.mp4", "Same.mp4", "clip 1.mp4", "clip 2.mkv", "z.webm", "É.mp4"):
            if rng.random() < 0.85:
                path = write(library / folder / name, b"x" * rng.choice([0, 3, 3, 9]))
                os.utime(path, ns=(MTIME_NS, MTIME_NS))
                count += 1
    return count


def _key(order: str, node: dict[str, Any]) -> Any:
    value = node[ORDERS[order]]
    if order == "NAME":
        return None  # the name order is the store's own collation: checked against the big page only
    return value


async def test_every_order_pages_without_gaps_or_duplicates_through_the_api(
    make_settings: Callable[..., Settings], library: Path
) -> None:
    videos = _write_ties(library)
    async with open_api(make_settings()) as api:
        async with api.services.db.writing() as conn:
            await conn.execute(
                "UPDATE videos SET status = CASE WHEN id % 3 = 0 THEN 'READY' WHEN id % 3 = 1 THEN 'BROKEN'"
                " ELSE 'PENDING' END, duration_s = CASE WHEN id % 4 = 0 THEN NULL WHEN id % 2 = 0 THEN 1.5"
                " ELSE 2.0 END"
            )
        checked = 0
        for order in ORDERS:
            for direction in ("ASC", "DESC"):
                for filter in (None, {"status": "READY"}, {"underPath": "b"}, {"nameContains": "same"}):
                    variables: dict[str, Any] = {"o": {"field": order, "direction": direction}, "f": filter}
                    whole = (await api.data(QUERY, {**variables, "first": 500}))["videos"]
                    assert not whole["pageInfo"]["hasNextPage"]
                    expected = [edge["node"] for edge in whole["edges"]]
                    assert whole["totalCount"] == len(expected)
                    paged: list[dict[str, Any]] = []
                    after = None
                    while True:
                        page = (await api.data(QUERY, {**variables, "first": 4, "after": after}))["videos"]
                        paged += [edge["node"] for edge in page["edges"]]
                        if not page["pageInfo"]["hasNextPage"]:
                            break
                        after = page["pageInfo"]["endCursor"]
                    where = (order, direction, filter)
                    assert [n["id"] for n in paged] == [n["id"] for n in expected], where
                    assert len({n["id"] for n in paged}) == len(paged), where
                    keys = [_key(order, n) for n in paged if _key(order, n) is not None]
                    assert keys == sorted(keys, reverse=direction == "DESC"), where
                    if filter is None:
                        assert len(paged) == videos, where
                    checked += len(paged)
        assert checked > 8 * videos
