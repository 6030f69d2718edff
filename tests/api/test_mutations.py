"""Every mutation of the outline."""

from __future__ import annotations

from pathlib import Path

from gql_media.api.ids import from_global_id
from gql_media.core.models import MergeOutcome
from tests.api.conftest import Api
from tests.conftest import write

JOB = "id state mode trigger paths"


async def test_sync_library_coalesces_and_cancel(api: Api, library: Path) -> None:
    write(library / "new" / "fresh.mp4")
    data = await api.data(
        "mutation { first: syncLibrary(mode: FULL) { " + JOB + " } second: syncLibrary(mode: FULL) { " + JOB + " } }"
    )
    assert data["first"]["id"] == data["second"]["id"]
    assert data["first"]["mode"] == "FULL" and data["first"]["trigger"] == "MANUAL"
    cancelled = await api.data("mutation($id: ID!) { cancelSync(id: $id) { id state } }", {"id": data["first"]["id"]})
    assert cancelled["cancelSync"]["id"] == data["first"]["id"]
    final = await api.services.runner.wait(from_global_id(data["first"]["id"])[1], timeout_s=60)
    assert final is not None and final.state.is_terminal


async def test_sync_library_of_a_path(api: Api, library: Path) -> None:
    write(library / "beta" / "b2.mp4")
    job = (await api.data('mutation { syncLibrary(path: "beta") { id paths } }'))["syncLibrary"]
    assert job["paths"] == [str(library / "beta")]
    final = await api.services.runner.wait(from_global_id(job["id"])[1], timeout_s=60)
    assert final is not None and final.state.value == "SUCCEEDED"
    names = await api.data('{ folder(path: "beta") { videos { edges { node { name } } } } }')
    assert [e["node"]["name"] for e in names["folder"]["videos"]["edges"]] == ["b1.mp4", "b2.mp4"]
    body = await api.post('mutation { syncLibrary(path: "/etc") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "OUTSIDE_ROOTS"
    body = await api.post('mutation { cancelSync(id: "bm9wZQ==") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_ID"


async def test_watcher_start_and_stop_report_the_state(api: Api) -> None:
    started = await api.data("mutation { startWatcher { enabled mode roots settleMs } }")
    assert started["startWatcher"]["enabled"] is True
    assert (await api.data("{ watcher { enabled } }"))["watcher"]["enabled"] is True
    stopped = await api.data("mutation { stopWatcher { enabled } }")
    assert stopped["stopWatcher"]["enabled"] is False
    assert (await api.data("{ watcher { enabled } }"))["watcher"]["enabled"] is False


async def test_thumbnail_and_merge_through_the_media_service(api: Api, library: Path) -> None:
    video_id = (await api.data('{ videos(filter: {nameContains: "zeta"}) { edges { node { id } } } }'))["videos"]
    video_id = video_id["edges"][0]["node"]["id"]
    query = "mutation($id: ID!) { regenerateThumbnail(id: $id) { id name status } }"
    body = await api.post(query, {"id": video_id})
    assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"

    calls: list[object] = []

    class Media:
        async def regenerate_thumbnail(self, row_id: int) -> None:
            calls.append(row_id)

        async def merge_hls(self, path: str, delete_source: bool) -> MergeOutcome:
            calls.append((path, delete_source))
            return MergeOutcome(
                playlist_path=path + "/index.m3u8", output_path=path + ".mp4", ok=True, source_deleted=False
            )

    api.services.media = Media()
    video = (await api.data(query, {"id": video_id}))["regenerateThumbnail"]
    assert video == {"id": video_id, "name": "zeta.mp4", "status": "PENDING"}
    merged = await api.data(
        'mutation { mergeHls(path: "beta", deleteSource: true) { playlistPath outputPath ok sourceDeleted error } }'
    )
    assert merged["mergeHls"]["ok"] is True and merged["mergeHls"]["outputPath"] == str(library / "beta") + ".mp4"
    assert calls[1] == (str(library / "beta"), True)
    body = await api.post('mutation { mergeHls(path: "../outside") { ok } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_PATH"
    body = await api.post(query, {"id": "VmlkZW86OTk5OTk="})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
