"""The merge helper's shared memory carries every packet's side data but the PES stream id (``tail_demux``).

A real helper is forked, from a fresh interpreter (a fork of pytest's threaded process could
inherit a held lock), over a real MPEG-TS segment whose packets the helper's demux tags with side
data of other kinds: the parent must get each packet's items, bytes and order as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import av
from av.packet import Packet, PacketSideData, packet_sidedata_type_from_literal

from gql_media.adapters.media.tail_demux import TailHelper
from tests import hls_layouts

REPO = Path(__file__).resolve().parents[2]

# Side data a demuxer may put on a packet beside the PES stream id (two of them on some packets).
_EXTRA_KINDS = ("skip_samples", "new_extradata")


def _streams(container: Any) -> list[Any]:
    return [stream for stream in container.streams if stream.type in ("video", "audio")]


def _tagged(packets: Iterator[Packet]) -> Iterator[Packet]:
    """The packets, every third with a ``skip_samples`` item, every fifteenth with ``new_extradata`` too."""
    for number, packet in enumerate(packets):
        kinds = _EXTRA_KINDS if number % 15 == 0 else _EXTRA_KINDS[:1] if number % 3 == 0 else ()
        for kind in kinds:
            payload = f"{kind}:{number}".encode()
            item = PacketSideData(packet_sidedata_type_from_literal(kind), len(payload))  # type: ignore[call-arg]
            memoryview(item)[:] = payload
            packet.set_sidedata(item, move=True)
        yield packet


def _side_data(packet: Packet) -> list[list[str]]:
    return [[item.data_type, bytes(item).hex()] for item in packet.iter_sidedata()]


def _described(packets: Iterator[Packet]) -> list[list[Any]]:
    return [
        [packet.pts, packet.dts, len(memoryview(packet)), _side_data(packet)]
        for packet in packets
        if packet.dts is not None or packet.pts is not None
    ]


def _open_tagged(track: str, start: int, stack: contextlib.ExitStack) -> tuple[Sequence[Any], Iterator[Packet], Any]:
    """The helper's opener: the segment's packets, tagged."""
    child = stack.enter_context(av.open(track))
    streams = _streams(child)
    return streams, _tagged(child.demux(*streams)), lambda position: 0


def round_trip(segment: str) -> None:
    """Run in a fresh interpreter: print the packets as the helper gave them, and as tagged here."""
    with av.open(segment) as source:
        streams = _streams(source)
        helper = TailHelper(_open_tagged)
        try:
            helper.start(segment, 0, os.path.getsize(segment))
            through = _described(packet for _, packet, _ in helper.packets(streams, None, 0))
        finally:
            helper.stop()
    with av.open(segment) as again:
        expected = _described(_tagged(again.demux(*_streams(again))))
    for packet in expected:  # what only FFmpeg's MPEG-TS muxer reads stays behind
        packet[3] = [item for item in packet[3] if item[0] != "mpegts_stream_id"]
    print(json.dumps({"through": through, "expected": expected}))


def test_side_data_crosses_the_shared_memory_but_the_stream_id(tmp_path: Path) -> None:
    folder = hls_layouts.mpegts(tmp_path / "download")
    segment = sorted(folder.glob("*.ts"))[1]
    code = f"from tests.adapters.test_tail_side_data import round_trip; round_trip({str(segment)!r})"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    through, expected = seen["through"], seen["expected"]
    assert len(expected) > 20
    extra = [item[0] for packet in expected for item in packet[3]]
    assert extra.count("skip_samples") > 5 and extra.count("new_extradata") > 1
    assert through == expected
