"""Library folders added and removed at run time (addRoot, removeRoot), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gql_media.adapters.demo import ClipSpec, encode_clip
from gql_media.core.models import ChangeKind, LibraryChange
from gql_media.settings import Settings
from tests.api.conftest import Api, open_api, write_tree
from tests.conftest import write
from tests.video_sql import VIDEOS

ADD = "mutation($p: String!) { addRoot(path: $p) { id name path } }"
REMOVE = "mutation($p: String!) { removeRoot(path: $p) }"
ROOTS = "{ roots { name } watcher { roots } }"
VIDEOS_UNDER = "query($r: String!) { videos(filter: {rootPath: $r}) { totalCount edges { node { name path } } } }"


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true (a wait for the server's work, not a timing claim)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not after {timeout_s} s (last: {last!r})")


async def error_code(api: Api, query: str, path: str) -> tuple[str, str]:
    body = await api.post(query, {"p": path})
    assert body.get("errors"), body
    error = body["errors"][0]
    return error["extensions"]["code"], error["message"]


async def videos_under(api: Api, root: Path) -> list[str]:
    data = await api.data(VIDEOS_UNDER, {"r": str(root)})
    return sorted(edge["node"]["path"] for edge in data["videos"]["edges"])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {
        str(Path(dirpath, name).relative_to(folder)): Path(dirpath, name).read_bytes()
        for dirpath, _, names in os.walk(folder)
        for name in names
    }


@pytest.fixture
def extra(tmp_path: Path) -> Path:
    """A second library folder, outside the first."""
    folder = tmp_path / "extra"
    write(folder / "one.mp4", b"1" * 64)
    write(folder / "season/two.mkv", b"2" * 128)
    return folder


@pytest.fixture
async def roots_api(make_settings: Callable[..., Settings], library: Path) -> AsyncIterator[Api]:
    write_tree(library)
    async with open_api(make_settings()) as opened:
        yield opened


async def test_add_indexes_the_folder_and_lists_it(roots_api: Api, extra: Path, library: Path) -> None:
    changes = roots_api.services.bus.subscribe_changes()
    events = aiter(changes)
    try:
        added = (await roots_api.data(ADD, {"p": str(extra) + "/"}))["addRoot"]
        assert added["name"] == "extra" and added["path"] == ""
        assert await until(lambda: videos_under(roots_api, extra), "the new root indexed") == [
            "one.mp4",
            "season/two.mkv",
        ]
        data = await roots_api.data(ROOTS)
        assert sorted(r["name"] for r in data["roots"]) == ["extra", "library"]
        assert data["watcher"]["roots"] == [str(library), str(extra)]
        kinds: list[LibraryChange] = []
        while not any(c.kind is ChangeKind.ROOT_ADDED for c in kinds):
            kinds.append(await asyncio.wait_for(anext(events), 30))
        root_added = next(c for c in kinds if c.kind is ChangeKind.ROOT_ADDED)
        assert root_added.root_path == str(extra) and root_added.path == ""
    finally:
        await changes.aclose()


async def test_a_file_copied_into_an_added_root_shows_up(
    make_settings: Callable[..., Settings], library: Path, extra: Path
) -> None:
    write_tree(library)
    async with open_api(make_settings(watch=True, settle_ms=50, max_wait_ms=200, file_settle_ms=50)) as api:
        await api.services.watcher.start()
        await api.data(ADD, {"p": str(extra)})
        await until(lambda: videos_under(api, extra), "the new root indexed")
        shutil.copyfile(extra / "one.mp4", extra / "copied.mp4")

        async def copied() -> bool:
            return "copied.mp4" in await videos_under(api, extra)

        await until(copied, "the copied file indexed by the watcher")


async def test_remove_forgets_the_index_and_never_touches_the_files(roots_api: Api, extra: Path, library: Path) -> None:
    await roots_api.data(ADD, {"p": str(extra)})
    await until(lambda: videos_under(roots_api, extra), "the new root indexed")
    before = snapshot(extra)
    changes = roots_api.services.bus.subscribe_changes()
    events = aiter(changes)
    try:
        assert (await roots_api.data(REMOVE, {"p": str(extra)}))["removeRoot"] is True
        seen: list[LibraryChange] = []
        while not any(c.kind is ChangeKind.ROOT_REMOVED for c in seen):
            seen.append(await asyncio.wait_for(anext(events), 30))
    finally:
        await changes.aclose()
    assert sorted(c.path or "" for c in seen if c.kind is ChangeKind.REMOVED) == ["one.mp4", "season/two.mkv"]
    assert snapshot(extra) == before
    data = await roots_api.data(ROOTS)
    assert [r["name"] for r in data["roots"]] == ["library"]
    assert data["watcher"]["roots"] == [str(library)]
    async with roots_api.services.db.reading() as conn:
        left = await conn.fetch(
            "SELECT COUNT(*) FROM videos v JOIN roots r ON r.id = v.root_id WHERE r.path = ?", (str(extra),)
        )
    assert left[0][0] == 0
    # The library's own root is still indexed; the removed folder can be added again.
    assert len(await videos_under(roots_api, library)) == 7
    await roots_api.data(ADD, {"p": str(extra)})
    assert await until(lambda: videos_under(roots_api, extra), "the root added again") == [
        "one.mp4",
        "season/two.mkv",
    ]


async def test_added_roots_come_back_after_a_restart(
    make_settings: Callable[..., Settings], library: Path, extra: Path
) -> None:
    write_tree(library)
    settings = make_settings()
    async with open_api(settings) as api:
        await api.data(ADD, {"p": str(extra)})
        await until(lambda: videos_under(api, extra), "the new root indexed")
    async with open_api(settings) as api:
        data = await api.data(ROOTS)
        assert data["watcher"]["roots"] == [str(library), str(extra)]
        assert await videos_under(api, extra) == ["one.mp4", "season/two.mkv"]
        # Still a root added at run time: it can be removed, unlike the configured one.
        code, _ = await error_code(api, REMOVE, str(library))
        assert code == "ROOT_FROM_CONFIG"
        assert (await api.data(REMOVE, {"p": str(extra)}))["removeRoot"] is True
    async with open_api(settings) as api:
        assert (await api.data(ROOTS))["watcher"]["roots"] == [str(library)]


async def test_every_refusal_has_its_own_code(roots_api: Api, tmp_path: Path, library: Path) -> None:
    a_file = write(tmp_path / "plain.txt")
    unreadable = tmp_path / "locked"
    unreadable.mkdir()
    cases = {
        "relative/path": "NOT_ABSOLUTE",
        "": "NOT_ABSOLUTE",
        str(tmp_path / "missing"): "ROOT_NOT_FOUND",
        str(a_file): "NOT_A_DIRECTORY",
        str(library): "ROOT_EXISTS",
        str(library / "Alpha"): "ROOT_OVERLAP",
        str(tmp_path): "ROOT_OVERLAP",
        str(tmp_path / "data"): "DATA_DIR",
        str(tmp_path / "data" / "thumbnails"): "DATA_DIR",
    }
    (tmp_path / "data" / "thumbnails").mkdir(parents=True, exist_ok=True)
    for path, expected in cases.items():
        code, message = await error_code(roots_api, ADD, path)
        assert code == expected, (path, code, message)
        assert message
    if os.geteuid() != 0:  # root reads any folder
        unreadable.chmod(0)
        try:
            code, _ = await error_code(roots_api, ADD, str(unreadable))
            assert code == "ROOT_NOT_READABLE"
        finally:
            unreadable.chmod(0o755)
    assert await error_code(roots_api, REMOVE, str(tmp_path / "never")) == (
        "NOT_A_ROOT",
        f"{tmp_path / 'never'} is not a library root",
    )
    code, message = await error_code(roots_api, REMOVE, str(library))
    assert code == "ROOT_FROM_CONFIG" and "next start" in message
    assert [r["name"] for r in (await roots_api.data(ROOTS))["roots"]] == ["library"]


async def test_overlap_is_refused_in_both_directions(roots_api: Api, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "inner" / "deeper").mkdir(parents=True)
    await roots_api.data(ADD, {"p": str(outer / "inner")})
    code, message = await error_code(roots_api, ADD, str(outer / "inner" / "deeper"))
    assert code == "ROOT_OVERLAP" and "inside the library root" in message
    code, message = await error_code(roots_api, ADD, str(outer))
    assert code == "ROOT_OVERLAP" and "holds the library root" in message
    # A symlink to a folder inside a root is the same folder.
    (tmp_path / "link").symlink_to(outer / "inner" / "deeper")
    assert (await error_code(roots_api, ADD, str(tmp_path / "link")))[0] == "ROOT_OVERLAP"
    # A sibling whose name starts the same is not inside.
    (tmp_path / "outer" / "inner-two").mkdir()
    await roots_api.data(ADD, {"p": str(outer / "inner-two")})


async def test_root_allow_limits_where_roots_go(
    make_settings: Callable[..., Settings], library: Path, tmp_path: Path, extra: Path
) -> None:
    allowed = tmp_path / "media"
    (allowed / "shows").mkdir(parents=True)
    async with open_api(make_settings(root_allow=[allowed])) as api:
        code, message = await error_code(api, ADD, str(extra))
        assert code == "ROOT_NOT_ALLOWED" and str(allowed) in message
        await api.data(ADD, {"p": str(allowed / "shows")})


async def test_a_token_is_needed(make_settings: Callable[..., Settings], library: Path, extra: Path) -> None:
    async with open_api(make_settings(api_token="tok")) as api:
        body = await api.post(ADD, {"p": str(extra)})
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        await api.data(ADD, {"p": str(extra)}, token="tok")
        assert (await api.data(REMOVE, {"p": str(extra)}, token="tok"))["removeRoot"] is True


async def test_remove_drops_thumbnails_and_the_playback_cache(
    make_settings: Callable[..., Settings], library: Path, tmp_path: Path
) -> None:
    """With media work: the removed root's thumbnails and transcode cache go, its video stays on disk."""
    clip = encode_clip(tmp_path / "shows" / "pilot.mp4", ClipSpec(width_px=64, height_px=48, fps=10, duration_s=1.0))
    shows = clip.parent
    write_tree(library)
    async with open_api(make_settings(media_workers=1), media=True) as api:
        await api.data(ADD, {"p": str(shows)})
        thumbnails = api.settings.thumbnails_dir

        async def thumbnail_made() -> list[Path]:
            return [p for p in thumbnails.iterdir() if p.name.split("-", 1)[0].isdigit()]

        made = await until(thumbnail_made, "the new root's thumbnail")
        async with api.services.db.reading() as conn:
            row = await conn.fetch_one(f"SELECT id FROM {VIDEOS} WHERE path = 'pilot.mp4'")
        assert row is not None
        video_id = int(row[0])
        assert all(p.name.startswith(f"{video_id}-") for p in made)
        # A segment in the playback cache, made as the streaming service makes them.
        playback = api.services.playback
        assert playback is not None
        segment = playback.cache.path_for(str(video_id), "remux", "0.ts")
        temp = playback.cache.temp_path(segment)
        temp.write_bytes(b"\x47" * 188)
        playback.cache.commit(temp, segment)

        assert (await api.data(REMOVE, {"p": str(shows)}))["removeRoot"] is True

        async def cache_dropped() -> bool:
            return not segment.exists() and not segment.parent.parent.exists()

        await until(cache_dropped, "the playback cache of the removed video dropped")
        assert await thumbnail_made() == []
        assert clip.read_bytes()[:8] and clip.exists()


async def test_off_loopback_without_a_token_both_are_refused(
    make_settings: Callable[..., Settings], library: Path, extra: Path
) -> None:
    async with open_api(make_settings(host="0.0.0.0")) as api:
        for query in (ADD, REMOVE):
            body = await api.post(query, {"p": str(extra)})
            assert body["errors"][0]["extensions"]["code"] == "READ_ONLY", body
        assert [r["name"] for r in (await api.data(ROOTS))["roots"]] == ["library"]
