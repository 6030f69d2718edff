"""A library change costs its reads once, however many subscribers resolve its entry (issue 16's soak).

With the web UI's selection every subscriber read the changed entry, its folder and its subtree
totals for itself: 50 subscribers under churn made 50 times the reads, fell behind their queues and
got RESYNCs. A real uvicorn server and real websocket clients: the statements the server sends for
a video's and a folder's change are the same for one subscriber and for eight, and every
subscriber gets the same, complete event.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from gql_media.api.ids import FOLDER, VIDEO, from_global_id
from gql_media.core.models import ChangeKind, EntryKind, LibraryChange
from tests.api.conftest import Api, serve
from tests.api.test_live import TRANSPORT_WS, open_ws, receive, start, wait_for_subscribers

# The web UI's subscription (frontend-example/src/queries.ts).
UI_CHANGES = """subscription {
  libraryChanged {
    sequence kind id path oldPath rootPath jobId
    entry { ...FolderFields ...VideoFields }
  }
}
fragment FolderFields on Folder {
  __typename id name path rootPath videoCount(recursive: true) totalSize(recursive: true) parent { id }
}
fragment VideoFields on Video {
  __typename id name path rootPath size modifiedAt durationSeconds width height
  videoCodec audioCodec container status error thumbnailUrl streamUrl folder { id }
}"""


async def _ids(api: Api) -> tuple[int, int, str]:
    data = await api.data('{ folder(path: "Alpha") { id videos(first: 1) { edges { node { id path } } } } }')
    folder, video = data["folder"], data["folder"]["videos"]["edges"][0]["node"]
    return from_global_id(folder["id"], FOLDER)[1], from_global_id(video["id"], VIDEO)[1], video["path"]


async def _events(api: Api, subscribers: int, changes: list[LibraryChange]) -> tuple[int, list[list[Any]]]:
    """The statements the server sent while ``subscribers`` clients each received ``changes``, and what each got."""
    sockets: list[ClientConnection] = []
    with api.services.db.counting() as sent:  # the server's tasks start inside: their statements count
        async with serve(api.app) as url:
            before = api.services.bus.subscriber_count  # type: ignore[attr-defined]
            for _ in range(subscribers):
                ws = await open_ws(url, TRANSPORT_WS)
                await start(ws, TRANSPORT_WS, "c", UI_CHANGES, {})
                sockets.append(ws)
            await wait_for_subscribers(api, before + subscribers)
            counted_from = sent.value  # connecting reads nothing; counted from here all the same
            for change in changes:
                await api.services.bus.publish_change(change)
            received = [[(await receive(ws))["payload"]["data"]["libraryChanged"] for _ in changes] for ws in sockets]
            statements = sent.value - counted_from
            await asyncio.gather(*(ws.close() for ws in sockets))
    return statements, received


async def test_a_change_is_read_once_for_all_its_subscribers(api: Api) -> None:
    folder_id, video_id, video_path = await _ids(api)
    video = LibraryChange(ChangeKind.UPDATED, EntryKind.VIDEO, video_id, None, None, video_path)
    folder = LibraryChange(ChangeKind.UPDATED, EntryKind.FOLDER, folder_id, None, None, "Alpha")
    one, received_one = await _events(api, 1, [video, folder])
    eight, received_eight = await _events(api, 8, [video, folder])
    assert one > 0 and eight == one, (one, eight)
    for events in received_one + received_eight:
        got_video, got_folder = events
        assert got_video["kind"] == "UPDATED" and got_video["entry"]["path"] == video_path
        assert got_video["entry"]["folder"] == {"id": got_folder["entry"]["id"]}
        assert got_folder["entry"]["path"] == "Alpha" and got_folder["entry"]["parent"] is not None
        assert (got_folder["entry"]["videoCount"], got_folder["entry"]["totalSize"]) == (3, 600)
    # Every subscriber got the same events (sequences apart: each run published them again).
    for events in received_eight:
        assert [json.dumps({**e, "sequence": 0}) for e in events] == [
            json.dumps({**e, "sequence": 0}) for e in received_eight[0]
        ]
