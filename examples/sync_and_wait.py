"""Start a sync on a running gql_media server and follow it to its end, with the `gql` client library.

    pip install 'gql[websockets]'
    python examples/sync_and_wait.py [PATH]     # PATH: a folder inside a library root (default: every root)

GQL_MEDIA_SERVER (default http://127.0.0.1:8000) and GQL_MEDIA_API_TOKEN as for `gql-media sync`.
Exit code: 0 SUCCEEDED, 1 FAILED, 2 CANCELLED.
"""

from __future__ import annotations

import asyncio
import os
import sys

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

START = gql("mutation Start($path: String) { syncLibrary(path: $path) { id state } }")
FOLLOW = gql(
    """subscription Follow($id: ID!) {
      syncProgress(jobId: $id) { state phase done total added updated removed moved failed }
    }"""
)


async def main(path: str | None) -> int:
    server = os.environ.get("GQL_MEDIA_SERVER", "http://127.0.0.1:8000").rstrip("/")
    token = os.environ.get("GQL_MEDIA_API_TOKEN")
    transport = WebsocketsTransport(
        url=server.replace("http", "ws", 1) + "/graphql",
        init_payload={"Authorization": f"Bearer {token}"} if token else {},
        # graphql-transport-ws carries queries and mutations too; the legacy graphql-ws, subscriptions only.
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    # One websocket carries both the mutation and the subscription.
    async with Client(transport=transport) as session:
        START.variable_values = {"path": path}
        job = (await session.execute(START))["syncLibrary"]
        print(f"sync job {job['id']}: {job['state']}", flush=True)
        FOLLOW.variable_values = {"id": job["id"]}
        state = job["state"]
        async for event in session.subscribe(FOLLOW):
            progress = event["syncProgress"]
            state = progress["state"]
            total = "?" if progress["total"] is None else progress["total"]
            print(
                f"{state} {progress['phase']} {progress['done']}/{total}"
                f" +{progress['added']} ~{progress['updated']} -{progress['removed']}"
                f" >{progress['moved']} !{progress['failed']}",
                flush=True,
            )
    return {"SUCCEEDED": 0, "FAILED": 1, "CANCELLED": 2}.get(state, 1)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None)))
