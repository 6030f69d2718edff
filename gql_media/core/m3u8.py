"""The M3U8 syntax (RFC 8216): a playlist's text as data, with no judgement and no disk.

Standard library only. ``parse_m3u8`` reads a media playlist (segments, with the key, byte range,
initialisation section and discontinuity in effect for each) or a master playlist (variants and
alternate renditions). It is lenient: unknown tags are skipped, and what a download may hold is
decided by ``hls`` (the rules), not here. It refuses only text that is not a playlist.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

__all__ = [
    "ByteRange",
    "HlsError",
    "KeyTag",
    "MapTag",
    "MasterPlaylist",
    "MediaPlaylist",
    "MediaSegment",
    "Rendition",
    "Variant",
    "attributes",
    "is_remote",
    "parse_m3u8",
]


class HlsError(Exception):
    """A playlist that cannot be merged; ``str(error)`` is a short reason a user can act on."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``length`` bytes from ``offset`` of the resource (``EXT-X-BYTERANGE``, offsets resolved)."""

    length: int
    offset: int


@dataclass(frozen=True, slots=True)
class KeyTag:
    """An ``EXT-X-KEY`` in effect: ``METHOD``, ``URI``, the explicit ``IV`` (16 bytes) if any, ``KEYFORMAT``."""

    method: str
    uri: str | None = None
    iv: bytes | None = None
    key_format: str = "identity"


@dataclass(frozen=True, slots=True)
class MapTag:
    """An ``EXT-X-MAP`` (the initialisation section of fragmented MP4 segments), and the key over it."""

    uri: str
    byte_range: ByteRange | None = None
    key: KeyTag | None = None
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class MediaSegment:
    """One ``#EXTINF`` entry with everything in effect for it."""

    uri: str
    duration_s: float
    sequence: int  # its media sequence number (the default AES IV)
    byte_range: ByteRange | None = None
    key: KeyTag | None = None
    map: MapTag | None = None
    discontinuity: bool = False


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """A list of segments; ``key_uris`` are every key URI named (also of keys that end up unused)."""

    segments: tuple[MediaSegment, ...]
    key_uris: tuple[str, ...] = ()
    bad_durations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Variant:
    """An ``EXT-X-STREAM-INF`` and the URI of its media playlist."""

    uri: str
    bandwidth: int
    resolution: tuple[int, int] | None = None
    audio_group: str | None = None


@dataclass(frozen=True, slots=True)
class Rendition:
    """An ``EXT-X-MEDIA`` (an alternate audio, subtitle... playlist)."""

    type: str
    group_id: str
    uri: str | None
    name: str = ""
    default: bool = False


@dataclass(frozen=True, slots=True)
class MasterPlaylist:
    """A list of variants (``EXT-X-STREAM-INF``) and renditions (``EXT-X-MEDIA``)."""

    variants: tuple[Variant, ...]
    renditions: tuple[Rendition, ...]


def is_remote(uri: str) -> bool:
    """Whether a URI names a resource on a server (``https://cdn/...``) rather than a local path."""
    scheme = urllib.parse.urlsplit(uri).scheme
    # A one-letter "scheme" is a Windows drive, not a URL.
    return len(scheme) > 1 and scheme != "file"


def attributes(line: str) -> dict[str, str]:
    """``#TAG:A=1,B="x,y"`` -> {"A": "1", "B": "x,y"}."""
    _, _, text = line.partition(":")
    result: dict[str, str] = {}
    key, value, quoted, in_value = "", "", False, False
    for char in text + ",":
        if in_value:
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                result[key.strip().upper()] = value.strip()
                key, value, in_value = "", "", False
            else:
                value += char
        elif char == "=":
            in_value = True
        elif char != ",":
            key += char
    return result


def _iv(text: str | None) -> bytes | None:
    if not text:
        return None
    digits = text[2:] if text[:2].lower() == "0x" else text
    try:
        value = int(digits, 16)
        return value.to_bytes(16, "big")
    except (ValueError, OverflowError) as error:
        raise HlsError(f"bad AES IV {text!r} in the playlist") from error


