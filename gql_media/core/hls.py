"""HLS downloads: which folders are one, what their playlist holds, where the merged mp4 goes.

Standard library only; these functions touch the disk, so async callers run them in a thread.

Rules:
- An HLS download is a folder holding a media playlist (``.m3u8`` with ``#EXTINF`` entries) whose
  segment URIs are local paths. A playlist of remote URLs is a bookmark of a stream, not a
  download: it is not one (and ``parse_playlist`` refuses it with a reason).
- A merge is refused (``HlsError`` with a short human reason) for: encrypted segments
  (``EXT-X-KEY`` with a method other than NONE), remote URLs, segments outside the folder (deleting
  the source would not delete them; merging them would read files the user did not point at),
  missing or empty segments, byte ranges, and master playlists (variant choice is not ours to make).
- The output is ``<folder name>.mp4`` beside the folder; when that name is taken, ``<folder name>
  (2).mp4``, ``(3)``... An existing file is never overwritten.
- "Already merged": after a verified merge a marker file ``.gqlmedia-merged.json`` is written into
  the source folder, naming the output and fingerprinting the playlist (size, mtime_ns). A folder
  whose marker matches its playlist is merged (sync skips it, even when the user moved or deleted
  the mp4 since: we never resurrect a file the user removed). A changed playlist (a download
  resumed) invalidates the marker. Deleting the marker asks for a new merge.
- Temp files (the merge's output before it is verified, thumbnails before their rename) start
  with ``TEMP_PREFIX``; ``remove_stale_temp_files`` deletes what a killed process left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

__all__ = [
    "MARKER_NAME",
    "MERGE_DURATION_TOLERANCE_S",
    "TEMP_PREFIX",
    "HlsError",
    "HlsPlaylist",
    "find_hls_downloads",
    "find_playlist",
    "free_output_path",
    "is_hls_download",
    "merged_output",
    "parse_playlist",
    "read_marker",
    "remove_source",
    "remove_stale_temp_files",
    "temp_path_beside",
    "write_marker",
]

TEMP_PREFIX = ".gqlmedia-tmp-"
MARKER_NAME = ".gqlmedia-merged.json"
PLAYLIST_SUFFIX = ".m3u8"
# A merged file may last this much more or less than its playlist's #EXTINF total and still be it.
MERGE_DURATION_TOLERANCE_S = 1.0
# Playlists larger than this are not HLS playlists we could have written to disk by hand.
_MAX_PLAYLIST_BYTES = 16 * 1024 * 1024
_MAX_FREE_NAME_TRIES = 1000


class HlsError(Exception):
    """A playlist that cannot be merged; ``str(error)`` is a short reason a user can act on."""


@dataclass(frozen=True, slots=True)
class HlsPlaylist:
    """A parsed local media playlist: absolute segment paths in play order.

    ``init_path`` is the ``EXT-X-MAP`` initialisation segment (fragmented MP4) or None for MPEG-TS.
    """

    playlist_path: str
    folder: str
    segment_paths: tuple[str, ...]
    duration_s: float
    total_bytes: int
    init_path: str | None = None

    @property
    def output_stem(self) -> str:
        """The merged file's name without suffix: the folder's name."""
        return os.path.basename(self.folder.rstrip(os.sep)) or "merged"


def _is_remote(uri: str) -> bool:
    scheme = urllib.parse.urlsplit(uri).scheme
    # A one-letter "scheme" is a Windows drive, not a URL.
    return len(scheme) > 1 and scheme != "file"


def _local_path(folder: str, uri: str) -> str:
    """The absolute path of a segment URI; refuses URIs leading outside ``folder``."""
    if uri.startswith("file:"):
        uri = urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
    candidate = os.path.normpath(os.path.join(folder, uri))
    if not os.path.exists(candidate) and "%" in uri:
        unquoted = os.path.normpath(os.path.join(folder, urllib.parse.unquote(uri)))
        if os.path.exists(unquoted):
            candidate = unquoted
    real_folder = os.path.realpath(folder)
    if os.path.commonpath([real_folder, os.path.realpath(candidate)]) != real_folder:
        raise HlsError(f"segment {uri!r} lies outside the playlist's folder")
    return candidate


def _attributes(line: str) -> dict[str, str]:
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


def _read_playlist_lines(path: str) -> list[str]:
    size = os.path.getsize(path)
    if size > _MAX_PLAYLIST_BYTES:
        raise HlsError("playlist is too large to be an HLS playlist")
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8-sig", errors="replace")
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise HlsError("not an HLS playlist (no #EXTM3U header)")
    return lines


def _check_tag(line: str) -> None:
    """Refuse the tags of playlists we cannot merge."""
    tag = line.partition(":")[0].upper()
    if tag == "#EXT-X-KEY":
        method = _attributes(line).get("METHOD", "NONE").upper()
        if method != "NONE":
            raise HlsError(f"playlist is encrypted ({method}): encrypted downloads are not merged")
    elif tag == "#EXT-X-STREAM-INF":
        raise HlsError("master playlist (a list of variants): merge one variant's playlist instead")
    elif tag == "#EXT-X-BYTERANGE":
        raise HlsError("byte-range segments are not supported")


def _segment_bytes(paths: list[str]) -> int:
    """The segments' total size; refuses missing and empty ones."""
    total_bytes = 0
    missing: list[str] = []
    for path in paths:
        try:
            size = os.path.getsize(path)
        except OSError:
            missing.append(os.path.basename(path))
            continue
        if size == 0:
            raise HlsError(f"segment {os.path.basename(path)} is empty")
        total_bytes += size
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise HlsError(f"{len(missing)} of {len(paths)} segments are missing: {shown}")
    return total_bytes


