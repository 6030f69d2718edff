"""Fragmented MP4 (CMAF) output for HLS: the muxer's options, and a made file split into init and fragment.

A segment is made on its own, from the source, like an MPEG-TS one: FFmpeg's mp4 muxer writes
``ftyp`` + ``moov`` (the init segment: stream headers, no samples) then one ``moof`` + ``mdat``
(the fragment: the segment's samples). The playlist's ``EXT-X-MAP`` names the init once, and each
``.m4s`` is the fragment alone; this works because the init depends on the streams only (the moov
is written before any sample: ``empty_moov``), so every segment of a stream has the same one.

Timestamps stay the source's own (moved by ``OUTPUT_OFFSET_S`` like MPEG-TS's): ``frag_discont``
makes the fragment's decode time (``tfdt``) the first packet's, where the muxer would otherwise
start every file at 0; no edit list and no shift to zero, so nothing moves one segment alone.
"""

from __future__ import annotations

import struct

__all__ = ["FMP4_OPTIONS", "split_init"]

FMP4_OPTIONS = {
    # One fragment per file, written when the file is closed; the moov is written first, with no
    # samples; the fragment's data offsets start at its moof; no mfra index at the end.
    "movflags": "frag_custom+empty_moov+default_base_moof+frag_discont+skip_trailer",
    "use_editlist": "0",
    "avoid_negative_ts": "disabled",
}


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level boxes of ``data``: (type, start, end); raises ValueError for a broken layout."""
    boxes = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 8:
            raise ValueError(f"a truncated box header at byte {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if len(data) - offset < 16:
                raise ValueError(f"a truncated box header at byte {offset}")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = len(data) - offset
        if size < header or offset + size > len(data):
            raise ValueError(f"a {kind!r} box of {size} bytes at byte {offset} does not fit")
        boxes.append((kind, offset, offset + size))
        offset += size
    return boxes


def split_init(data: bytes) -> tuple[bytes, bytes]:
    """Split a fragmented MP4 into its init segment (everything before the first ``moof``) and the rest.

    Raises:
        ValueError: ``data`` is no fragmented MP4 (no ``moov`` before a ``moof``).
    """
    boxes = _boxes(data)
    kinds = [kind for kind, _start, _end in boxes]
    if b"moof" not in kinds:
        if b"moov" in kinds:
            return data, b""  # headers only: an init segment
        raise ValueError("no moof box: not a fragmented MP4")
    first_fragment = kinds.index(b"moof")
    if b"moov" not in kinds[:first_fragment]:
        raise ValueError("no moov box before the first moof")
    cut = boxes[first_fragment][1]
    return data[:cut], data[cut:]
