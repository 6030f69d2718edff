"""Every HLS layout real downloaders leave: merged with the right duration and size, or refused with a reason."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from gql_media.adapters.media import PyAvMediaTool
from gql_media.core.hls import HlsIncomplete, find_hls_downloads, owned_files, parse_playlist
from gql_media.core.media_work import merge_hls
from gql_media.core.models import EntryKind, ScanEntry
from gql_media.core.scanner import Scanner, ScanResult
from tests import hls_layouts
from tests.hls_layouts import Layout, copy_download, make_templates


@pytest.fixture
async def tool() -> AsyncIterator[PyAvMediaTool]:
    async with PyAvMediaTool(workers=1, timeout_s=30) as media:
        yield media


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each layout made once; tests work on copies."""
    return make_templates(tmp_path_factory.mktemp("layouts"), MERGED)


MERGED: dict[str, Layout] = {
    "mpegts": hls_layouts.mpegts,
    "fmp4": hls_layouts.fmp4,
    "byte-ranges": hls_layouts.byte_ranges,
    "cdn-names": hls_layouts.cdn_names,
    "cdn-names-no-query": lambda f: hls_layouts.cdn_names(f, query=False),
    "aes-relative-key": hls_layouts.aes128,
    "aes-absolute-key-explicit-iv": lambda f: hls_layouts.aes128(f, key_uri="{key}", explicit_iv=True),
    "aes-key-url-sequence-iv": lambda f: hls_layouts.aes128(
        f, key_uri="https://keys.example.com/k/abc.key?token=1", media_sequence=7
    ),
    "master-show": hls_layouts.master,
    "master-muxed-audio": lambda f: hls_layouts.master(f, audio_rendition=False),
    "discontinuity": hls_layouts.discontinuity,
    "out-of-name-order": hls_layouts.out_of_name_order,
    "hevc-mpegts": hls_layouts.hevc,
    "hevc-fmp4-hvc1": lambda f: hls_layouts.hevc(f, "fmp4", "hvc1"),
    "hevc-fmp4-hev1": lambda f: hls_layouts.hevc(f, "fmp4"),
    "hevc-discontinuity": lambda f: hls_layouts.discontinuity(f, "libx265", second_size=(96, 54)),
}
# What the merged file must be: (duration s, width, height, audio streams).
EXPECTED = {name: (3.0, 64, 48, 1) for name in MERGED}
EXPECTED["master-show"] = EXPECTED["master-muxed-audio"] = (3.0, 96, 54, 1)
EXPECTED["discontinuity"] = EXPECTED["hevc-discontinuity"] = (4.0, 64, 48, 1)


def _indexed(root: Path) -> list[str]:
    result = ScanResult()
    Scanner(str(root)).walk("", True, result)
    return sorted(e.path for e in result.entries if isinstance(e, ScanEntry) and e.kind is EntryKind.VIDEO)


@pytest.mark.parametrize("name", list(MERGED))
async def test_layout_is_merged_with_the_right_duration_and_size(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path, name: str
) -> None:
    download = copy_download(templates, tmp_path, name)
    # Before the merge: none of the download's files is a video of its own (init.mp4, segments).
    assert _indexed(tmp_path) == []
    assert find_hls_downloads([str(tmp_path)]) == [str(download)]
    outcome = await merge_hls(str(download), False, tool)
    assert outcome.ok, outcome.error
    assert outcome.output_path == str(tmp_path / "Downloads" / f"{name}.mp4")
    duration_s, width, height, audio_streams = EXPECTED[name]
    with av.open(outcome.output_path) as merged:
        assert merged.duration is not None
        assert abs(merged.duration / av.time_base - duration_s) < 0.5
        video = merged.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        assert len(merged.streams.audio) == audio_streams
        frames = sum(1 for _ in merged.decode(video))
        assert frames == round(duration_s * hls_layouts.FPS)
    with av.open(outcome.output_path) as merged:
        # Timestamps start at zero and only grow, across discontinuities too.
        last: dict[int, int] = {}
        for packet in merged.demux():
            if packet.dts is None:
                continue
            assert packet.dts > last.get(packet.stream.index, -(1 << 62)), (name, packet)
            last[packet.stream.index] = packet.dts
    # After: the mp4 is the one video; the download's files still are not.
    assert _indexed(tmp_path) == [f"Downloads/{name}.mp4"]


TAGS = {"hevc-mpegts": "hvc1", "hevc-fmp4-hvc1": "hvc1", "hevc-fmp4-hev1": "hev1", "hevc-discontinuity": "hev1"}


