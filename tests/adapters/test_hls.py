"""HLS downloads: the playlist rules, and merges that are verified and never lose the source."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from gql_media.adapters.media import PyAvMediaTool
from gql_media.adapters.media.remux import claimed_temp_file, publish_merge, remux_to
from gql_media.core.hls import (
    MARKER_NAME,
    TEMP_PREFIX,
    HlsError,
    find_hls_downloads,
    free_output_path,
    is_hls_download,
    merged_output,
    parse_playlist,
    remove_stale_temp_files,
)
from gql_media.core.media_work import merge_hls
from gql_media.core.ports import MediaError
from tests.media_fixtures import Clips, make_clips, tree_digest
from tests.media_hooks import GATED_OPERATIONS, MERGE_GATE_ENV


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture
async def tool() -> AsyncIterator[PyAvMediaTool]:
    async with PyAvMediaTool(workers=1, timeout_s=20) as media:
        yield media


@pytest.fixture
def download(clips: Clips, tmp_path: Path) -> Path:
    """A fresh copy of the HLS download folder, alone in its parent."""
    parent = tmp_path / "Downloads"
    parent.mkdir()
    return Path(shutil.copytree(clips.hls_template, parent / "My Lecture"))


def _playlist_text(folder: Path) -> str:
    return (folder / "index.m3u8").read_text()


def _rewrite_playlist(folder: Path, old: str, new: str) -> None:
    text = _playlist_text(folder)
    assert old in text
    (folder / "index.m3u8").write_text(text.replace(old, new, 1))


def test_parse_playlist_lists_local_segments(download: Path) -> None:
    playlist = parse_playlist(str(download / "index.m3u8"))
    assert [Path(p).name for p in playlist.segment_paths] == ["segment000.ts", "segment001.ts", "segment002.ts"]
    assert playlist.duration_s == pytest.approx(3.0)
    assert playlist.total_bytes == sum((download / f"segment00{i}.ts").stat().st_size for i in range(3))
    assert playlist.output_stem == "My Lecture"
    assert is_hls_download(str(download))
    assert find_hls_downloads([str(download.parent)]) == [str(download)]
    assert find_hls_downloads([str(download.parent)], recursive=False) == [str(download)]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("#EXTINF", '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n#EXTINF'), "key key.bin is missing"),
        (("#EXTINF", '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin"\n#EXTINF'), "SAMPLE-AES"),
        (("segment001.ts", "https://cdn.example.com/segment999.ts"), "missing: segment999.ts"),
        (("segment001.ts", "../elsewhere.ts"), "outside"),
        (("segment001.ts", "segment999.ts"), "missing"),
        (("#EXTINF:1.000000,\nsegment000.ts", "#EXT-X-STREAM-INF:BANDWIDTH=1\nsegment000.ts"), "not an HLS playlist"),
    ],
)
def test_playlists_we_refuse(download: Path, edit: tuple[str, str], reason: str) -> None:
    if "elsewhere" in edit[1]:
        (download.parent / "elsewhere.ts").write_bytes(b"x")
    _rewrite_playlist(download, *edit)
    with pytest.raises(HlsError, match=reason):
        parse_playlist(str(download / "index.m3u8"))


def test_a_playlist_of_remote_urls_is_not_a_download(tmp_path: Path) -> None:
    folder = tmp_path / "bookmark"
    folder.mkdir()
    (folder / "live.m3u8").write_text(
        "#EXTM3U\n#EXTINF:4,\nhttps://example.com/a.ts\n#EXTINF:4,\nhttps://example.com/b.ts\n"
    )
    assert not is_hls_download(str(folder))
    assert find_hls_downloads([str(tmp_path)]) == []


def test_free_output_name_never_takes_an_existing_file(download: Path) -> None:
    assert free_output_path(str(download), "My Lecture") == str(download.parent / "My Lecture.mp4")
    (download.parent / "My Lecture.mp4").write_bytes(b"mine")
    assert free_output_path(str(download), "My Lecture") == str(download.parent / "My Lecture (2).mp4")


async def test_merge_makes_a_verified_mp4_beside_the_folder(tool: PyAvMediaTool, download: Path) -> None:
    before = tree_digest(download)
    outcome = await merge_hls(str(download), False, tool)
    assert outcome.ok, outcome.error
    assert outcome.output_path == str(download.parent / "My Lecture.mp4")
    assert not outcome.source_deleted
    with av.open(outcome.output_path) as merged:
        assert len(merged.streams.video) == 1 and len(merged.streams.audio) == 1
        assert merged.streams.video[0].codec_context.name == "h264"
        assert merged.streams.audio[0].codec_context.name == "aac"
        assert merged.duration is not None and abs(merged.duration / 1_000_000 - 3.0) <= 1.0
        # Shifted to zero: an mp4 that starts where the TS clock started would play a gap.
        assert not merged.start_time
    probe = await tool.probe(outcome.output_path)
    assert probe.status.value == "READY"
    # The source is untouched (the marker is the only addition) and nothing else appeared.
    after = tree_digest(download)
    assert after.pop(MARKER_NAME)
    assert after == before
    assert sorted(p.name for p in download.parent.iterdir()) == ["My Lecture", "My Lecture.mp4"]


async def test_merge_is_idempotent(tool: PyAvMediaTool, download: Path) -> None:
    first = await merge_hls(str(download / "index.m3u8"), False, tool)
    assert first.ok
    stamp = Path(first.output_path or "").stat().st_mtime_ns
    assert merged_output(str(download / "index.m3u8")) == first.output_path
    assert find_hls_downloads([str(download.parent)]) == []
    second = await merge_hls(str(download), False, tool)
    assert second.ok and second.output_path == first.output_path
    assert Path(first.output_path or "").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in download.parent.iterdir()) == ["My Lecture", "My Lecture.mp4"]


async def test_merge_never_overwrites_an_existing_file(tool: PyAvMediaTool, download: Path) -> None:
    mine = download.parent / "My Lecture.mp4"
    mine.write_bytes(b"the user's own file")
    outcome = await merge_hls(str(download), False, tool)
    assert outcome.ok
    assert outcome.output_path == str(download.parent / "My Lecture (2).mp4")
    assert mine.read_bytes() == b"the user's own file"


async def test_delete_source_removes_the_folder_after_a_verified_merge(tool: PyAvMediaTool, download: Path) -> None:
    outcome = await merge_hls(str(download), True, tool)
    assert outcome.ok and outcome.source_deleted and outcome.error is None
    assert not download.exists()
    assert sorted(p.name for p in download.parent.iterdir()) == ["My Lecture.mp4"]


async def test_delete_source_keeps_a_folder_holding_other_files(tool: PyAvMediaTool, download: Path) -> None:
    (download / "notes.txt").write_text("my notes")
    outcome = await merge_hls(str(download), True, tool)
    assert outcome.ok and not outcome.source_deleted
    assert outcome.error is not None and "notes.txt" in outcome.error
    assert (download / "notes.txt").read_text() == "my notes"
    assert (download / "segment001.ts").exists()


def _corrupt(folder: Path) -> None:
    (folder / "segment001.ts").write_bytes(os.urandom((folder / "segment001.ts").stat().st_size))


def _truncate_all(folder: Path) -> None:
    for segment in folder.glob("*.ts"):
        segment.write_bytes(segment.read_bytes()[:1000])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "segment002.ts").unlink(), "missing"),
        (lambda f: _rewrite_playlist(f, "#EXTINF", '#EXT-X-KEY:METHOD=AES-128,URI="k"\n#EXTINF'), "key k is missing"),
        (lambda f: _rewrite_playlist(f, "segment001.ts", "http://example.com/s1.ts"), "missing: s1.ts"),
        (_corrupt, "corrupt"),
        (_truncate_all, "damaged"),
        (lambda f: (f / "segment000.ts").write_bytes(b""), "empty"),
    ],
    ids=["missing", "encrypted-no-key", "remote-missing", "corrupt", "truncated", "empty"],
)
@pytest.mark.parametrize("delete_source", [False, True])
async def test_failed_merge_leaves_the_source_intact_and_no_output(
    tool: PyAvMediaTool, download: Path, damage: object, reason: str, delete_source: bool
) -> None:
    assert callable(damage)
    damage(download)
    before = tree_digest(download.parent)
    outcome = await merge_hls(str(download), delete_source, tool)
    assert not outcome.ok
    assert outcome.error is not None and reason in outcome.error
    assert outcome.output_path is None and not outcome.source_deleted
    assert tree_digest(download.parent) == before


def test_a_merged_file_missing_packets_is_never_renamed_into_place(download: Path) -> None:
    playlist = parse_playlist(str(download / "index.m3u8"))
    # What the download without its last segment remuxes to stands for an output that lost packets.
    short = dataclasses.replace(
        playlist, video=dataclasses.replace(playlist.video, segments=playlist.video.segments[:-1])
    )
    before = tree_digest(download.parent)
    temp, other = (str(download.parent / f"{TEMP_PREFIX}{name}.mp4") for name in ("merge", "short"))
    with pytest.raises(MediaError, match="packets per stream"), claimed_temp_file(temp):
        streams = remux_to(playlist, temp)
        with claimed_temp_file(other):
            remux_to(short, other)
        os.replace(other, temp)
        publish_merge(playlist, temp, streams)
    assert tree_digest(download.parent) == before  # no output, no marker, no temp file


async def test_a_merge_killed_midway_leaves_nothing_behind(
    download: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(download.parent)
    gate = tmp_path / "merge-gate"
    gate.touch()
    monkeypatch.setenv(MERGE_GATE_ENV, str(gate))
    async with PyAvMediaTool(workers=1, timeout_s=0.5, operations=GATED_OPERATIONS) as media:
        outcome = await merge_hls(str(download), True, media)
        assert not outcome.ok
        assert outcome.error is not None and "timed out" in outcome.error
        assert tree_digest(download.parent) == before
        # The pool is healthy again and the same merge now works.
        gate.unlink()
        media.timeout_s = 20
        assert (await merge_hls(str(download), False, media)).ok


def test_stale_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    stale = [tmp_path / f"{TEMP_PREFIX}1.mp4", tmp_path / "a" / "b" / f"{TEMP_PREFIX}2.jpg"]
    for path in stale:
        path.write_bytes(b"partial")
    keep = tmp_path / "a" / "video.mp4"
    keep.write_bytes(b"mine")
    removed = remove_stale_temp_files([tmp_path])
    assert sorted(removed) == sorted(str(p) for p in stale)
    assert not any(p.exists() for p in stale)
    assert keep.exists()


def test_the_removal_of_stale_temp_files_ends_when_told(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    stale = tmp_path / "a" / f"{TEMP_PREFIX}1.mp4"
    stale.write_bytes(b"partial")
    assert remove_stale_temp_files([tmp_path], stopped=lambda: True) == []
    assert stale.exists()


async def test_merge_of_a_folder_without_playlist_is_refused(tool: PyAvMediaTool, tmp_path: Path) -> None:
    outcome = await merge_hls(str(tmp_path), False, tool)
    assert not outcome.ok and outcome.error is not None and "no HLS playlist" in outcome.error