def parse_playlist(playlist_path: str) -> HlsPlaylist:
    """Parse a local media playlist and check every segment is a local, non-empty file.

    Raises:
        HlsError: with the reason the playlist cannot be merged.
        OSError: when the playlist itself cannot be read.
    """
    folder = os.path.dirname(os.path.abspath(playlist_path))
    uris: list[str] = []
    duration_s = 0.0
    init_uri: str | None = None
    for line in _read_playlist_lines(playlist_path)[1:]:
        if not line:
            continue
        if not line.startswith("#"):
            uris.append(line)
            continue
        _check_tag(line)
        tag = line.partition(":")[0].upper()
        if tag == "#EXT-X-MAP":
            if init_uri is not None:
                raise HlsError("several initialisation segments (EXT-X-MAP) are not supported")
            init_uri = _attributes(line).get("URI")
            if not init_uri:
                raise HlsError("EXT-X-MAP without a URI")
        elif tag == "#EXTINF":
            try:
                duration_s += float(line.partition(":")[2].split(",")[0])
            except ValueError as error:
                raise HlsError(f"bad segment duration in {line!r}") from error
    if not uris:
        raise HlsError("playlist lists no segments")
    if duration_s <= 0:
        raise HlsError("playlist gives no segment durations (#EXTINF)")
    remote = [uri for uri in [*uris, *([init_uri] if init_uri else [])] if _is_remote(uri)]
    if remote:
        raise HlsError(f"playlist points to remote URLs (e.g. {remote[0]}): only downloaded segments are merged")
    paths = [_local_path(folder, uri) for uri in uris]
    init_path = _local_path(folder, init_uri) if init_uri else None
    total_bytes = _segment_bytes([*([init_path] if init_path else []), *paths])
    return HlsPlaylist(
        playlist_path=os.path.abspath(playlist_path),
        folder=folder,
        segment_paths=tuple(paths),
        duration_s=duration_s,
        total_bytes=total_bytes,
        init_path=init_path,
    )


def _playlist_kind(path: str) -> str | None:
    """ "media" for a playlist of local segments, "remote", "master", or None when unreadable."""
    try:
        lines = _read_playlist_lines(path)
    except (OSError, HlsError):
        return None
    if any(line.upper().startswith("#EXT-X-STREAM-INF") for line in lines):
        return "master"
    uris = [line for line in lines if line and not line.startswith("#")]
    if not uris or not any(line.upper().startswith("#EXTINF") for line in lines):
        return None
    return "remote" if all(_is_remote(uri) for uri in uris) else "media"


def find_playlist(folder: str) -> str | None:
    """The folder's media playlist of local segments: ``index.m3u8`` first, then by name; None if none."""
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.name.lower().endswith(PLAYLIST_SUFFIX) and entry.is_file() and not entry.name.startswith(".")
        )
    except OSError:
        return None
    names.sort(key=lambda name: (name.lower() not in ("index.m3u8", "playlist.m3u8"), name))
    for name in names:
        path = os.path.join(folder, name)
        if _playlist_kind(path) == "media":
            return path
    return None


def is_hls_download(folder: str) -> bool:
    """Whether ``folder`` holds a media playlist whose segments are local files (merged or not)."""
    return find_playlist(folder) is not None


def find_hls_downloads(folders: Iterable[str], recursive: bool = True) -> list[str]:
    """HLS download folders among ``folders`` and below them (or their direct children), not merged yet."""
    found: list[str] = []
    for top in folders:
        for folder in _walk_folders(top, recursive):
            playlist = find_playlist(folder)
            if playlist is not None and merged_output(playlist) is None:
                found.append(folder)
    return found