@pytest.mark.parametrize(("name", "tag"), [*TAGS.items(), ("mpegts", "avc1")])
async def test_merged_hevc_is_tagged_hvc1_unless_its_parameter_sets_may_be_in_band(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path, name: str, tag: str
) -> None:
    # Safari plays HEVC in MP4 only as hvc1 (parameter sets in the sample entry, none in the
    # samples). FFmpeg moves a TS stream's in-band ones there; an hev1 source may keep them in its
    # samples, and after a discontinuity they may change (here the size does): those stay hev1.
    outcome = await merge_hls(str(copy_download(templates, tmp_path, name)), False, tool)
    assert outcome.ok and outcome.output_path, outcome.error
    with av.open(outcome.output_path) as merged:
        video = merged.streams.video[0]
        assert video.codec_context.codec_tag == tag
        codec = video.codec_context.name
        in_band = {_nal_type(unit, codec) for packet in merged.demux(video) for unit in _units(packet)}
    if tag == "hvc1":
        assert not in_band & {32, 33, 34}, in_band  # VPS, SPS, PPS


def _units(packet: av.Packet) -> list[bytes]:
    """The NAL units of an MP4 sample (4-byte lengths)."""
    data, units, offset = bytes(packet), [], 0
    while offset + 4 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        units.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return units


def _nal_type(unit: bytes, codec: str) -> int:
    return (unit[0] >> 1) & 0x3F if codec == "hevc" else unit[0] & 0x1F


async def test_delete_source_removes_a_master_download_with_its_variant_folders(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path
) -> None:
    download = copy_download(templates, tmp_path, "master-show")
    outcome = await merge_hls(str(download), True, tool)
    assert outcome.ok and outcome.source_deleted, outcome.error
    assert not download.exists()
    assert sorted(p.name for p in (tmp_path / "Downloads").iterdir()) == ["master-show.mp4"]


def test_a_walk_of_a_variant_folder_alone_indexes_none_of_its_files(templates: Path, tmp_path: Path) -> None:
    download = copy_download(templates, tmp_path, "master-show")
    for variant in ("720p", "audio/en"):
        result = ScanResult()
        Scanner(str(tmp_path)).walk(f"Downloads/master-show/{variant}", True, result)
        assert [e.path for e in result.entries if e.kind is EntryKind.VIDEO] == []
    # The master's folder stands for its variants' folders: one download, named after it.
    assert find_hls_downloads([str(download / "720p")]) == [str(download)]


def test_every_file_a_playlist_names_belongs_to_the_download(templates: Path) -> None:
    fmp4 = templates / "fmp4"
    assert str(fmp4 / "init.mp4") in owned_files(str(fmp4))
    show = templates / "master-show"
    owned = owned_files(str(show))
    assert str(show / "720p" / "index.m3u8") in owned
    assert str(show / "audio" / "en" / "index0.ts") in owned
    aes = templates / "aes-key-url-sequence-iv"
    assert str(aes / "abc.key") in owned_files(str(aes))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda f: hls_layouts.aes128(f, key_uri="https://keys.example.com/gone.key"), "key gone.key is missing"),
        (hls_layouts.sample_aes, "SAMPLE-AES"),
    ],
    ids=["aes-missing-key", "sample-aes"],
)
async def test_layout_is_refused_with_its_reason(
    tool: PyAvMediaTool, tmp_path: Path, make: Layout, reason: str
) -> None:
    download = make(tmp_path / "Downloads" / "refused")
    if "gone" in reason:
        (download / "gone.key").unlink(missing_ok=True)
    outcome = await merge_hls(str(download), True, tool)
    assert not outcome.ok and outcome.error is not None and reason in outcome.error
    assert not (tmp_path / "Downloads" / "refused.mp4").exists()
    assert _indexed(tmp_path) == []


def test_missing_remote_segments_are_named(templates: Path, tmp_path: Path) -> None:
    download = copy_download(templates, tmp_path, "cdn-names")
    (download / "index1.ts").unlink()
    with pytest.raises(HlsIncomplete, match=r"1 of 3 segments are missing: index1.ts") as caught:
        parse_playlist(str(download / "index.m3u8"))
    assert (caught.value.present, caught.value.expected) == (2, 3)


async def test_a_variant_naming_segments_beside_its_folder_is_one_download(
    tool: PyAvMediaTool, templates: Path, tmp_path: Path
) -> None:
    # show/master.m3u8 -> v/index.m3u8 -> ../media/index0.ts: in the download, outside the variant folder.
    show = tmp_path / "Downloads" / "show"
    shutil.copytree(templates / "mpegts", show / "media")
    variant = show / "v"
    variant.mkdir()
    text = (show / "media" / "index.m3u8").read_text()
    (show / "media" / "index.m3u8").unlink()
    (variant / "index.m3u8").write_text(text.replace("\nindex", "\n../media/index"))
    (show / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv/index.m3u8\n")
    assert _indexed(tmp_path) == []
    outcome = await merge_hls(str(show), False, tool)
    assert outcome.ok, outcome.error
    assert _indexed(tmp_path) == ["Downloads/show.mp4"]
