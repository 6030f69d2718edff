"""The layout of an HLS download: which files its playlists name, and whether they are all there.

Standard library only; these functions touch the disk, so async callers run them in a thread.

Rules (``hls`` holds the rest: which folders are downloads, the output, the marker):
- A download's folder holds its playlist (media or master). Every file a playlist names lies in
  that folder or below it: segments, the initialisation section (``EXT-X-MAP``), AES keys, the
  variant and rendition playlists of a master. They all belong to the download.
- A URI names a file by, in order: its relative path (also without a query string, also
  %-decoded); for an absolute path or a URL (a playlist that still names its CDN), the file of
  the same base name beside the playlist. A relative path leading out of the folder is refused.
- ``METHOD=AES-128`` with a key file in the download is decrypted (IV explicit, else the media
  sequence number). A missing key, a key of the wrong size, ``SAMPLE-AES`` or a DRM key format is
  refused with its reason.
- A master playlist: the best variant (highest ``BANDWIDTH``, then resolution) whose playlist and
  segments are all present is merged, with its alternate audio rendition (``EXT-X-MEDIA
  TYPE=AUDIO`` of its group, the DEFAULT one first) when that playlist is there too.
- Missing or empty segments (also a file shorter than its byte range) mean the download is not
  finished: ``HlsIncomplete`` (waiting), which names the first missing file and the counts.

One module though it reaches 400 lines: every rule above answers the one question "which files
make up this download, and are they all there" (the playlist syntax itself is ``m3u8``'s), and
all go through one resolution of URIs to files (``resolve_uri``), which the merge, the list of a
download's own files and its state (``downloads``) must share exactly; the keys, the master's
choice and the completeness check are a few dozen lines each on top of it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from gql_media.core.m3u8 import (
    ByteRange,
    HlsError,
    KeyTag,
    MasterPlaylist,
    MediaPlaylist,
    MediaSegment,
    Rendition,
    Variant,
    is_remote,
    parse_m3u8,
)

__all__ = [
    "AES_KEY_BYTES",
    "HlsError",
    "HlsIncomplete",
    "HlsPlaylist",
    "HlsSegment",
    "HlsTrack",
    "parse_playlist",
    "playlist_files",
    "read_playlist",
    "resolve_uri",
]

AES_KEY_BYTES = 16
# Playlists larger than this are not HLS playlists we could have written to disk by hand.
_MAX_PLAYLIST_BYTES = 16 * 1024 * 1024


class HlsIncomplete(HlsError):
    """The download is not finished: some of its files are missing or still empty.

    ``present`` and ``expected`` count the segments (with the audio rendition's) of the best
    variant found.
    """

    def __init__(self, reason: str, present: int, expected: int) -> None:
        super().__init__(reason)
        self.present = present
        self.expected = expected


@dataclass(frozen=True, slots=True)
class HlsSegment:
    """A piece of a track: a file, or ``byte_range`` of it, maybe AES-128 encrypted with ``key_path`` and ``iv``."""

    path: str
    duration_s: float = 0.0
    byte_range: ByteRange | None = None
    key_path: str | None = None
    iv: bytes | None = None
    discontinuity: bool = False


@dataclass(frozen=True, slots=True)
class HlsTrack:
    """One media playlist's segments in play order (a variant, or an alternate audio rendition)."""

    playlist_path: str
    segments: tuple[HlsSegment, ...]
    init: HlsSegment | None = None

    @property
    def duration_s(self) -> float:
        return sum(segment.duration_s for segment in self.segments)

    @property
    def is_fragmented_mp4(self) -> bool:
        return self.init is not None


@dataclass(frozen=True, slots=True)
class HlsPlaylist:
    """A download ready to merge: its video track (a media playlist, or a master's chosen variant), maybe an audio one.

    ``playlist_path`` is the playlist found in ``folder`` (the master for a master); ``owned_paths``
    every file of the download its playlists name.
    """

    playlist_path: str
    folder: str
    video: HlsTrack
    total_bytes: int
    audio: HlsTrack | None = None
    owned_paths: frozenset[str] = field(default_factory=frozenset)

    @property
    def output_stem(self) -> str:
        """The merged file's name without suffix: the folder's name."""
        return os.path.basename(self.folder.rstrip(os.sep)) or "merged"

    @property
    def duration_s(self) -> float:
        return self.video.duration_s

    @property
    def segment_paths(self) -> tuple[str, ...]:
        """The video track's segment files in play order (a file once, for byte ranges over one file)."""
        return tuple(dict.fromkeys(segment.path for segment in self.video.segments))

    @property
    def init_path(self) -> str | None:
        return self.video.init.path if self.video.init else None

    @property
    def segment_count(self) -> int:
        return len(self.video.segments) + (len(self.audio.segments) if self.audio else 0)


def read_playlist(path: str) -> MediaPlaylist | MasterPlaylist:
    """Read and parse one playlist file (``OSError`` when it cannot be read)."""
    if os.path.getsize(path) > _MAX_PLAYLIST_BYTES:
        raise HlsError("playlist is too large to be an HLS playlist")
    with open(path, "rb") as handle:
        return parse_m3u8(handle.read().decode("utf-8-sig", errors="replace"))


def _inside(path: str, folder: str) -> bool:
    real_folder = os.path.realpath(folder)
    return os.path.commonpath([real_folder, os.path.realpath(path)]) == real_folder


def resolve_uri(uri: str, playlist_dir: str, download_dir: str) -> str:
    """The file of the download a URI names (it may not exist yet); see the module's rules.

    Raises:
        HlsError: a relative path leading out of the download's folder, or a URL naming no file.
    """
    if is_remote(uri):
        name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
        if not name:
            raise HlsError(f"{uri!r} names no file")
        return os.path.join(playlist_dir, name)
    path = urllib.parse.unquote(urllib.parse.urlsplit(uri).path) if uri.startswith("file:") else uri
    if os.path.isabs(path):
        candidate = os.path.normpath(path)
        if os.path.exists(candidate) and _inside(candidate, download_dir):
            return candidate
        return os.path.join(playlist_dir, os.path.basename(candidate))
    candidate = os.path.normpath(os.path.join(playlist_dir, path))
    if not os.path.exists(candidate):
        for variant in (path.partition("?")[0], urllib.parse.unquote(path.partition("?")[0])):
            other = os.path.normpath(os.path.join(playlist_dir, variant))
            if variant and os.path.exists(other):
                candidate = other
                break
    if not _inside(candidate, download_dir):
        raise HlsError(f"segment {uri!r} lies outside the playlist's folder")
    return candidate


def _key_path(key: KeyTag, playlist_dir: str, download_dir: str) -> str:
    if key.method == "SAMPLE-AES" or key.method.startswith("SAMPLE-AES"):
        raise HlsError(f"playlist is encrypted ({key.method}, sample-level encryption): it cannot be merged here")
    if key.method != "AES-128":
        raise HlsError(f"playlist is encrypted with an unknown method ({key.method})")
    if key.key_format.lower() != "identity":
        raise HlsError(f"playlist is DRM-protected (KEYFORMAT={key.key_format}): it cannot be merged")
    if not key.uri:
        raise HlsError("playlist is encrypted (AES-128) but names no key")
    path = resolve_uri(key.uri, playlist_dir, download_dir)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise HlsError(f"playlist is encrypted (AES-128) and its key {os.path.basename(path)} is missing") from None
    if size != AES_KEY_BYTES:
        raise HlsError(f"the AES-128 key {os.path.basename(path)} holds {size} bytes, not {AES_KEY_BYTES}")
    return path


def _segment(item: MediaSegment, playlist_dir: str, download_dir: str) -> HlsSegment:
    key_path = _key_path(item.key, playlist_dir, download_dir) if item.key else None
    iv = None
    if item.key is not None:
        iv = item.key.iv or item.sequence.to_bytes(16, "big")
    return HlsSegment(
        path=resolve_uri(item.uri, playlist_dir, download_dir),
        duration_s=item.duration_s,
        byte_range=item.byte_range,
        key_path=key_path,
        iv=iv,
        discontinuity=item.discontinuity,
    )


def _init_segment(playlist: MediaPlaylist, playlist_dir: str, download_dir: str) -> HlsSegment | None:
    maps = {(s.map.uri, s.map.byte_range) for s in playlist.segments if s.map is not None}
    if len(maps) > 1:
        raise HlsError("several initialisation segments (EXT-X-MAP) are not supported")
    first = next((s.map for s in playlist.segments if s.map is not None), None)
    if first is None:
        return None
    if not first.uri:
        raise HlsError("EXT-X-MAP without a URI")
    key_path = _key_path(first.key, playlist_dir, download_dir) if first.key else None
    iv = (first.key.iv or first.sequence.to_bytes(16, "big")) if first.key else None
    path = resolve_uri(first.uri, playlist_dir, download_dir)
    return HlsSegment(path=path, byte_range=first.byte_range, key_path=key_path, iv=iv)


def _track_bytes(track: HlsTrack) -> tuple[int, list[str], int]:
    """Bytes to read, missing pieces (missing, empty or short files; first first), segments present."""
    total = present = 0
    missing: list[str] = []
    sizes: dict[str, int | None] = {}
    pieces = [*([track.init] if track.init else []), *track.segments]
    for index, segment in enumerate(pieces):
        if segment.path not in sizes:
            try:
                sizes[segment.path] = os.path.getsize(segment.path)
            except OSError:
                sizes[segment.path] = None
        size = sizes[segment.path]
        name = os.path.basename(segment.path)
        if size is None or size == 0:
            missing.append(name if size is None else f"{name} (empty)")
            continue
        if segment.byte_range is None:
            total += size
        elif segment.byte_range.offset + segment.byte_range.length > size:
            missing.append(f"{name} (shorter than its byte range)")
            continue
        else:
            total += segment.byte_range.length
        if index > 0 or track.init is None:
            present += 1
    return total, list(dict.fromkeys(missing)), present


def _media_track(path: str, download_dir: str) -> HlsTrack:
    """A media playlist's track; refuses what cannot be merged (``HlsError``), not missing files."""
    playlist = read_playlist(path)
    if isinstance(playlist, MasterPlaylist):
        raise HlsError(f"{os.path.basename(path)} is a master playlist where a media playlist was expected")
    if playlist.bad_durations:
        raise HlsError(f"bad segment duration in {playlist.bad_durations[0]!r}")
    if not playlist.segments:
        raise HlsError("playlist lists no segments")
    if sum(s.duration_s for s in playlist.segments) <= 0:
        raise HlsError("playlist gives no segment durations (#EXTINF)")
    playlist_dir = os.path.dirname(path)
    init = _init_segment(playlist, playlist_dir, download_dir)
    segments = tuple(_segment(item, playlist_dir, download_dir) for item in playlist.segments)
    return HlsTrack(playlist_path=path, segments=segments, init=init)


def _check_complete(tracks: Iterable[HlsTrack]) -> int:
    total = 0
    missing: list[str] = []
    expected = present = 0
    for track in tracks:
        track_bytes, track_missing, track_present = _track_bytes(track)
        total += track_bytes
        missing.extend(track_missing)
        expected += len(track.segments)
        present += track_present
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        count = expected - present if expected > present else len(missing)
        raise HlsIncomplete(f"{count} of {expected} segments are missing: {shown}", present, expected)
    return total


def _ranked(variants: Iterable[Variant]) -> list[Variant]:
    def rank(variant: Variant) -> tuple[int, int]:
        width, height = variant.resolution or (0, 0)
        return (variant.bandwidth, width * height)

    return sorted(variants, key=rank, reverse=True)


def _audio_rendition(master: MasterPlaylist, variant: Variant) -> list[Rendition]:
    """The audio renditions of the variant's group with a playlist, the DEFAULT one first."""
    group = [r for r in master.renditions if r.type == "AUDIO" and r.group_id == variant.audio_group and r.uri]
    return sorted(group, key=lambda r: not r.default)


def _master_choice(path: str, master: MasterPlaylist) -> tuple[HlsTrack, HlsTrack | None, int]:
    """The best complete variant (and its audio); else the reason of the best variant present."""
    download_dir = os.path.dirname(path)
    if not master.variants:
        raise HlsError("master playlist lists no variants")
    first_problem: HlsError | None = None
    for variant in _ranked(master.variants):
        try:
            variant_path = resolve_uri(variant.uri, download_dir, download_dir)
            if not os.path.isfile(variant_path):
                continue
            video = _media_track(variant_path, download_dir)
            audio: HlsTrack | None = None
            for rendition in _audio_rendition(master, variant):
                assert rendition.uri is not None
                audio_path = resolve_uri(rendition.uri, download_dir, download_dir)
                if os.path.isfile(audio_path):
                    audio = _media_track(audio_path, download_dir)
                    break
            total = _check_complete([video, *([audio] if audio else [])])
        except (HlsError, OSError) as error:
            if first_problem is None:
                first_problem = error if isinstance(error, HlsError) else HlsError(str(error))
            continue
        return video, audio, total
    if first_problem is not None:
        raise first_problem
    names = ", ".join(os.path.basename(v.uri.partition("?")[0]) for v in _ranked(master.variants)[:3])
    raise HlsIncomplete(f"none of the master playlist's variants is downloaded yet ({names})", 0, 0)


def parse_playlist(playlist_path: str) -> HlsPlaylist:
    """The download whose playlist (media or master) this is, checked complete and mergeable.

    Raises:
        HlsIncomplete: segments (or variants) still missing: the download is not finished.
        HlsError: with the reason the download cannot be merged.
        OSError: when the playlist itself cannot be read.
    """
    path = os.path.abspath(playlist_path)
    folder = os.path.dirname(path)
    playlist = read_playlist(path)
    if isinstance(playlist, MasterPlaylist):
        video, audio, total = _master_choice(path, playlist)
    else:
        video, audio = _media_track(path, folder), None
        total = _check_complete([video])
    return HlsPlaylist(
        playlist_path=path,
        folder=folder,
        video=video,
        audio=audio,
        total_bytes=total,
        owned_paths=frozenset(playlist_files(path)),
    )


def playlist_files(playlist_path: str, depth: int = 2, download_dir: str | None = None) -> set[str]:
    """Every file a playlist names (itself, segments, init, keys, and for a master its playlists' files).

    Lenient: what cannot be read or resolved names nothing more; paths are normalised and absolute.
    ``download_dir`` (default: the playlist's folder) bounds where named files may lie.
    """
    path = os.path.normpath(os.path.abspath(playlist_path))
    files = {path}
    try:
        playlist = read_playlist(path)
    except (HlsError, OSError):
        return files
    folder = os.path.dirname(path)
    top = download_dir or folder
    if isinstance(playlist, MasterPlaylist):
        uris = [v.uri for v in playlist.variants] + [r.uri for r in playlist.renditions if r.uri]
        for uri in uris:
            named = _resolved_or_none(uri, folder, top)
            if named is not None and depth > 0:
                files |= playlist_files(named, depth - 1, top)
        return files
    named_uris = [
        *playlist.key_uris,
        *(s.uri for s in playlist.segments),
        *(s.map.uri for s in playlist.segments if s.map),
    ]
    for uri in dict.fromkeys(named_uris):
        named = _resolved_or_none(uri, folder, top)
        if named is not None:
            files.add(os.path.normpath(named))
    return files


def _resolved_or_none(uri: str, playlist_dir: str, download_dir: str) -> str | None:
    try:
        return resolve_uri(uri, playlist_dir, download_dir)
    except HlsError:
        return None