def _walk_folders(top: str, recursive: bool) -> Iterator[str]:
    if not os.path.isdir(top):
        return
    yield top
    if recursive:
        for current, dirs, _files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in dirs:
                yield os.path.join(current, name)
        return
    try:
        children = sorted(e.path for e in os.scandir(top) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return
    yield from children


def free_output_path(folder: str, stem: str, suffix: str = ".mp4") -> str:
    """``<parent>/<stem>.mp4``, or ``<stem> (2).mp4``... the first name not taken (checked, not reserved)."""
    parent = os.path.dirname(os.path.abspath(folder).rstrip(os.sep))
    for index in range(1, _MAX_FREE_NAME_TRIES + 1):
        name = f"{stem}{suffix}" if index == 1 else f"{stem} ({index}){suffix}"
        candidate = os.path.join(parent, name)
        if not os.path.lexists(candidate):
            return candidate
    raise HlsError(f"no free output name for {stem}{suffix} beside the folder")


def temp_path_beside(folder: str, suffix: str = ".mp4") -> str:
    """A fresh temp file name in ``folder`` (same filesystem as the final name, so rename is atomic)."""
    return os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(8)}{suffix}")


def _fingerprint(playlist_path: str) -> dict[str, int]:
    stat = os.stat(playlist_path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_marker(playlist: HlsPlaylist, output_path: str) -> None:
    """Record in the source folder that it was merged into ``output_path`` (best effort)."""
    marker = os.path.join(playlist.folder, MARKER_NAME)
    data = {
        "playlist": os.path.basename(playlist.playlist_path),
        "output": os.path.basename(output_path),
        "duration_s": round(playlist.duration_s, 3),
        "merged_at": time.time(),
        **_fingerprint(playlist.playlist_path),
    }
    temp = temp_path_beside(playlist.folder, ".json")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temp, marker)
    except OSError as error:
        logger.warning("could not write merge marker in %s: %s", playlist.folder, error)
        with contextlib.suppress(OSError):
            os.unlink(temp)


def read_marker(folder: str) -> dict[str, object] | None:
    """The folder's merge marker, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(folder, MARKER_NAME), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def merged_output(playlist_path: str) -> str | None:
    """When this playlist was merged already (marker matching it), the output's path; else None.

    The path is where the output was written; it may have been moved or deleted since.
    """
    folder = os.path.dirname(os.path.abspath(playlist_path))
    marker = read_marker(folder)
    if marker is None or marker.get("playlist") != os.path.basename(playlist_path):
        return None
    try:
        fingerprint = _fingerprint(playlist_path)
    except OSError:
        return None
    if any(marker.get(key) != value for key, value in fingerprint.items()):
        return None
    output = marker.get("output")
    if not isinstance(output, str) or not output:
        return None
    return os.path.join(os.path.dirname(folder.rstrip(os.sep)), output)


def remove_source(playlist: HlsPlaylist) -> str | None:
    """Delete a merged download's folder; returns None when done, else why it was kept.

    Only the download's own files go (playlist, segments, init segment, marker), and only when
    nothing else is in the folder and the segments are still the ones merged: a folder that also
    holds a user's other files is kept whole.
    """
    own = {os.path.normcase(os.path.abspath(p)) for p in (playlist.playlist_path, *playlist.segment_paths)}
    if playlist.init_path:
        own.add(os.path.normcase(os.path.abspath(playlist.init_path)))
    own.add(os.path.normcase(os.path.join(playlist.folder, MARKER_NAME)))
    try:
        entries = list(os.scandir(playlist.folder))
    except OSError as error:
        return f"source kept: {error.strerror or error}"
    others = [e.name for e in entries if os.path.normcase(os.path.abspath(e.path)) not in own or e.is_dir()]
    if others:
        shown = ", ".join(sorted(others)[:3])
        return f"source kept: the folder also holds other files ({shown})"
    try:
        current_bytes = _segment_bytes([*([playlist.init_path] if playlist.init_path else []), *playlist.segment_paths])
    except HlsError as error:
        return f"source kept: segments changed during the merge ({error})"
    if current_bytes != playlist.total_bytes:
        return "source kept: segments changed during the merge"
    try:
        for entry in entries:
            os.unlink(entry.path)
        os.rmdir(playlist.folder)
    except OSError as error:
        return f"source partly removed: {error.strerror or error}"
    logger.info("removed merged HLS folder %s", playlist.folder)
    return None


def remove_stale_temp_files(folders: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Delete files named ``TEMP_PREFIX...`` under ``folders`` (left by a killed merge); returns them.

    Call at start-up, before any merge runs: a running merge's temp file looks the same.
    """
    removed: list[str] = []
    for top in folders:
        for current, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    path = os.path.join(current, name)
                    try:
                        os.unlink(path)
                    except OSError as error:
                        logger.warning("could not remove stale temp file %s: %s", path, error)
                    else:
                        removed.append(path)
    if removed:
        logger.info("removed %d stale temp files", len(removed))
    return removed
