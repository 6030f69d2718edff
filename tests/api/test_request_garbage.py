"""An operation's objects are freed with its request, not left to the cyclic garbage collector.

Under load a request's leftovers in reference cycles lived until a full collection: the server's
heap swung by megabytes between collections and its RSS kept each new peak (the soak).
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

from gql_media.api.execution import _FINISHED_HELPERS
from tests.api.conftest import Api

PAGE = "{ videos(first: 50) { edges { node { id name size folder { path } } } } }"
DEEP = "{ roots { " + "parent { " * 20 + "name" + " }" * 20 + " } }"


# The server's own objects and those of the libraries that execute an operation. (The test client,
# httpx over ASGI, leaves cycles of its own per request: its requests, responses and streams.)
_SERVER_SIDE = ("gql_media.", "graphql.", "strawberry.")


def _cyclic_garbage() -> Counter[str]:
    """The server-side objects a collection finds unreachable now, by type (counted, then dropped),
    and every class among them (a class is a cycle of its own)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" if not isinstance(o, type) else f"class {o.__qualname__}"
            for o in gc.garbage
            if isinstance(o, type) or type(o).__module__.startswith(_SERVER_SIDE)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


async def test_queries_and_refused_ones_leave_no_cycles(api: Api) -> None:
    async def requests() -> None:
        for _ in range(5):
            assert len((await api.data(PAGE))["videos"]["edges"]) == 7
            assert "depth" in (await api.post(DEEP))["errors"][0]["message"]
            assert (await api.data('{ videos(filter: {nameContains: "zeta"}) { totalCount } }'))["videos"]

    await requests()  # caches and lazily made things are made by the first ones
    gc.collect()
    gc.disable()
    try:
        await requests()
        left = _cyclic_garbage()
    finally:
        gc.enable()
    assert not left, f"objects in reference cycles after 15 requests: {left.most_common(12)}"


async def test_helpers_of_a_finished_execution_still_settle_and_gather() -> None:
    ran: list[str] = []

    async def work(name: str) -> str:
        await asyncio.sleep(0)
        ran.append(name)
        return name

    _FINISHED_HELPERS.track([work("tracked"), "not awaitable"])
    assert await _FINISHED_HELPERS.gather([work("a"), work("b")]) == ["a", "b"]
    for _ in range(3):
        await asyncio.sleep(0)
    assert sorted(ran) == ["a", "b", "tracked"]
