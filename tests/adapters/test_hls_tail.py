"""Merges whose second half a helper process demuxes (``tail_demux``): the same file and failures, no stray process.

The workers here run the production merge with the helper whatever the download's size
(``tests.media_hooks.SPLIT_OPERATIONS``); the file one process makes is remuxed in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gql_media.adapters.media import PyAvMediaTool
from gql_media.adapters.media.hls_reader import TrackReader
from gql_media.adapters.media.remux import claimed_temp_file, remux_to
from gql_media.core.hls import MARKER_NAME, find_playlist, parse_playlist
from gql_media.core.media_work import merge_hls
from tests import hls_layouts
from tests.hls_layouts import Layout, copy_download, make_templates
from tests.media_fixtures import tree_digest
from tests.media_hooks import MERGE_GATE_ENV, SPLIT_OPERATIONS

# The MPEG-TS layouts (a helper demuxes only those): 3 s in 1 s segments, the helper from the second on.
LAYOUTS: dict[str, Layout] = {
    "mpegts": hls_layouts.mpegts,
    "byte-ranges": hls_layouts.byte_ranges,
    "cdn-names": hls_layouts.cdn_names,
    "aes-relative-key": hls_layouts.aes128,
    "aes-key-url-sequence-iv": lambda f: hls_layouts.aes128(
        f, key_uri="https://keys.example.com/k.key", media_sequence=7
    ),
    "out-of-name-order": hls_layouts.out_of_name_order,
    "hevc-mpegts": hls_layouts.hevc,
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_templates(tmp_path_factory.mktemp("tail-layouts"), LAYOUTS)


@pytest.fixture
async def tool() -> AsyncIterator[PyAvMediaTool]:
    async with PyAvMediaTool(workers=1, timeout_s=30, operations=SPLIT_OPERATIONS) as media:
        yield media


def _one_process_file(download: Path, tmp_path: Path) -> bytes:
    temp = str(tmp_path / "one-process.mp4")
    with claimed_temp_file(temp):
        playlist = find_playlist(str(download))
        assert playlist is not None
        remux_to(parse_playlist(playlist), temp, split_min_bytes=None)
    data = Path(temp).read_bytes()
    os.unlink(temp)
    return data


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _merged_digest(download: Path, media: PyAvMediaTool) -> str:
    """Merge ``download`` with ``media``; the merge must succeed: the digest of the file it made."""
    outcome = await merge_hls(str(download), False, media)
    assert outcome.ok, outcome.error
    assert outcome.output_path is not None
    return _digest(Path(outcome.output_path).read_bytes())


@pytest.mark.parametrize("name", list(LAYOUTS))
async def test_the_merged_file_is_the_one_a_single_process_makes(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path, name: str
) -> None:
    expected = _digest(_one_process_file(templates / name, tmp_path))
    pids = set()
    # Twice in one worker: its helper is made once and serves both.
    for parent in ("Downloads", "More"):
        outcome = await merge_hls(str(copy_download(templates, tmp_path, name, parent)), False, tool)
        assert outcome.ok, outcome.error
        assert outcome.output_path is not None
        assert _digest(Path(outcome.output_path).read_bytes()) == expected
        kind, pid = await tool.call("tail_helper_pid")
        assert kind == "ok" and isinstance(pid, int)
        pids.add(pid)
        # The merge left no thread behind: the next one may use its helper (the checks every merge makes).
        assert await tool.call("helper_forkable") == ("ok", True)
    assert len(pids) == 1


def test_segments_read_through_python_give_the_file_ffmpeg_reading_them_gives(templates: Path, tmp_path: Path) -> None:
    # Plain whole TS files are read by FFmpeg itself (``TrackReader.direct_url``); a name its
    # concat URL cannot carry ("|") sends the track through the Python reader: the same file.
    direct = copy_download(templates, tmp_path, "mpegts")
    through_python = copy_download(templates, tmp_path, "mpegts", "Renamed")
    playlist = through_python / "index.m3u8"
    segment = sorted(through_python.glob("*.ts"))[1]
    segment.rename(segment.with_name("a|b.ts"))
    playlist.write_text(playlist.read_text().replace(segment.name, "a|b.ts"))
    readers = [TrackReader(parse_playlist(str(folder / "index.m3u8")).video) for folder in (direct, through_python)]
    assert [reader.direct_url() is not None for reader in readers] == [True, False]
    expected = _one_process_file(direct, tmp_path)
    assert _one_process_file(through_python, tmp_path) == expected
    assert len(expected) > 0


def _garbage_last(folder: Path) -> None:
    last = sorted(folder.glob("*.ts"))[-1]
    last.write_bytes(os.urandom(last.stat().st_size))


def _empty_last(folder: Path) -> None:
    sorted(folder.glob("*.ts"))[-1].write_bytes(b"")


def _truncate_last(folder: Path) -> None:
    last = sorted(folder.glob("*.ts"))[-1]
    last.write_bytes(last.read_bytes()[:1000])


@pytest.mark.parametrize("damage", [_garbage_last, _empty_last, _truncate_last], ids=["garbage", "empty", "truncated"])
async def test_a_damaged_second_half_ends_as_in_one_process_and_keeps_the_source(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    outcomes = []
    # The production table: these small downloads are merged by one process.
    async with PyAvMediaTool(workers=1, timeout_s=30) as one_process:
        for parent, media in (("Downloads", tool), ("Alone", one_process)):
            download = copy_download(templates, tmp_path, "mpegts", parent)
            damage(download)
            before = tree_digest(download)
            outcome = await merge_hls(str(download), False, media)
            after = {name: digest for name, digest in tree_digest(download).items() if name != MARKER_NAME}
            assert after == before  # the source is untouched (a merged one gets its marker)
            data = Path(outcome.output_path).read_bytes() if outcome.output_path else b""
            outcomes.append((outcome.ok, (outcome.error or "").replace(parent, "~"), _digest(data)))
    assert outcomes[0] == outcomes[1]
    if damage is not _truncate_last:  # a second short by its last segment's end is within the tolerance
        assert not outcomes[0][0]
    # The worker and its helper go on: the next merge works.
    healthy = await merge_hls(str(copy_download(templates, tmp_path, "mpegts", "More")), False, tool)
    assert healthy.ok, healthy.error


@pytest.mark.parametrize("dies", [False, True], ids=["fails", "dies"])
async def test_a_helper_failing_after_some_of_its_packets_were_muxed_gives_the_one_process_file(
    templates: Path, tmp_path: Path, dies: bool
) -> None:
    expected = _digest(_one_process_file(templates / "mpegts", tmp_path))
    async with PyAvMediaTool(workers=1, timeout_s=30, operations=SPLIT_OPERATIONS) as media:
        assert await media.call("fail_helper_midway", dies) == ("ok", None)
        download = copy_download(templates, tmp_path, "mpegts")
        before = tree_digest(download)
        assert await _merged_digest(download, media) == expected
        assert {k: v for k, v in tree_digest(download).items() if k != MARKER_NAME} == before
        kind, given = await media.call("packets_before_failure")
        assert kind == "ok" and len(given) == 1 and given[0] > 0  # it failed midway, the merge went on alone
        # The worker goes on with a helper (a new one if that one died): the next merge is the same file.
        assert await _merged_digest(copy_download(templates, tmp_path, "mpegts", "More"), media) == expected


async def test_a_tail_holding_other_streams_is_merged_by_one_process(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path
) -> None:
    # The audio ends with the first segment (no discontinuity tag, so a helper is asked): from the
    # second segment on it finds video alone where this process found video and audio. It is
    # stopped, and the whole merge is made again in one process: the same file.
    download = copy_download(make_templates(tmp_path / "templates", {"audio-gone": hls_layouts.audio_gone}),
                             tmp_path, "audio-gone")  # fmt: skip
    expected = _digest(_one_process_file(download, tmp_path))
    await _merged_digest(copy_download(templates, tmp_path, "mpegts"), tool)  # the worker's helper is made
    kind, helper_before = await tool.call("tail_helper_pid")
    assert kind == "ok" and isinstance(helper_before, int)
    before = tree_digest(download)
    assert await _merged_digest(download, tool) == expected
    assert {k: v for k, v in tree_digest(download).items() if k != MARKER_NAME} == before
    assert await tool.call("tail_helper_pid") != ("ok", helper_before)  # the helper was stopped, not reused
    # The worker goes on with a new helper: the next merge is the file one process makes.
    plain = _digest(_one_process_file(templates / "mpegts", tmp_path))
    assert await _merged_digest(copy_download(templates, tmp_path, "mpegts", "More"), tool) == plain


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie nobody reaped yet
    except FileNotFoundError:
        return True


async def test_a_worker_killed_mid_merge_takes_its_helper_along_and_leaves_the_source(
    templates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "merge-gate"
    monkeypatch.setenv(MERGE_GATE_ENV, str(gate))
    async with PyAvMediaTool(workers=1, timeout_s=30, operations=SPLIT_OPERATIONS) as media:
        assert (await merge_hls(str(copy_download(templates, tmp_path, "mpegts", "More")), False, media)).ok
        kind, pid = await media.call("tail_helper_pid")
        assert kind == "ok" and isinstance(pid, int)
        download = copy_download(templates, tmp_path, "mpegts")
        before = tree_digest(tmp_path / "Downloads")
        gate.touch()
        media.timeout_s = 0.5
        outcome = await merge_hls(str(download), True, media)
        assert not outcome.ok
        assert outcome.error is not None and "timed out" in outcome.error
        assert tree_digest(tmp_path / "Downloads") == before
        for _ in range(200):  # the kernel ends the helper as its worker dies (no timed assertion)
            if _dead(pid):
                break
            await asyncio.sleep(0.05)
        assert _dead(pid)