def _byte_range(text: str, next_offset: dict[str, int], uri: str) -> ByteRange:
    """``n[@o]``; without ``@o`` the range starts where the previous one of the same resource ended."""
    length_text, _, offset_text = text.strip().strip('"').partition("@")
    try:
        length = int(length_text)
        offset = int(offset_text) if offset_text else next_offset.get(uri, 0)
    except ValueError as error:
        raise HlsError(f"bad byte range {text!r} in the playlist") from error
    if length <= 0 or offset < 0:
        raise HlsError(f"bad byte range {text!r} in the playlist")
    next_offset[uri] = offset + length
    return ByteRange(length, offset)


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise HlsError("not an HLS playlist (no #EXTM3U header)")
    return [line for line in lines[1:] if line]


def _tag(line: str) -> str:
    return line.partition(":")[0].upper()


def parse_m3u8(text: str) -> MediaPlaylist | MasterPlaylist:
    """Parse a playlist's text; a master playlist has at least one ``EXT-X-STREAM-INF``.

    Raises:
        HlsError: not a playlist (no ``#EXTM3U``), or a tag whose value cannot be read.
    """
    lines = _lines(text)
    if any(_tag(line) == "#EXT-X-STREAM-INF" for line in lines):
        return _parse_master(lines)
    return _parse_media(lines)


def _parse_master(lines: list[str]) -> MasterPlaylist:
    variants: list[Variant] = []
    renditions: list[Rendition] = []
    pending: dict[str, str] | None = None
    for line in lines:
        if line.startswith("#"):
            tag = _tag(line)
            if tag == "#EXT-X-STREAM-INF":
                pending = attributes(line)
            elif tag == "#EXT-X-MEDIA":
                attrs = attributes(line)
                renditions.append(
                    Rendition(
                        type=attrs.get("TYPE", "").upper(),
                        group_id=attrs.get("GROUP-ID", ""),
                        uri=attrs.get("URI") or None,
                        name=attrs.get("NAME", ""),
                        default=attrs.get("DEFAULT", "").upper() == "YES",
                    )
                )
            continue
        if pending is None:
            continue  # a URI without its EXT-X-STREAM-INF: not a variant
        resolution = None
        width, _, height = pending.get("RESOLUTION", "").lower().partition("x")
        if width.isdigit() and height.isdigit():
            resolution = (int(width), int(height))
        bandwidth_text = pending.get("BANDWIDTH", "0")
        variants.append(
            Variant(
                uri=line,
                bandwidth=int(bandwidth_text) if bandwidth_text.isdigit() else 0,
                resolution=resolution,
                audio_group=pending.get("AUDIO") or None,
            )
        )
        pending = None
    return MasterPlaylist(tuple(variants), tuple(renditions))


def _parse_media(lines: list[str]) -> MediaPlaylist:
    segments: list[MediaSegment] = []
    key_uris: list[str] = []
    bad_durations: list[str] = []
    sequence = 0
    key: KeyTag | None = None
    current_map: MapTag | None = None
    next_offset: dict[str, int] = {}
    duration_s: float | None = None
    byte_range_text: str | None = None
    discontinuity = False
    for line in lines:
        if not line.startswith("#"):
            if duration_s is None:
                continue  # a URI without #EXTINF: not a segment
            byte_range = _byte_range(byte_range_text, next_offset, line) if byte_range_text else None
            segments.append(MediaSegment(line, duration_s, sequence, byte_range, key, current_map, discontinuity))
            sequence += 1
            duration_s, byte_range_text, discontinuity = None, None, False
            continue
        tag = _tag(line)
        value = line.partition(":")[2]
        if tag == "#EXTINF":
            try:
                duration_s = float(value.split(",")[0])
            except ValueError:
                bad_durations.append(line)
                duration_s = 0.0
        elif tag == "#EXT-X-MEDIA-SEQUENCE" and value.strip().isdigit():
            sequence = int(value.strip())
        elif tag == "#EXT-X-BYTERANGE":
            byte_range_text = value
        elif tag == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif tag == "#EXT-X-KEY":
            attrs = attributes(line)
            method = attrs.get("METHOD", "NONE").upper()
            uri = attrs.get("URI") or None
            if uri:
                key_uris.append(uri)
            key = (
                None
                if method == "NONE"
                else KeyTag(method, uri, _iv(attrs.get("IV")), attrs.get("KEYFORMAT") or "identity")
            )
        elif tag == "#EXT-X-MAP":
            attrs = attributes(line)
            uri = attrs.get("URI", "")
            range_text = attrs.get("BYTERANGE")
            map_range = _byte_range(range_text, {}, uri) if range_text else None
            current_map = MapTag(uri, map_range, key, sequence)
    return MediaPlaylist(tuple(segments), tuple(key_uris), tuple(bad_durations))
